"""The web edge: the aiohttp application factory, HTTP API, pages, static files and the CLI."""

from courtlink.web.app import VERSION, create_app

__all__ = ["VERSION", "create_app"]
