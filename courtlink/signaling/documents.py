"""Live document notifications over Socket.IO (implements court.documents.registry.Notifier).

Rooms: ``staff`` (judges and approvers: every document change, for the dashboards),
``account:<id>``, ``terminal:<id>``, ``seat:<case id>:<seat>`` (each recipient's inbox). A
connection enters its rooms when it connects, so a terminal that was offline gets new items
pushed the moment it is back (and fetches its whole inbox over HTTP on connect).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import socketio

from courtlink.court.clerk import Clerk
from courtlink.court.documents.lifecycle import Document, InboxItem
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal, TerminalPrincipal
from courtlink.court.seats import AccountRole
from courtlink.errors import CourtlinkError

__all__ = ["DocumentNotifier", "document_view", "inbox_rooms", "item_view"]


async def inbox_rooms(clerk: Clerk, principal: Principal) -> list[str]:
    """The rooms a connection of ``principal`` listens in for documents."""
    match principal:
        case AccountPrincipal(account=account):
            rooms = [f"account:{account.id}"]
            if account.role in (AccountRole.JUDGE, AccountRole.APPROVER):
                rooms.append("staff")
            return rooms
        case TerminalPrincipal(terminal=terminal):
            return [f"terminal:{terminal.id}"]
        case InvitePrincipal(claims=claims):
            try:
                session, _ = await clerk.session(principal, claims.session_id)
            except CourtlinkError:
                return []
            return [f"seat:{session.case_id}:{seat}" for seat in claims.seats]
    return []


def document_view(document: Document) -> dict[str, Any]:
    """A document as the protocol and the HTTP API show it."""
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
    """An inbox item as the protocol and the HTTP API show it."""
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
    """Pushes document changes to the rooms of their recipients, on every node."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    # A connection in several of the rooms (a judge is in ``staff`` and in ``account:<id>``)
    # gets each message once: the rooms are given together, as one list.

    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        """A document changed: its recipients and the staff see it."""
        rooms = list(dict.fromkeys(["staff", *recipients]))
        await self.sio.emit("document.updated", document_view(document), room=rooms)

    async def delivered(self, item: InboxItem, document: Document) -> None:
        """A new item in a recipient's inbox."""
        await self.sio.emit(
            "inbox.item",
            {"item": item_view(item), "document": document_view(document)},
            room=item.recipient,
        )

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        """Nobody acknowledged ``item`` in time: the judge and the staff are told."""
        message = {"item": item_view(item), "document": document_view(document)}
        await self.sio.emit("document.overdue", message, room=[f"account:{judge_id}", "staff"])
