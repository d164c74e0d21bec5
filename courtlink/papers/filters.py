"""Jinja2 filters shared by the pages and the printed documents: China Standard Time and money."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jinja2

__all__ = ["CST", "install_filters"]

CST = timezone(timedelta(hours=8), "CST")


def cst(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(CST).strftime(fmt)


def zh_date(value: datetime | str | None, with_time: bool = False) -> str:
    """2026年11月27日 (and 14时30分), as Chinese legal documents write dates."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone(CST)
    text = f"{local.year}年{local.month}月{local.day}日"
    if with_time:
        text += f"{local.hour}时{local.minute:02d}分"
    return text


def yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def install_filters(env: jinja2.Environment) -> None:
    env.filters["cst"] = cst
    env.filters["zh_date"] = zh_date
    env.filters["yuan"] = yuan
