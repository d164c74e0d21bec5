"""Time, injectable. Every domain decision about "now" takes a Clock so tests can move time."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "new_id", "system_clock", "utc"]

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """``value`` as aware UTC; naive values are taken to be UTC already (SQLite returns those)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def new_id() -> str:
    """A random identifier: 16 hex digits, unguessable, safe in URLs and file names."""
    return secrets.token_hex(8)
