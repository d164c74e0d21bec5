"""Fixtures of the web tests: the small world on the live server, and HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from courtlink.web.services import Services
from tests.conftest import LiveServer, missing
from tests.helpers import World, build_world
from tests.netns_support import Netns, namespace
from tests.web.browser_support import PAGE_WAIT, chromium_args, launch
from tests.web.support import new_client, services_of


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A network namespace for one participant (tests/netns_support.py), gone after the test."""
    with namespace() as ns:
        yield ns


@pytest.fixture
def services(server: LiveServer) -> Services:
    return services_of(server.app)


@pytest.fixture
async def world(services: Services) -> World:
    return await build_world(services)


@pytest.fixture
async def clients(
    server: LiveServer,
) -> AsyncIterator[Callable[..., aiohttp.ClientSession]]:
    """``clients()`` makes a new client (own cookie jar) for the live server; all are closed."""
    made: list[aiohttp.ClientSession] = []

    def make(**headers: str) -> aiohttp.ClientSession:
        client = new_client(server.url, **headers)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Chromium with a fake camera. Ask for it after ``server`` so that it closes first."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        missing("Chromium", f"the playwright package is not installed ({exc})")
    async with async_playwright() as playwright:
        chromium = await launch(playwright, chromium_args())
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def new_context(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await new_context(**options)``: a browser context with the tests' timeout, closed
    after the test."""
    made: list[Any] = []

    async def make(**options: Any) -> Any:
        context = await browser.new_context(**options)
        context.set_default_timeout(PAGE_WAIT)
        made.append(context)
        return context

    yield make
    for context in made:
        await context.close()
