"""Live document notifications over Socket.IO (implements rooms.registry.Notifier).

Rooms: ``staff`` (judges and approvers: every document change, for the dashboards),
``account:<id>``, ``terminal:<id>``, ``seat:<case id>:<seat>`` (each recipient's inbox). A
connection enters its rooms when it connects, so a terminal that was offline gets new items
pushed the moment it is back (and fetches its whole inbox over HTTP on connect).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from courtlink.court.documents.lifecycle import Document, InboxItem

if TYPE_CHECKING:
    from courtlink.signaling.server import SignalingServer

__all__ = ["DocumentNotifier", "document_view", "item_view"]


def document_view(document: Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "case_id": document.case_id,
        "detention_id": document.detention_id,
        "parent_id": document.parent_id,
        "kind": str(document.kind),
        "state": str(document.state),
        "number": document.number,
        "title": document.title,
        "fields": document.fields,
        "sha256": document.sha256,
        "size": document.size,
        "media_type": document.media_type,
        "file_name": document.file_name,
        "signed_by": document.signed_by,
        "created_at": document.created_at.isoformat(),
        "updated_at": None if document.updated_at is None else document.updated_at.isoformat(),
        "steps": list(document.steps),
    }


def item_view(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "document_id": item.document_id,
        "recipient": item.recipient,
        "created_at": item.created_at.isoformat(),
        "fetched_at": None if item.fetched_at is None else item.fetched_at.isoformat(),
        "acknowledged_at": None
        if item.acknowledged_at is None
        else item.acknowledged_at.isoformat(),
    }


class DocumentNotifier:
    def __init__(self, server: SignalingServer) -> None:
        self.server = server

    # A connection in several of the rooms (a judge is in ``staff`` and in ``account:<id>``)
    # gets each message once: the rooms are given together, as one list.

    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        rooms = list(dict.fromkeys(["staff", *recipients]))
        await self.server.sio.emit("document.updated", document_view(document), room=rooms)

    async def delivered(self, item: InboxItem, document: Document) -> None:
        await self.server.sio.emit(
            "inbox.item",
            {"item": item_view(item), "document": document_view(document)},
            room=item.recipient,
        )

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        message = {"item": item_view(item), "document": document_view(document)}
        await self.server.sio.emit(
            "document.overdue", message, room=[f"account:{judge_id}", "staff"]
        )
