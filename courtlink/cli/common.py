"""What every command shares: one-line errors and their exit status, the settings, the records.

An error prints one line, ``courtlink: error: <cause>``, and exits with status 1 (2 for bad
configuration, 130 when interrupted); never a traceback. Click itself answers bad usage with
status 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from courtlink.config import Settings, load_settings
from courtlink.errors import ConfigError, CourtlinkError

__all__ = ["echo_result", "fail", "run", "settings_of", "with_services"]

T = TypeVar("T")


def fail(message: str, status: int = 1) -> NoReturn:
    """Print ``courtlink: error: <message>`` on stderr and exit with ``status``."""
    click.echo(f"courtlink: error: {message}", err=True)
    sys.exit(status)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end; any error it raises becomes one line and an exit status."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        fail(exc.message, 2)
    except CourtlinkError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # a bug or a broken database: still one line, never a traceback
        detail = str(exc).splitlines()[0] if str(exc) else ""
        fail(f"unexpected {type(exc).__name__}: {detail[:300]}")


def settings_of(ctx: click.Context) -> Settings:
    """The settings of this invocation (``--config`` over the defaults, then the environment),
    loaded once; a bad key exits with status 2."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings(obj.get("config"))
        except ConfigError as exc:
            fail(exc.message, 2)
    settings: Settings = obj["settings"]
    return settings


def with_services(fn: Callable[..., Awaitable[T]], *, checkpoint: bool = True) -> Callable[..., T]:
    """Run ``fn(services, ...)`` with the records side opened from the settings."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        settings = settings_of(click.get_current_context())

        async def go() -> T:
            # Imported here: opening the records pulls in the storage and the papers, which
            # `courtlink --help` and the commands that need no records should not pay for; and
            # inside ``run``, so that even a broken import is one line.
            from courtlink.web.services import open_services

            async with open_services(settings, checkpoint_on_close=checkpoint) as services:
                return await fn(services, *args, **kwargs)

        return run(go())

    return wrapper


def echo_result(data: dict[str, Any], as_json: bool) -> None:
    """A result as one JSON object, or as ``key value`` lines for people."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        for key, value in data.items():
            click.echo(f"  {key:24} {value}")
