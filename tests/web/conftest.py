"""Fixtures of the web tests: the small world on the live server, and HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from tests.conftest import LiveServer
from tests.helpers import World, build_world
from tests.web.support import new_client, services_of
from web.services import Services


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
