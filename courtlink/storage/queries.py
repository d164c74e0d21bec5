"""What every aggregate's queries share: the one open connection and two helpers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from courtlink.errors import Conflict, NotFound

__all__ = ["Queries"]


class Queries:
    """Queries over one connection inside one transaction (see ``Store.read``/``Store.write``).

    Each aggregate module subclasses this; ``Records`` combines them all.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    @property
    def on_postgresql(self) -> bool:
        """PostgreSQL has row locks and advisory locks; SQLite's write lock covers both."""
        return self.conn.dialect.name == "postgresql"

    async def _one(self, stmt: Executable, what: str) -> Row[Any]:
        row = (await self.conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"no such {what}")
        return row

    async def _insert(self, table: Table, values: dict[str, Any], what: str) -> None:
        # A savepoint, so that a duplicate undoes this insert alone and the transaction goes on.
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(table).values(**values))
        except IntegrityError:
            raise Conflict(f"{what} already exists") from None
