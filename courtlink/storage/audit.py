"""The audit chain: events, the head row, checkpoints, and a stream of the whole chain."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from courtlink.court.audit import AuditEvent, Checkpoint, canonical, event_hash
from courtlink.storage import tables as t
from courtlink.storage.queries import Queries
from courtlink.storage.rows import INT, Convert, RowMapper

__all__ = ["AUDIT_DATA", "AUDIT_EVENTS", "CHECKPOINTS", "AuditRecords"]


def _load_data(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        # Only an edit outside Courtlink writes this; keep the text so that the row fails its
        # hash and verification names it, instead of the whole read failing.
        return {"unreadable": raw}


def _dump_data(data: Any) -> str:
    # Exactly the canonical JSON that was hashed.
    return canonical(data).decode()


AUDIT_DATA = Convert(_load_data, _dump_data)
"""An event's data: canonical JSON text; text that is not JSON reads as ``{"unreadable": ...}``."""

AUDIT_EVENTS = RowMapper(AuditEvent, t.audit_events, seq=INT, data=AUDIT_DATA)
CHECKPOINTS = RowMapper(Checkpoint, t.audit_checkpoints, seq=INT)

# The head is the table's one row.
_HEAD = t.audit_head.c.id == 1


class AuditRecords(Queries):
    """Queries about the audit chain; part of ``Records``."""

    async def append_audit(
        self,
        *,
        at: datetime,
        kind: str,
        actor: str,
        session_id: str | None,
        case_id: str | None,
        data: dict[str, Any],
    ) -> AuditEvent:
        """Append one event. The UPDATE of the head row is the lock: PostgreSQL holds the row
        lock and SQLite the write lock until this transaction commits, so there is one writer
        at a time and sequence numbers never repeat or skip."""
        head = (
            await self.conn.execute(
                update(t.audit_head)
                .where(_HEAD)
                .values(seq=t.audit_head.c.seq + 1)
                .returning(t.audit_head.c.seq, t.audit_head.c.hash)
            )
        ).one()
        seq, prev = int(head.seq), str(head.hash)
        # Hash what will be read back: the data as its canonical JSON parses.
        data = json.loads(canonical(data))
        digest = event_hash(
            seq=seq,
            at=at,
            kind=kind,
            actor=actor,
            session_id=session_id,
            case_id=case_id,
            data=data,
            prev_hash=prev,
        )
        event = AuditEvent(seq, at, kind, actor, session_id, case_id, data, prev, digest)
        await self.conn.execute(insert(t.audit_events).values(AUDIT_EVENTS.dump(event)))
        await self.conn.execute(update(t.audit_head).where(_HEAD).values(hash=digest))
        return event

    async def audit_head(self) -> tuple[int, str, int]:
        """(head seq, head hash, seq of the last checkpoint)."""
        row = (await self.conn.execute(select(t.audit_head).where(_HEAD))).one()
        return int(row.seq), str(row.hash), int(row.checkpoint_seq)

    async def audit_head_for_update(self) -> tuple[int, str, int]:
        """``audit_head``, and no event is appended until this transaction ends (PostgreSQL:
        the row lock; SQLite: write transactions hold the database's write lock already)."""
        stmt = select(t.audit_head).where(_HEAD)
        if self.on_postgresql:
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).one()
        return int(row.seq), str(row.hash), int(row.checkpoint_seq)

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a signed checkpoint and make it the head's last one."""
        await self.conn.execute(insert(t.audit_checkpoints).values(CHECKPOINTS.dump(checkpoint)))
        await self.conn.execute(
            update(t.audit_head).where(_HEAD).values(checkpoint_seq=checkpoint.seq)
        )

    async def audit_events(
        self,
        *,
        session_id: str | None = None,
        case_id: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events after seq ``after`` (of this session, of this case), in sequence order."""
        stmt = (
            select(t.audit_events)
            .where(t.audit_events.c.seq > after)
            .order_by(t.audit_events.c.seq)
        )
        if session_id is not None:
            stmt = stmt.where(t.audit_events.c.session_id == session_id)
        if case_id is not None:
            stmt = stmt.where(t.audit_events.c.case_id == case_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [AUDIT_EVENTS.load(r) for r in await self.conn.execute(stmt)]

    async def stream_audit(self, batch: int = 1000) -> AsyncIterator[AuditEvent]:
        """Every event in sequence order, a batch at a time (chains can be long)."""
        after = -1
        while True:
            events = await self.audit_events(after=after, limit=batch)
            for event in events:
                yield event
            if len(events) < batch:
                return
            after = events[-1].seq

    async def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, in sequence order."""
        stmt = select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.seq)
        return [CHECKPOINTS.load(r) for r in await self.conn.execute(stmt)]
