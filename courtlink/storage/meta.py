"""Meta: small named values the application keeps about itself (the demo's ids, for one)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from courtlink.storage import tables as t
from courtlink.storage.queries import Queries

__all__ = ["MetaRecords"]


class MetaRecords(Queries):
    """Queries about meta values; part of ``Records``."""

    async def meta(self, key: str) -> str | None:
        """The value of ``key``, or None."""
        row = (await self.conn.execute(select(t.meta.c.value).where(t.meta.c.key == key))).first()
        return None if row is None else str(row.value)

    async def set_meta(self, key: str, value: str) -> None:
        """Set ``key`` to ``value``, replacing any value it had."""
        await self.conn.execute(delete(t.meta).where(t.meta.c.key == key))
        await self.conn.execute(insert(t.meta).values(key=key, value=value))
