"""Shared fixtures. Real parts where a user would meet them: SQLite files and a PostgreSQL
database per test, Redis, the real app on a loopback port.

A test that needs PostgreSQL, Redis, Chromium or node fails under CI=true when it is missing
and is skipped, with the reason, only outside CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from argon2 import PasswordHasher

from courtlink.config import Settings, load_settings
from courtlink.court.hashing import SecretHasher
from courtlink.web.app import create_app

CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "COURTLINK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("COURTLINK_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent


def missing(what: str, reason: str) -> None:
    """Fail under CI, skip elsewhere."""
    message = f"{what} unavailable: {reason}"
    if CI:
        pytest.fail(message + " (CI=true: required)")
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


@pytest.fixture
def fast_hasher() -> SecretHasher:
    """Argon2id with small costs: the same code path, milliseconds instead of a second."""
    return SecretHasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def make_settings(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    env = {"COURTLINK_DATA_DIR": str(data_dir), "COURTLINK_PORT": "0"}
    settings = load_settings(env=env)
    update: dict[str, Any] = {"demo": settings.demo.model_copy(update={"enabled": False})}
    for name, values in sections.items():
        update[name] = getattr(settings, name).model_copy(update=values)
    return settings.model_copy(update=update)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards)."""
    import asyncpg

    if not _port_open("127.0.0.1", 5432):
        missing("PostgreSQL", "nothing listens on 127.0.0.1:5432")
    name = f"courtlink_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        missing("PostgreSQL", f"cannot connect to {POSTGRES_URL}: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """Redis, with Courtlink's keys cleared before and after."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        missing("Redis", f"cannot reach {REDIS_URL}: {exc}")

    async def clear() -> None:
        keys = [k async for k in client.scan_iter("courtlink:*")]
        if keys:
            await client.delete(*keys)

    await clear()
    yield REDIS_URL
    await clear()
    await client.aclose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and on PostgreSQL.

    A plain fixture: under pytest-asyncio 1.x an async fixture cannot ask for another async
    fixture (``pg_url``) by name.
    """
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'courtlink.db'}"
    return str(request.getfixturevalue("pg_url"))


@dataclass
class LiveServer:
    """The real app on a loopback port."""

    app: web.Application
    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_server(
    settings: Settings, hasher: SecretHasher | None = None, **kwargs: Any
) -> LiveServer:
    app = create_app(settings, hasher=hasher, **kwargs)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return LiveServer(app, runner, f"http://127.0.0.1:{port}")


@pytest.fixture
async def server(settings: Settings, fast_hasher: SecretHasher) -> AsyncIterator[LiveServer]:
    live = await start_server(settings, fast_hasher)
    yield live
    await live.close()


@pytest.fixture
def node() -> str:
    """The node binary, with socket.io-client installed by npm."""
    binary = shutil.which("node")
    if binary is None:
        missing("node", "node is not on PATH (tools/setup installs it)")
    if not (ROOT / "node_modules" / "socket.io-client").is_dir():
        missing("socket.io-client", "npm packages not installed (run `npm ci`)")
    return binary  # type: ignore[return-value]
