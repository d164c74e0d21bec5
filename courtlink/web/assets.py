"""The browser libraries the pages load from /static/vendor/: socket.io's client.

They are package data. The build (setup.py) copies them from node_modules into
courtlink/web/static/vendor/, so an installed wheel serves working pages with no npm tree
beside it. ``server.node_modules`` overrides the packaged copy with an npm tree of one's own (a
newer socket.io-client, say); a file missing there answers 503 problem+json at once rather
than a page that half works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from courtlink.config import Settings
from courtlink.web.problems import problem

__all__ = ["VENDOR_FILES", "add_vendor_routes", "vendor_file"]

# Each served name and where npm puts it under node_modules.
VENDOR_FILES = (("socket.io.min.js", ("socket.io-client", "dist", "socket.io.min.js")),)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def vendor_file(settings: Settings, name: str) -> Path:
    """Where the file served as /static/vendor/``name`` is: under ``server.node_modules`` when
    that is set, else the copy the build put into the package."""
    parts = dict(VENDOR_FILES)[name]
    if settings.server.node_modules:
        return Path(settings.server.node_modules).expanduser().resolve().joinpath(*parts)
    return Path(str(resources.files("courtlink.web").joinpath("static", "vendor", name)))


def add_vendor_routes(app: web.Application, settings: Settings) -> None:
    """Serve every vendored library under /static/vendor/, cached for a day."""
    for name, _ in VENDOR_FILES:
        fix = (
            "run `npm ci` for server.node_modules, or unset it to use the packaged copy"
            if settings.server.node_modules
            else "reinstall courtlink: its build copies the browser client into the package"
        )
        app.router.add_get(f"/static/vendor/{name}", _serve(vendor_file(settings, name), fix))


def _serve(path: Path, fix: str) -> Handler:
    present = path.is_file()  # checked once, at start-up: the build or npm ci comes before

    async def handler(request: web.Request) -> web.StreamResponse:
        if not present:
            return problem(503, "assets_missing", "browser packages missing", fix)
        return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    return handler
