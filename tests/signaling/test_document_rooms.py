"""signaling.documents: which rooms a connection listens in for documents, and where a change
goes. Clerks get transcripts live (their page shows a signature as it lands), never orders."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from courtlink.court.accounts import Account
from courtlink.court.documents.lifecycle import DocKind, DocState, Document
from courtlink.court.policy import AccountPrincipal
from courtlink.court.seats import AccountRole
from courtlink.signaling.documents import DocumentNotifier, inbox_rooms

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def account(role: AccountRole) -> Account:
    return Account(
        id=f"{role}-1",
        username=str(role),
        display_name=str(role),
        role=role,
        court="盐都区人民法院",
        center="",
        is_admin=False,
        password_hash=None,
        pin_hash=None,
        created_at=NOW,
    )


DOCUMENT = Document(
    id="d1",
    case_id="c1",
    kind=DocKind.TRANSCRIPT,
    state=DocState.DRAFTED,
    number="(2021)苏0903执1234号之一",
    title="笔录",
    fields={"text": "……", "version": 1},
    created_by="书记员",
    created_at=NOW,
    updated_at=NOW,
)


class Recorded:
    """The two calls of python-socketio's AsyncServer the notifier makes."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any]] = []

    async def emit(self, event: str, data: Any, room: Any = None) -> None:
        self.emitted.append((event, room))


@pytest.mark.parametrize(
    ("role", "rooms"),
    [
        (AccountRole.JUDGE, ["account:judge-1", "staff"]),
        (AccountRole.APPROVER, ["account:approver-1", "staff"]),
        (AccountRole.CLERK, ["account:clerk-1", "clerks"]),
        (AccountRole.OFFICER, ["account:officer-1"]),
    ],
)
async def test_an_account_listens_in_its_rooms(role: AccountRole, rooms: list[str]) -> None:
    principal = AccountPrincipal(account(role))
    assert await inbox_rooms(None, principal) == rooms  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "clerks"), [(DocKind.TRANSCRIPT, True), (DocKind.RENEWAL, False)])
async def test_a_change_reaches_the_clerks_only_for_transcripts(
    kind: DocKind, clerks: bool
) -> None:
    sio = Recorded()
    notifier = DocumentNotifier(
        sio,  # type: ignore[arg-type]
        document_view=lambda d: {"id": d.id},
        item_view=lambda i: {"id": i.id},
    )
    await notifier.changed(replace(DOCUMENT, kind=kind), ["seat:c1:debtor"])
    [(event, rooms)] = sio.emitted
    assert event == "document.updated"
    assert rooms[:2] == ["staff", "seat:c1:debtor"]
    assert ("clerks" in rooms) is clerks
