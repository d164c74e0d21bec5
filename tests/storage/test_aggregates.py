"""Each aggregate's queries on SQLite and PostgreSQL: on their own over one connection, and
combined in ``Records`` with the API callers use. Documents, name locks and the audit stream's
batches are here; test_storage.py has the round trips of the other records."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from courtlink.court.accounts import Account
from courtlink.court.cases import Case
from courtlink.court.detentions import Detention, Period
from courtlink.court.documents.lifecycle import DocKind, DocState, Document, InboxItem
from courtlink.court.seats import AccountRole
from courtlink.court.terminals import Terminal
from courtlink.errors import Conflict, NotFound
from courtlink.storage import Records, Store
from courtlink.storage.accounts import AccountRecords
from courtlink.storage.audit import AuditRecords
from courtlink.storage.cases import CaseRecords
from courtlink.storage.documents import DocumentRecords
from courtlink.storage.meta import MetaRecords
from courtlink.storage.queries import Queries
from courtlink.storage.sessions import SessionRecords
from courtlink.storage.terminals import TerminalRecords

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))

PARTS: tuple[type[Queries], ...] = (
    AccountRecords,
    CaseRecords,
    SessionRecords,
    TerminalRecords,
    AuditRecords,
    DocumentRecords,
    MetaRecords,
)

# What callers (court/, web/, cli/, tests) use of Records: the split must keep every name.
API = {
    "account", "account_by_username", "accounts", "add_account", "add_case", "add_checkpoint",
    "add_consent", "add_detention", "add_document", "add_invite", "add_item", "add_login",
    "add_login_failure", "add_session", "add_signature", "add_step", "add_terminal",
    "append_audit", "audit_events", "audit_head", "audit_head_for_update", "case",
    "case_by_number", "cases", "checkpoints", "clear_login_failures", "consents",
    "count_documents", "detention", "detentions", "document", "documents", "end_login", "invite",
    "invites", "item", "items", "lock_name", "login", "login_failures_from",
    "login_failures_since", "mark_item", "meta", "overdue_items", "revoke_invite",
    "save_detention", "save_document", "save_session", "session", "sessions", "set_amount_paid",
    "set_meta", "signatures", "steps", "stream_audit", "terminal", "terminals",
}  # fmt: skip


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = Store(database_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def conn(store: Store) -> AsyncIterator[AsyncConnection]:
    """A bare connection in a transaction, for one aggregate's queries on their own."""
    async with store.engine.connect() as opened, opened.begin():
        yield opened


def judge() -> Account:
    return Account(
        id="j1",
        username="judge",
        display_name="张法官",
        role=AccountRole.JUDGE,
        court="盐城市盐都区人民法院",
        center="",
        is_admin=False,
        password_hash="$argon2id$pw",
        pin_hash=None,
        created_at=T0,
    )


def case() -> Case:
    return Case("c1", "(2021)苏0903执1234号", "法院", "j1", "王建国", "李某", 356_000_00, 0, T0)


def renewal(id: str = "doc1", number: str = "(2021)苏0903执1234号之一") -> Document:
    return Document(
        id=id,
        case_id="c1",
        kind=DocKind.RENEWAL,
        state=DocState.DRAFTED,
        number=number,
        title="续拘决定书",
        fields={"days": 10, "reason": "拒不履行"},
        created_by="account:j1",
        created_at=T0,
        detention_id="d1",
    )


async def seed(store: Store) -> None:
    async with store.write() as tx:
        await tx.add_account(judge())
        await tx.add_case(case())


# Composition ---------------------------------------------------------------------------------


def public_queries(part: type) -> set[str]:
    return {
        name
        for name, value in vars(part).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


def test_records_has_the_whole_api_and_each_query_lives_in_one_part() -> None:
    seen: dict[str, type] = {}
    for part in PARTS:
        for name in public_queries(part):
            assert name not in seen, f"{name} in both {seen[name].__name__} and {part.__name__}"
            seen[name] = part
    assert set(seen) == API
    assert all(hasattr(Records, name) for name in API)
    assert public_queries(Records) == set()  # Records only combines


# Each part on its own ------------------------------------------------------------------------


async def test_accounts_alone(conn: AsyncConnection) -> None:
    accounts = AccountRecords(conn)
    await accounts.add_account(judge())
    assert await accounts.account("j1") == judge()
    await accounts.add_login("h" * 64, "j1", "csrf", T0, T0 + timedelta(hours=1))
    assert await accounts.login("h" * 64, T0) == (judge(), "csrf")
    await accounts.add_login_failure("judge", "x" * 100, T0)  # cut to the column's width
    assert await accounts.login_failures_from("x" * 64, T0 - timedelta(seconds=1)) == 1
    await accounts.lock_name("judge")


async def test_cases_alone(conn: AsyncConnection) -> None:
    await AccountRecords(conn).add_account(judge())
    cases = CaseRecords(conn)
    await cases.add_case(case())
    detention = Detention("d1", "c1", "李某", "拘留所", (Period(T0, 15), Period(T0, 5)), None, T0)
    await cases.add_detention(detention)
    assert await cases.case("c1") == case()
    assert await cases.detentions(case_ids=["c1"]) == [detention]


async def test_terminals_and_meta_alone(conn: AsyncConnection) -> None:
    kiosk = Terminal("t1", "终端", "拘留所", "$argon2id$cred", T0)
    await TerminalRecords(conn).add_terminal(kiosk)
    assert await TerminalRecords(conn).terminals() == [kiosk]
    await MetaRecords(conn).set_meta("k", "v")
    assert await MetaRecords(conn).meta("k") == "v"


async def test_audit_alone(conn: AsyncConnection) -> None:
    audit = AuditRecords(conn)
    event = await audit.append_audit(
        at=T0, kind="k", actor="operator", session_id=None, case_id=None, data={"b": 1, "a": 2}
    )
    assert await audit.audit_events() == [event]
    assert event.recomputed() == event.hash


# Documents -----------------------------------------------------------------------------------


async def test_documents_round_trip_with_their_steps(store: Store) -> None:
    await seed(store)
    upload = Document(
        id="doc2",
        case_id="c1",
        kind=DocKind.UPLOAD,
        state=DocState.FINAL,
        number="上传-1",
        title="付款截图",
        fields={},
        created_by="seat:c1:creditor",
        created_at=T0 + timedelta(seconds=1),
        parent_id="doc1",
        sha256="a" * 64,
        size=2**33,  # beyond 32 bits
        media_type="image/png",
        file_name="付款.png",
        updated_at=T0 + timedelta(seconds=2),
    )
    async with store.write() as tx:
        await tx.add_document(renewal())
        await tx.add_document(upload)
        await tx.add_step(
            "doc1", action="draft", state="drafted", actor="account:j1", at=T0, data={"n": "李"}
        )
        await tx.add_step(
            "doc1",
            action="approve",
            state="approved",
            actor="account:a1",
            at=T0 + timedelta(minutes=1),
            officer_id="o1",
            receipt_id="r1",
        )
    steps = (
        {
            "action": "draft",
            "state": "drafted",
            "actor": "account:j1",
            "officer_id": None,
            "at": T0.astimezone(UTC).isoformat(),  # read back in UTC
            "data": {"n": "李"},
            "receipt_id": None,
        },
        {
            "action": "approve",
            "state": "approved",
            "actor": "account:a1",
            "officer_id": "o1",
            "at": (T0 + timedelta(minutes=1)).astimezone(UTC).isoformat(),
            "data": {},
            "receipt_id": "r1",
        },
    )
    # A new document was last updated when it was made.
    stored = replace_steps(renewal(), steps, updated_at=T0)
    async with store.read() as tx:
        assert await tx.document("doc1") == stored
        assert await tx.document("doc2") == upload
        assert await tx.steps("doc1") == list(steps)
        assert await tx.documents() == [upload, stored]  # newest first
        assert await tx.documents(kinds=[DocKind.RENEWAL]) == [stored]
        assert await tx.documents(case_ids=["other"]) == []
        assert await tx.count_documents("c1") == 2
        with pytest.raises(NotFound, match="document"):
            await tx.document("missing")

    issued = replace_steps(
        stored,
        steps,
        state=DocState.ISSUED,
        fields={"days": 15},
        updated_at=T0 + timedelta(hours=1),
        sha256="b" * 64,
        size=4096,
        file_name="续拘决定书.pdf",
        signed_by="k1",
    )
    async with store.write() as tx:
        await tx.save_document(issued)
        assert await tx.document("doc1", for_update=True) == issued
    async with store.write() as tx:
        with pytest.raises(Conflict, match="document"):
            await tx.add_document(renewal(id="doc3"))  # the same number
        assert await tx.count_documents("c1") == 2  # the transaction goes on


def replace_steps(
    document: Document, steps: tuple[dict[str, Any], ...], **changes: Any
) -> Document:
    return replace(document, steps=steps, **changes)


async def test_inbox_items_and_overdue_ones(store: Store) -> None:
    await seed(store)
    later = T0 + timedelta(hours=1)
    async with store.write() as tx:
        await tx.add_document(replace_steps(renewal(), (), state=DocState.ISSUED))
        await tx.add_document(replace_steps(renewal("doc2", "二"), (), kind=DocKind.SETTLEMENT))
        assert await tx.add_item(InboxItem("i1", "doc1", "terminal:t1", T0))
        assert await tx.add_item(InboxItem("i2", "doc1", "account:j1", later))
        assert await tx.add_item(InboxItem("i3", "doc2", "terminal:t1", T0 + timedelta(seconds=1)))
        assert not await tx.add_item(InboxItem("i4", "doc1", "terminal:t1", later))  # there
    async with store.write() as tx:
        await tx.mark_item("i2", fetched_at=later, acknowledged_at=later)
    async with store.read() as tx:
        assert await tx.item("i1") == InboxItem("i1", "doc1", "terminal:t1", T0)
        assert await tx.item("i2") == InboxItem("i2", "doc1", "account:j1", later, later, later)
        assert [i.id for i in await tx.items()] == ["i1", "i3", "i2"]  # oldest first
        assert [i.id for i in await tx.items(recipients=["terminal:t1"])] == ["i1", "i3"]
        assert [i.id for i in await tx.items(document_id="doc1")] == ["i1", "i2"]
        # Orders only, issued or delivered, older than the limit, not yet reported.
        assert [i.id for i in await tx.overdue_items(T0 + timedelta(minutes=1))] == ["i1"]
        with pytest.raises(NotFound, match="inbox item"):
            await tx.item("missing")
    async with store.write() as tx:
        await tx.mark_item("i1", alerted_at=later)
    async with store.read() as tx:
        assert await tx.overdue_items(T0 + timedelta(minutes=1)) == []


async def test_drawn_signatures_once_per_seat(store: Store) -> None:
    await seed(store)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    async with store.write() as tx:
        await tx.add_document(renewal())
        await tx.add_signature("doc1", "debtor", png, "invite:i1", T0, "o1")
        with pytest.raises(Conflict, match="debtor has signed already"):
            await tx.add_signature("doc1", "debtor", b"again", "invite:i1", T0, None)
        await tx.add_signature("doc1", "creditor", png, "invite:i2", T0, None)
    async with store.read() as tx:
        assert await tx.signatures("doc1") == {"debtor": (png, T0), "creditor": (png, T0)}
        assert await tx.signatures("other") == {}


# Locks and the audit stream ------------------------------------------------------------------


async def test_a_name_lock_holds_until_the_transaction_ends(database_url: str) -> None:
    """Two stores, as two processes would have: no shared in-process lock. PostgreSQL: the
    advisory lock makes the second wait; SQLite: the write lock (BEGIN IMMEDIATE) does."""
    stores = [Store(database_url), Store(database_url)]
    for s in stores:
        await s.open()
    order: list[str] = []
    first_locked = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with stores[0].write() as tx:
            await tx.lock_name("judge")
            first_locked.set()
            await release.wait()
            order.append("first")

    async def second() -> None:
        await first_locked.wait()
        async with stores[1].write() as tx:
            await tx.lock_name("judge")
            order.append("second")

    try:
        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await first_locked.wait()
        await asyncio.sleep(0.3)
        assert order == []  # the second is still waiting
        release.set()
        await asyncio.gather(*tasks)
        assert order == ["first", "second"]
    finally:
        for s in stores:
            await s.close()


@pytest.mark.parametrize("count", [0, 3, 4, 5])
async def test_the_audit_stream_joins_its_batches(store: Store, count: int) -> None:
    async with store.write() as tx:
        for i in range(count):
            await tx.append_audit(
                at=T0, kind="k", actor="operator", session_id=None, case_id=None, data={"i": i}
            )
    async with store.read() as tx:
        streamed = [e async for e in tx.stream_audit(batch=2)]
    assert [e.seq for e in streamed] == list(range(1, count + 1))
    assert [e.data["i"] for e in streamed] == list(range(count))
