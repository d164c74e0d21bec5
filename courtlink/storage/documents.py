"""Documents, their steps, inbox items, and drawn signatures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from courtlink.court.documents.lifecycle import DocKind, DocState, Document, InboxItem
from courtlink.errors import Conflict
from courtlink.storage import tables as t
from courtlink.storage.queries import Queries
from courtlink.storage.rows import JSON, OPTIONAL_INT, RowMapper, enum

__all__ = ["DOCUMENTS", "INBOX_ITEMS", "DocumentRecords", "step_view"]

DOCUMENTS = RowMapper(
    Document,
    t.documents,
    kind=enum(DocKind),
    state=enum(DocState),
    fields=JSON,
    size=OPTIONAL_INT,
)
INBOX_ITEMS = RowMapper(InboxItem, t.inbox_items)


def step_view(row: Row[Any]) -> dict[str, Any]:
    """One step of a document as the document carries it: plain JSON-ready values."""
    return {
        "action": row.action,
        "state": row.state,
        "actor": row.actor,
        "officer_id": row.officer_id,
        "at": row.at.isoformat(),
        "data": JSON.load(row.data),
        "receipt_id": row.receipt_id,
    }


class DocumentRecords(Queries):
    """Queries about documents and their delivery; part of ``Records``."""

    async def add_document(self, document: Document) -> None:
        """Store a new document; ``Conflict`` when its number is taken."""
        values = DOCUMENTS.dump(document)
        # A new document has not changed yet: it was last updated when it was made.
        values["updated_at"] = document.updated_at or document.created_at
        await self._insert(t.documents, values, f"document {document.number}")

    async def save_document(self, document: Document) -> None:
        """Store what changes in a document's life (state, fields, the file and its signer)."""
        await self.conn.execute(
            update(t.documents)
            .where(t.documents.c.id == document.id)
            .values(
                DOCUMENTS.dump(
                    document,
                    "state",
                    "fields",
                    "updated_at",
                    "sha256",
                    "size",
                    "media_type",
                    "file_name",
                    "signed_by",
                )
            )
        )

    async def document(self, document_id: str, *, for_update: bool = False) -> Document:
        """The document with its steps; ``NotFound`` when there is none. ``for_update`` locks
        its row on PostgreSQL (SQLite's write transactions hold the write lock already)."""
        stmt = select(t.documents).where(t.documents.c.id == document_id)
        if for_update and self.on_postgresql:
            stmt = stmt.with_for_update()
        row = await self._one(stmt, "document")
        return DOCUMENTS.load(row, steps=tuple(await self.steps(document_id)))

    async def documents(
        self, *, case_ids: Sequence[str] | None = None, kinds: Sequence[DocKind] | None = None
    ) -> list[Document]:
        """Every document (of these cases, of these kinds) with its steps, newest first."""
        stmt = select(t.documents).order_by(t.documents.c.created_at.desc())
        if case_ids is not None:
            stmt = stmt.where(t.documents.c.case_id.in_(list(case_ids)))
        if kinds is not None:
            stmt = stmt.where(t.documents.c.kind.in_([str(k) for k in kinds]))
        rows = list(await self.conn.execute(stmt))
        steps: dict[str, list[dict[str, Any]]] = {r.id: [] for r in rows}
        if rows:
            for s in await self.conn.execute(
                select(t.document_steps)
                .where(t.document_steps.c.document_id.in_(list(steps)))
                .order_by(t.document_steps.c.id)
            ):
                steps[s.document_id].append(step_view(s))
        return [DOCUMENTS.load(r, steps=tuple(steps[r.id])) for r in rows]

    async def count_documents(self, case_id: str) -> int:
        """How many documents a case has."""
        stmt = select(func.count()).where(t.documents.c.case_id == case_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def add_step(
        self,
        document_id: str,
        *,
        action: str,
        state: str,
        actor: str,
        at: datetime,
        officer_id: str | None = None,
        data: dict[str, Any] | None = None,
        receipt_id: str | None = None,
    ) -> None:
        """Append one step to a document's history."""
        await self.conn.execute(
            insert(t.document_steps).values(
                document_id=document_id,
                action=action,
                state=state,
                actor=actor,
                officer_id=officer_id,
                at=at,
                data=JSON.dump(data or {}),
                receipt_id=receipt_id,
            )
        )

    async def steps(self, document_id: str) -> list[dict[str, Any]]:
        """A document's steps, in the order they were taken."""
        stmt = (
            select(t.document_steps)
            .where(t.document_steps.c.document_id == document_id)
            .order_by(t.document_steps.c.id)
        )
        return [step_view(s) for s in await self.conn.execute(stmt)]

    async def add_item(self, item: InboxItem) -> bool:
        """Put a document in a recipient's inbox; False when it is there already."""
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.inbox_items).values(
                        INBOX_ITEMS.dump(item, "id", "document_id", "recipient", "created_at")
                    )
                )
        except IntegrityError:
            return False
        return True

    async def item(self, item_id: str) -> InboxItem:
        """The inbox item; ``NotFound`` when there is none."""
        return INBOX_ITEMS.load(
            await self._one(
                select(t.inbox_items).where(t.inbox_items.c.id == item_id), "inbox item"
            )
        )

    async def items(
        self, *, recipients: Sequence[str] | None = None, document_id: str | None = None
    ) -> list[InboxItem]:
        """Inbox items (of these recipients, of this document), oldest first."""
        stmt = select(t.inbox_items).order_by(t.inbox_items.c.created_at)
        if recipients is not None:
            stmt = stmt.where(t.inbox_items.c.recipient.in_(list(recipients)))
        if document_id is not None:
            stmt = stmt.where(t.inbox_items.c.document_id == document_id)
        return [INBOX_ITEMS.load(r) for r in await self.conn.execute(stmt)]

    async def mark_item(self, item_id: str, **values: datetime) -> None:
        """Set an item's times (``fetched_at``, ``acknowledged_at``, ``alerted_at``)."""
        await self.conn.execute(
            update(t.inbox_items).where(t.inbox_items.c.id == item_id).values(**values)
        )

    async def overdue_items(self, before: datetime) -> list[InboxItem]:
        """Delivered to a terminal or an officer before ``before``, not acknowledged, not yet
        reported to the judge."""
        stmt = (
            select(t.inbox_items)
            .join(t.documents, t.documents.c.id == t.inbox_items.c.document_id)
            .where(
                t.inbox_items.c.created_at < before,
                t.inbox_items.c.alerted_at.is_(None),
                t.documents.c.state.in_([str(DocState.ISSUED), str(DocState.DELIVERED)]),
                t.documents.c.kind.in_([str(DocKind.RENEWAL), str(DocKind.RELEASE)]),
            )
        )
        return [INBOX_ITEMS.load(r) for r in await self.conn.execute(stmt)]

    async def add_signature(
        self,
        document_id: str,
        seat: str,
        png: bytes,
        actor: str,
        at: datetime,
        officer_id: str | None,
    ) -> None:
        """Store a signature drawn by ``seat``; ``Conflict`` when that seat has signed."""
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.drawn_signatures).values(
                        document_id=document_id,
                        seat=seat,
                        png=png,
                        actor=actor,
                        at=at,
                        officer_id=officer_id,
                    )
                )
        except IntegrityError:
            raise Conflict(f"the {seat} has signed already") from None

    async def signatures(self, document_id: str) -> dict[str, tuple[bytes, datetime]]:
        """seat -> (PNG, when) of the signatures drawn on a document."""
        stmt = select(t.drawn_signatures).where(t.drawn_signatures.c.document_id == document_id)
        return {r.seat: (bytes(r.png), r.at) for r in await self.conn.execute(stmt)}
