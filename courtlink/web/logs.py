"""Logging: JSON or text lines on stderr, and an access log that never shows a secret.

Invite links (/i/<token>) and terminal links (/t/<credential>) carry secrets in their path, so
the access logger writes those paths with the secret cut out. Cookies, headers and bodies are
never logged.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse
from pythonjsonlogger.json import JsonFormatter

__all__ = ["RedactingAccessLogger", "configure_logging", "redact_path"]

_SECRET_PATHS = re.compile(r"^/(i|t)/[^/?#]+")
_TOKENS = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def redact_path(path: str) -> str:
    path = _SECRET_PATHS.sub(lambda m: f"/{m.group(1)}/[redacted]", path)
    return _TOKENS.sub("[redacted-token]", path)


class _RedactFilter(logging.Filter):
    """Last line of defence: a JWT that slipped into a message is cut out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "eyJ" in record.msg:
            record.msg = _TOKENS.sub("[redacted-token]", record.msg)
        if record.args:
            record.args = tuple(
                _TOKENS.sub("[redacted-token]", a) if isinstance(a, str) else a for a in record.args
            )
        return True


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            redact_path(request.path),
            response.status,
            time * 1000,
            extra={
                "method": request.method,
                "path": redact_path(request.path),
                "status": response.status,
                "ms": round(time * 1000, 1),
                "remote": request.remote,
            },
        )


def configure_logging(level: str = "INFO", fmt: str = "text", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries chatter at INFO about every packet and poll.
    for noisy in ("aioice", "aiortc", "engineio", "socketio", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
