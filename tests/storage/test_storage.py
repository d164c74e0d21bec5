"""Storage on SQLite and PostgreSQL: migrations, every record kind through Records, conflicts,
the audit chain under concurrent writers, and rollback of a change together with its event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from courtlink.court.accounts import Account
from courtlink.court.audit import GENESIS, Checkpoint, checkpoint_payload
from courtlink.court.auditor import Auditor
from courtlink.court.cases import Case
from courtlink.court.consent import Consent
from courtlink.court.detentions import Detention, Period
from courtlink.court.invites import Invite
from courtlink.court.keys import KeyRing
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.sessions import Session, SessionState
from courtlink.court.terminals import Terminal
from courtlink.errors import Conflict, NotFound
from courtlink.storage import Store
from courtlink.storage.tables import metadata

# Microseconds and a non-UTC zone: both must survive the database.
T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = Store(database_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys")


def judge(id: str = "j1", username: str = "judge") -> Account:
    return Account(
        id=id,
        username=username,
        display_name="张法官",
        role=AccountRole.JUDGE,
        court="盐城市盐都区人民法院",
        center="",
        is_admin=True,
        password_hash="$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA",
        pin_hash=None,
        created_at=T0,
    )


def case(id: str = "c1", number: str = "(2021)苏0903执1234号") -> Case:
    return Case(
        id=id,
        number=number,
        court="盐城市盐都区人民法院",
        judge_id="j1",
        creditor_name="王建国",
        debtor_name="李某",
        amount_owed_fen=35_600_000_000_00,  # beyond 32 bits
        amount_paid_fen=12_345,
        created_at=T0,
    )


def session(id: str = "s1") -> Session:
    return Session(
        id=id,
        case_id="c1",
        scheduled_at=T0 + timedelta(days=1),
        state=SessionState.SCHEDULED,
        lobby=True,
        recorded=False,
        created_by="account:judge",
        created_at=T0,
    )


async def seed(store: Store) -> None:
    async with store.write() as tx:
        await tx.add_account(judge())
        await tx.add_case(case())
        await tx.add_session(session())


async def test_open_migrates_to_the_newest_revision(store: Store) -> None:
    current, newest = await store.revision()
    assert current == newest
    async with store.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert set(metadata.tables) <= tables
    # The head row exists from the start.
    async with store.read() as tx:
        assert await tx.audit_head() == (0, GENESIS, 0)
    # Opening again and upgrading again change nothing.
    await store.open()
    assert await store.upgrade() == current


async def test_reopening_a_migrated_database_keeps_its_data(database_url: str) -> None:
    first = Store(database_url)
    await first.open()
    await seed(first)
    await first.close()
    await first.close()  # idempotent
    second = Store(database_url)
    await second.open()
    try:
        async with second.read() as tx:
            assert await tx.case("c1") == case()
    finally:
        await second.close()


async def test_migrated_schema_matches_the_metadata(store: Store) -> None:
    def differences(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as conn:
        diffs = await conn.run_sync(differences)
    assert diffs == []


async def test_accounts_round_trip(store: Store) -> None:
    officer = Account(
        id="o1",
        username="officer",
        display_name="陈警官",
        role=AccountRole.OFFICER,
        court="",
        center="盐城市拘留所",
        is_admin=False,
        password_hash=None,
        pin_hash="$argon2id$pin",
        created_at=T0,
        disabled=True,
    )
    async with store.write() as tx:
        await tx.add_account(judge())
        await tx.add_account(officer)
    async with store.read() as tx:
        assert await tx.account("j1") == judge()
        assert await tx.account("o1") == officer
        assert await tx.account_by_username("officer") == officer
        assert await tx.account_by_username("nobody") is None
        assert await tx.accounts() == [judge(), officer]
        assert await tx.accounts(AccountRole.OFFICER) == [officer]
        with pytest.raises(NotFound):
            await tx.account("missing")
    async with store.read() as tx:
        stored = await tx.account("j1")
    assert stored.created_at.utcoffset() == timedelta(0)  # read back as UTC, same instant


async def test_logins_and_failures_round_trip(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.add_login("h" * 64, "j1", "csrf-1", T0, T0 + timedelta(hours=12))
        await tx.add_login_failure("judge", "10.0.0.1", T0)
        await tx.add_login_failure("judge", "10.0.0.2", T0 + timedelta(minutes=5))
        await tx.add_login_failure("other", "10.0.0.1", T0 + timedelta(minutes=6))
    async with store.read() as tx:
        assert await tx.login("h" * 64, T0 + timedelta(hours=1)) == (judge(), "csrf-1")
        assert await tx.login("h" * 64, T0 + timedelta(hours=12)) is None  # expired
        assert await tx.login("x" * 64, T0) is None
        assert await tx.login_failures_since("judge", T0 - timedelta(seconds=1)) == 2
        assert await tx.login_failures_since("judge", T0) == 1  # strictly after
        assert await tx.login_failures_from("10.0.0.1", T0 - timedelta(seconds=1)) == 2
    async with store.write() as tx:
        await tx.end_login("h" * 64, T0 + timedelta(minutes=1))
        await tx.clear_login_failures("judge")
    async with store.read() as tx:
        assert await tx.login("h" * 64, T0 + timedelta(hours=1)) is None
        assert await tx.login_failures_since("judge", T0 - timedelta(days=1)) == 0
        assert await tx.login_failures_since("other", T0 - timedelta(days=1)) == 1


async def test_cases_round_trip(store: Store) -> None:
    async with store.write() as tx:
        await tx.add_account(judge())
        await tx.add_case(case())
        await tx.add_case(case("c2", "(2022)苏0903执1号"))
    async with store.read() as tx:
        assert await tx.case("c1") == case()
        assert await tx.case_by_number("(2021)苏0903执1234号") == case()
        assert await tx.case_by_number("(2030)苏0903执1号") is None
        assert {c.id for c in await tx.cases()} == {"c1", "c2"}
        assert await tx.cases(judge_id="nobody") == []
    async with store.write() as tx:
        await tx.set_amount_paid("c1", 35_600_000_000_00)
    async with store.read() as tx:
        assert (await tx.case("c1")).amount_outstanding_fen == 0


async def test_detentions_round_trip_with_their_periods(store: Store) -> None:
    await seed(store)
    first = Detention(
        id="d1",
        case_id="c1",
        debtor_name="李某",
        center="盐城市拘留所",
        periods=(Period(T0, 15),),
        created_at=T0,
    )
    other = Detention(
        id="d2",
        case_id="c1",
        debtor_name="李某",
        center="南京市拘留所",
        periods=(Period(T0, 3),),
        created_at=T0 + timedelta(seconds=1),
    )
    async with store.write() as tx:
        await tx.add_detention(first)
        await tx.add_detention(other)
    async with store.read() as tx:
        assert await tx.detention("d1") == first
    changed = first.renewed(10, 15, T0 + timedelta(days=14)).renewed(5, 15, T0)
    changed = changed.released(T0 + timedelta(days=20))
    async with store.write() as tx:
        await tx.save_detention(changed)
    async with store.read() as tx:
        stored = await tx.detention("d1")
        assert stored == changed
        assert stored.periods == (
            Period(T0, 15),
            Period(T0 + timedelta(days=15), 10),
            Period(T0 + timedelta(days=25), 5),
        )
        assert [d.id for d in await tx.detentions()] == ["d1", "d2"]
        assert [d.id for d in await tx.detentions(center="南京市拘留所")] == ["d2"]
        assert [d.id for d in await tx.detentions(case_ids=["c1"], center="盐城市拘留所")] == ["d1"]
        assert await tx.detentions(case_ids=["nope"]) == []
        with pytest.raises(NotFound):
            await tx.detention("missing")


async def test_sessions_invites_and_consents_round_trip(store: Store) -> None:
    await seed(store)
    terminal_invite = Invite(
        id="i1",
        session_id="s1",
        seats=(Seat.OFFICER, Seat.DEBTOR),
        expires_at=T0 + timedelta(hours=72),
        created_by="account:judge",
        created_at=T0,
        label="会见室一号终端",
    )
    creditor_invite = Invite(
        id="i2",
        session_id="s1",
        seats=(Seat.CREDITOR,),
        expires_at=T0 + timedelta(hours=1),
        created_by="account:judge",
        created_at=T0 + timedelta(seconds=1),
    )
    consent = Consent(
        session_id="s1",
        seat=Seat.DEBTOR,
        invite_id="i1",
        at=T0 + timedelta(minutes=3),
        recorded=True,
        text_version=1,
        confirmed_by="o1",
    )
    async with store.write() as tx:
        await tx.add_invite(terminal_invite)
        await tx.add_invite(creditor_invite)
        await tx.add_consent(consent)
    ended = session().ended(T0 + timedelta(hours=2))
    async with store.write() as tx:
        await tx.revoke_invite("i2", T0 + timedelta(minutes=30))
        await tx.save_session(ended)
    async with store.read() as tx:
        assert await tx.session("s1") == ended
        assert await tx.sessions() == [ended]
        assert await tx.sessions(case_ids=["other"]) == []
        assert await tx.invite("i1") == terminal_invite
        revoked = await tx.invite("i2")
        assert revoked.revoked_at == T0 + timedelta(minutes=30)
        assert await tx.invites("s1") == [terminal_invite, revoked]
        assert await tx.consents("s1") == [consent]
        assert await tx.consents("other") == []
        for missing in (tx.session("x"), tx.invite("x")):
            with pytest.raises(NotFound):
                await missing


async def test_terminals_and_meta_round_trip(store: Store) -> None:
    kiosk = Terminal("t1", "会见室一号终端", "盐城市拘留所", "$argon2id$cred", T0)
    spare = Terminal("t2", "备用终端", "盐城市拘留所", "$argon2id$cred2", T0, disabled=True)
    async with store.write() as tx:
        await tx.add_terminal(kiosk)
        await tx.add_terminal(spare)
        await tx.set_meta("demo", '{"session": "s1"}')
        await tx.set_meta("demo", '{"session": "s2"}')  # replaces
    async with store.read() as tx:
        assert await tx.terminal("t1") == kiosk
        assert await tx.terminals() == [kiosk, spare]
        assert await tx.meta("demo") == '{"session": "s2"}'
        assert await tx.meta("missing") is None
        with pytest.raises(NotFound):
            await tx.terminal("missing")


async def test_audit_events_and_checkpoints_round_trip(store: Store, keys: KeyRing) -> None:
    async with store.write() as tx:
        first = await tx.append_audit(
            at=T0,
            kind="case.created",
            actor="account:judge",
            session_id=None,
            case_id="c1",
            data={"number": "(2021)苏0903执1234号", "amount": 356000},
        )
        second = await tx.append_audit(
            at=T0 + timedelta(seconds=1),
            kind="session.created",
            actor="account:judge",
            session_id="s1",
            case_id="c1",
            data={"nested": {"b": [1, 2], "a": None}},
        )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    kid = keys.current_kid
    at = T0 + timedelta(seconds=2)
    _, signature = keys.sign(checkpoint_payload(2, second.hash, at, kid))
    checkpoint = Checkpoint(seq=2, hash=second.hash, at=at, kid=kid, signature=signature)
    async with store.write() as tx:
        assert await tx.audit_head_for_update() == (2, second.hash, 0)
        await tx.add_checkpoint(checkpoint)
    async with store.read() as tx:
        events = [e async for e in tx.stream_audit(batch=1)]  # batches join seamlessly
        assert events == [first, second]
        assert all(e.recomputed() == e.hash for e in events)
        assert await tx.audit_events(case_id="c1", after=1) == [second]
        assert await tx.audit_events(session_id="s1") == [second]
        assert await tx.audit_head() == (2, second.hash, 2)
        stored = await tx.checkpoints()
    assert stored == [checkpoint]
    assert keys.verify(kid, stored[0].payload(), stored[0].signature)


async def test_duplicate_case_number_is_a_conflict(store: Store) -> None:
    await seed(store)
    with pytest.raises(Conflict, match="case"):
        async with store.write() as tx:
            await tx.add_case(case("c2"))  # same number, another id
    async with store.read() as tx:
        assert [c.id for c in await tx.cases()] == ["c1"]


async def test_duplicate_username_is_a_conflict(store: Store) -> None:
    async with store.write() as tx:
        await tx.add_account(judge())
    with pytest.raises(Conflict, match="judge"):
        async with store.write() as tx:
            await tx.add_account(judge(id="j2"))


async def test_a_conflict_leaves_the_transaction_usable(store: Store) -> None:
    """The failed insert is undone alone (a savepoint); the rest of the transaction commits."""
    async with store.write() as tx:
        await tx.add_account(judge())
        with pytest.raises(Conflict):
            await tx.add_account(judge(id="j2"))
        await tx.add_account(judge(id="j3", username="judge3"))
    async with store.read() as tx:
        assert [a.id for a in await tx.accounts()] == ["j1", "j3"]


async def log_concurrently(auditors: list[Auditor], count: int) -> list[int]:
    events = await asyncio.gather(
        *(
            auditors[i % len(auditors)].log("participant.joined", f"invite:{i}", data={"i": i})
            for i in range(count)
        )
    )
    return [e.seq for e in events]


async def test_concurrent_appends_make_one_gapless_chain(
    store: Store, keys: KeyRing, tmp_path: Path
) -> None:
    auditor = Auditor(store, keys, tmp_path / "witness.jsonl")
    seqs = await log_concurrently([auditor], 50)
    assert sorted(seqs) == list(range(1, 51))
    assert await auditor.checkpoint() is not None
    report = await auditor.verify()
    assert report.ok, report.summary()
    assert report.events == 50
    async with store.read() as tx:
        events = [e async for e in tx.stream_audit()]
    assert sorted(e.data["i"] for e in events) == list(range(50))  # none lost


async def test_two_stores_on_one_database_append_without_gaps(
    database_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """Two processes (two nodes, or the CLI next to the server): no shared in-process lock."""
    stores = [Store(database_url), Store(database_url)]
    for s in stores:
        await s.open()
    try:
        auditors = [Auditor(s, keys, tmp_path / "witness.jsonl") for s in stores]
        seqs = await log_concurrently(auditors, 50)
        assert sorted(seqs) == list(range(1, 51))
        report = await auditors[0].verify()
        assert report.ok, report.summary()
    finally:
        for s in stores:
            await s.close()


async def test_an_error_rolls_back_the_change_and_its_audit_event(
    store: Store, keys: KeyRing, tmp_path: Path
) -> None:
    auditor = Auditor(store, keys, tmp_path / "witness.jsonl")
    async with store.write() as tx:
        await tx.add_account(judge())
    await auditor.log("account.created", "operator")
    async with store.read() as tx:
        head = await tx.audit_head()

    class Boom(Exception):
        pass

    async def change_then_fail() -> None:
        async with store.write() as tx:
            await tx.add_case(case())
            await auditor.record(tx, "case.created", "account:judge", case_id="c1")
            async with store.engine.connect() as other:  # not visible before commit
                assert (await other.execute(text("SELECT count(*) FROM cases"))).scalar() == 0
            raise Boom

    with pytest.raises(Boom):
        await change_then_fail()

    async with store.read() as tx:
        with pytest.raises(NotFound):
            await tx.case("c1")
        assert await tx.audit_head() == head
        assert [e.kind for e in await tx.audit_events()] == ["account.created"]
    # The chain continues from where it was, with no hole.
    after = await auditor.log("case.created", "account:judge")
    assert after.seq == head[0] + 1
    assert (await auditor.verify()).ok


async def test_events_written_with_any_time_zone_verify(
    store: Store, keys: KeyRing, tmp_path: Path
) -> None:
    """A clock in Beijing time (UTC+8): the database gives the time back in UTC, and the chain
    and its checkpoints must still verify."""
    beijing = timezone(timedelta(hours=8))
    auditor = Auditor(
        store, keys, tmp_path / "witness.jsonl", clock=lambda: datetime.now(UTC).astimezone(beijing)
    )
    for i in range(3):
        await auditor.log("participant.joined", f"invite:{i}")
    assert await auditor.checkpoint() is not None
    report = await auditor.verify()
    assert report.ok, report.summary()
