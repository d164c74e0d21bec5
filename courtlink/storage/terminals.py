"""Terminals: the detention centers' kiosks."""

from __future__ import annotations

from sqlalchemy import select

from courtlink.court.terminals import Terminal
from courtlink.storage import tables as t
from courtlink.storage.queries import Queries
from courtlink.storage.rows import BOOL, RowMapper

__all__ = ["TERMINALS", "TerminalRecords"]

TERMINALS = RowMapper(Terminal, t.terminals, disabled=BOOL)


class TerminalRecords(Queries):
    """Queries about terminals; part of ``Records``."""

    async def add_terminal(self, terminal: Terminal) -> None:
        """Store a new terminal."""
        await self._insert(t.terminals, TERMINALS.dump(terminal), "terminal")

    async def terminal(self, terminal_id: str) -> Terminal:
        """The terminal; ``NotFound`` when there is none."""
        return TERMINALS.load(
            await self._one(select(t.terminals).where(t.terminals.c.id == terminal_id), "terminal")
        )

    async def terminals(self) -> list[Terminal]:
        """Every terminal, by name."""
        stmt = select(t.terminals).order_by(t.terminals.c.name)
        return [TERMINALS.load(r) for r in await self.conn.execute(stmt)]
