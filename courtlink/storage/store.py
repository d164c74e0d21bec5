"""The database behind Courtlink: an SQLAlchemy asyncio engine, migrations, transactions.

SQLite (the embedded default) and PostgreSQL are both first-class. SQLite allows one writer at a
time; rather than let concurrent writers fail with "database is locked", write transactions
start with ``BEGIN IMMEDIATE`` and are serialized in-process by a lock, and the busy timeout
covers other processes (the CLI while the server runs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from courtlink.errors import Unavailable
from courtlink.storage.records import Records

__all__ = ["Store"]

_WRITE = "courtlink_write"


def _alembic_config() -> Config:
    cfg = Config()
    location = resources.files("courtlink.storage").joinpath("migrations")
    cfg.set_main_option("script_location", str(location))
    return cfg


class Store:
    """Open with ``await store.open()``; close with ``await store.close()`` (idempotent)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise Unavailable("the database is not open")
        return self._engine

    async def open(self, *, migrate: bool = True) -> None:
        if self._engine is not None:
            return
        kwargs: dict[str, Any] = {"echo": self._echo}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}
            # aiosqlite connections are cheap; pooling them only defers "database is locked".
            kwargs["poolclass"] = NullPool
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
        engine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_pragmas(engine)
        self._engine = engine
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError) as exc:
            await self.close()
            raise Unavailable(f"database unreachable: {type(exc).__name__}") from None
        if migrate:
            await self.upgrade()

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def upgrade(self) -> str:
        """Apply every pending migration; returns the revision now current."""
        cfg = _alembic_config()

        def run(conn: Connection) -> str:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            return str(MigrationContext.configure(conn).get_current_revision())

        async with self._write_conn() as conn:
            return await conn.run_sync(run)

    async def revision(self) -> tuple[str | None, str]:
        """(current revision, newest revision)."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        async with self.engine.connect() as conn:
            current = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
        return current, str(head)

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError, OperationalError) as exc:
            raise Unavailable(f"database unreachable: {type(exc).__name__}") from None

    @asynccontextmanager
    async def _write_conn(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock, self.engine.connect() as raw:
            conn = await raw.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Records]:
        """A write transaction: committed when the block ends, rolled back on error."""
        try:
            async with self._write_conn() as conn:
                yield Records(conn)
        except (OSError, OperationalError) as exc:
            raise Unavailable(f"database error: {type(exc).__name__}") from None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Records]:
        """A read-only view (one transaction, so reads are consistent with each other)."""
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield Records(conn)
        except (OSError, OperationalError) as exc:
            raise Unavailable(f"database error: {type(exc).__name__}") from None


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (see "begin" below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        # Writers take the lock up front, so a read-then-write never fails half way.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
