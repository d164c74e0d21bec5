"""Live document notifications over Socket.IO (implements court.documents.registry.Notifier).

Rooms: ``staff`` (judges and approvers: every document change, for the dashboards), ``clerks``
(transcripts only), ``account:<id>``, ``terminal:<id>``, ``seat:<case id>:<seat>`` (each
recipient's inbox). A connection enters its rooms when it connects, so a terminal that was
offline gets new items pushed the moment it is back (and fetches its whole inbox over HTTP on
connect).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import socketio

from courtlink.court.clerk import Clerk
from courtlink.court.documents.lifecycle import DocKind, Document, InboxItem
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal, TerminalPrincipal
from courtlink.court.seats import AccountRole
from courtlink.errors import CourtlinkError

__all__ = ["DocumentNotifier", "inbox_rooms"]

# How a record is shown: the web edge's views (web/schemas.py), handed in by the app, so that
# the pushed messages and the HTTP API show a document in one shape, mapped in one place.
DocumentView = Callable[[Document], dict[str, Any]]
ItemView = Callable[[InboxItem], dict[str, Any]]


async def inbox_rooms(clerk: Clerk, principal: Principal) -> list[str]:
    """The rooms a connection of ``principal`` listens in for documents."""
    match principal:
        case AccountPrincipal(account=account):
            rooms = [f"account:{account.id}"]
            if account.role in (AccountRole.JUDGE, AccountRole.APPROVER):
                rooms.append("staff")
            elif account.role is AccountRole.CLERK:
                rooms.append("clerks")  # transcripts only: clerks read no orders
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


class DocumentNotifier:
    """Pushes document changes to the rooms of their recipients, on every node."""

    def __init__(
        self, sio: socketio.AsyncServer, *, document_view: DocumentView, item_view: ItemView
    ) -> None:
        self.sio = sio
        self.document_view = document_view
        self.item_view = item_view

    # A connection in several of the rooms (a judge is in ``staff`` and in ``account:<id>``)
    # gets each message once: the rooms are given together, as one list.

    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        """A document changed: its recipients and the staff see it."""
        rooms = ["staff", *recipients]
        if document.kind is DocKind.TRANSCRIPT:
            rooms.append("clerks")  # the clerk's page shows a signature as it lands
        rooms = list(dict.fromkeys(rooms))
        await self.sio.emit("document.updated", self.document_view(document), room=rooms)

    async def delivered(self, item: InboxItem, document: Document) -> None:
        """A new item in a recipient's inbox."""
        await self.sio.emit(
            "inbox.item",
            {"item": self.item_view(item), "document": self.document_view(document)},
            room=item.recipient,
        )

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        """Nobody acknowledged ``item`` in time: the judge and the staff are told."""
        message = {"item": self.item_view(item), "document": self.document_view(document)}
        await self.sio.emit("document.overdue", message, room=[f"account:{judge_id}", "staff"])
