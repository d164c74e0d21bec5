"""Fixtures for the domain tests: a clock tests can move, and the records side opened on a real
database (SQLite by default; storage tests use the parametrized ``database_url``)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from courtlink.clock import Clock
from courtlink.court.hashing import SecretHasher
from courtlink.web.services import Services, open_services
from tests.conftest import make_settings
from tests.helpers import World, build_world

# Every movable clock of a run starts here, so a world built once (below) and the tests that
# use copies of it agree on "now".
START = datetime.now(UTC)


class MovableClock:
    """A Clock (a callable returning an aware datetime) that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


def sqlite_in(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'courtlink.db'}"


def open_on(
    data_dir: Path, clock: Clock, hasher: SecretHasher
) -> contextlib.AbstractAsyncContextManager[Services]:
    """Clerk, Gate, Auditor on SQLite in ``data_dir``, with small rules that tests reach: a
    maximum detention period of 20 days (never the legal 15 assumed), 3 failed logins per 300 s.
    """
    settings = make_settings(
        data_dir,
        database={"url": sqlite_in(data_dir)},
        detention={"max_period_days": 20},
        security={"login_max_failures": 3, "login_window_seconds": 300},
    )
    return open_services(settings, clock=clock, hasher=hasher)


@pytest.fixture
async def services(
    tmp_path: Path, fast_hasher: SecretHasher, clock: MovableClock
) -> AsyncIterator[Services]:
    """The records side on an empty database."""
    async with open_on(tmp_path / "var", clock, fast_hasher) as opened:
        yield opened


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """tests.helpers.build_world, run once; tests get a copy of its data directory."""
    data_dir = tmp_path_factory.mktemp("world") / "var"
    hasher = SecretHasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

    async def build() -> World:
        async with open_on(data_dir, MovableClock(START), hasher) as opened:
            return await build_world(opened)

    return data_dir, asyncio.run(build())


@pytest.fixture
async def world_services(
    tmp_path: Path,
    world_template: tuple[Path, World],
    fast_hasher: SecretHasher,
    clock: MovableClock,
) -> AsyncIterator[tuple[Services, World]]:
    """The records side on a private copy of the built world (same ids, keys and tokens)."""
    template, world = world_template
    data_dir = tmp_path / "var"
    shutil.copytree(template, data_dir)
    async with open_on(data_dir, clock, fast_hasher) as opened:
        yield opened, world
