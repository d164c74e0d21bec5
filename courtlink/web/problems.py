"""Errors at the HTTP edge: every error leaves as RFC 9457 problem+json (API) or an error page
(pages), never as a traceback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from courtlink.errors import CourtlinkError
from courtlink.web.keys import METRICS

__all__ = ["problem", "problem_middleware"]

log = logging.getLogger("courtlink.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PROBLEM_TYPE = "https://courtlink.invalid/problems/"


def problem(status: int, code: str, title: str, detail: str = "", **extra: Any) -> web.Response:
    body = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail or title,
    }
    body.update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/problem+json",
        charset="utf-8",
    )


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except CourtlinkError as exc:
        status = exc.status
        request.app[METRICS].errors.labels(where="http", code=exc.code).inc()
        return problem(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error"
        )
        return problem(exc.status, code, exc.reason)
    except Exception:
        request.app[METRICS].errors.labels(where="http", code="internal").inc()
        log.exception(
            "unhandled error", extra={"route": _route_name(request), "method": request.method}
        )
        return problem(500, "internal", "Internal error", "the request was not carried out")
    finally:
        route = _route_name(request)
        metrics = request.app[METRICS]
        metrics.http_requests.labels(method=request.method, route=route, status=str(status)).inc()
        metrics.http_latency.labels(route=route).observe(time.perf_counter() - started)


_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "style-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: problems, error pages and raised redirects get the headers too."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        for name, value in _SECURITY_HEADERS.items():
            exc.headers.setdefault(name, value)
        raise
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
