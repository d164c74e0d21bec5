"""End to end: a real chain written by the services, tampered with directly in SQLite or
PostgreSQL, then `courtlink audit verify` run as the operator would run it.

The layout of every chain here: the world's events, a forced checkpoint at ``cp``, a few more
events, and the checkpoint that a clean stop signs over the head (``end``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from courtlink.court.audit import AuditEvent, AuditKind, event_hash
from courtlink.court.auditor import Auditor
from courtlink.court.hashing import SecretHasher
from courtlink.court.keys import KeyRing
from courtlink.court.policy import InvitePrincipal
from courtlink.storage import Store
from courtlink.storage import tables as t
from courtlink.web.services import open_services
from tests.conftest import POSTGRES_URL, make_settings, missing
from tests.helpers import PASSWORD, build_world

COURTLINK = Path(sys.executable).with_name("courtlink")
K = 5  # the row tampered with in the middle of the chain


@dataclass
class Chain:
    data_dir: Path
    url: str
    events: list[AuditEvent]
    cp: int  # the forced checkpoint
    end: int  # the head, signed at the clean stop

    def hash(self, seq: int) -> str:
        return self.events[seq - 1].hash


async def write_chain(data_dir: Path, url: str, hasher: SecretHasher) -> Chain:
    settings = make_settings(data_dir, database={"url": url})
    async with open_services(settings, hasher=hasher) as services:
        world = await build_world(services)
        clerk, gate = services.clerk, services.gate
        for token in world.tokens.values():
            await clerk.open_invite(token)
        await gate.login("judge", PASSWORD, "10.0.0.7")
        creditor = await clerk.check_invite(world.tokens["creditor"])
        await clerk.give_consent(InvitePrincipal(creditor))
        checkpoint = await services.auditor.checkpoint()
        assert checkpoint is not None
        for seat in ("judge", "creditor", "terminal"):
            await clerk.record(
                AuditKind.JOINED, f"invite:{world.invites[seat].id}", session_id=world.session.id
            )
        await clerk.note_presence(world.session.id, judge_in=True, others_in=2)
    store = Store(url)
    await store.open(migrate=False)
    try:
        async with store.read() as tx:
            events = [e async for e in tx.stream_audit()]
            checkpoints = [c.seq for c in await tx.checkpoints()]
    finally:
        await store.close()
    assert checkpoints == [checkpoint.seq, len(events)]
    assert len(events) >= 24
    assert K + 2 < checkpoint.seq < len(events) - 2
    return Chain(data_dir, url, events, checkpoint.seq, len(events))


async def tamper(
    url: str, change: Callable[[AsyncConnection], Awaitable[int | None]]
) -> int | None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            return await change(conn)
    finally:
        await engine.dispose()


# Each scenario tampers with a copy of the chain and returns the seq that verification must
# name first (None: nothing was changed, the chain must verify).
Scenario = Callable[[AsyncConnection, Chain], Awaitable[int | None]]


async def untouched(conn: AsyncConnection, chain: Chain) -> None:
    return None


async def alter_data(conn: AsyncConnection, chain: Chain) -> int:
    data = dict(chain.events[K - 1].data)
    data["tampered"] = "yes"
    await conn.execute(
        update(t.audit_events).where(t.audit_events.c.seq == K).values(data=json.dumps(data))
    )
    return K


async def unreadable_data(conn: AsyncConnection, chain: Chain) -> int:
    await conn.execute(
        update(t.audit_events).where(t.audit_events.c.seq == K).values(data="{not json")
    )
    return K


async def insert_forged_row(conn: AsyncConnection, chain: Chain) -> int:
    events = t.audit_events
    # Move rows K.. one up (through negative numbers: the primary key is checked per row).
    await conn.execute(update(events).where(events.c.seq >= K).values(seq=-(events.c.seq + 1)))
    await conn.execute(update(events).where(events.c.seq < 0).values(seq=-events.c.seq))
    forged: dict[str, Any] = {
        "seq": K,
        "at": chain.events[K - 1].at,
        "kind": "account.login",
        "actor": "account:judge2",
        "session_id": None,
        "case_id": None,
        "data": {"remote": "10.9.9.9"},
        "prev_hash": chain.hash(K - 1),
    }
    digest = event_hash(**forged)
    await conn.execute(
        insert(events).values({**forged, "data": json.dumps(forged["data"]), "hash": digest})
    )
    # A careful forger moves the head too.
    await conn.execute(update(t.audit_head).values(seq=chain.end + 1, hash=chain.hash(chain.end)))
    # The forged row links to K-1; the old row K, now K+1, does not link to the forged one.
    return K + 1


async def delete_middle_row(conn: AsyncConnection, chain: Chain) -> int:
    await conn.execute(delete(t.audit_events).where(t.audit_events.c.seq == K))
    return K


async def cut_tail_after_checkpoint(conn: AsyncConnection, chain: Chain) -> int:
    await conn.execute(delete(t.audit_events).where(t.audit_events.c.seq > chain.cp))
    return chain.cp + 1


async def cut_tail_and_edit_head(conn: AsyncConnection, chain: Chain) -> int:
    keep = chain.cp - 3
    await conn.execute(delete(t.audit_events).where(t.audit_events.c.seq > keep))
    await conn.execute(update(t.audit_head).values(seq=keep, hash=chain.hash(keep)))
    return keep + 1


async def cut_tail_checkpoints_and_head(conn: AsyncConnection, chain: Chain) -> int:
    """Everything in the database agrees; only the witness file remembers."""
    keep = chain.cp - 3
    await conn.execute(delete(t.audit_events).where(t.audit_events.c.seq > keep))
    await conn.execute(delete(t.audit_checkpoints).where(t.audit_checkpoints.c.seq > keep))
    await conn.execute(
        update(t.audit_head).values(seq=keep, hash=chain.hash(keep), checkpoint_seq=0)
    )
    return keep + 1


SCENARIOS: dict[str, Scenario] = {
    "intact": untouched,
    "altered data": alter_data,
    "unreadable data": unreadable_data,
    "forged row inserted": insert_forged_row,
    "middle row deleted": delete_middle_row,
    "tail cut after the checkpoint": cut_tail_after_checkpoint,
    "tail cut, head edited": cut_tail_and_edit_head,
    "tail and checkpoints cut, head edited": cut_tail_checkpoints_and_head,
}
TAMPERED = [name for name in SCENARIOS if name != "intact"]


@dataclass
class Verdict:
    chain: Chain  # the tampered copy
    expected: int | None
    status: int
    out: str


async def courtlink_verify(chain: Chain) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTLINK")}
    env["COURTLINK_DATA_DIR"] = str(chain.data_dir)
    env["COURTLINK_DATABASE_URL"] = chain.url
    process = await asyncio.create_subprocess_exec(
        str(COURTLINK),
        "audit",
        "verify",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode()


class Databases:
    """One database per copy: files for SQLite, databases made from a template for PostgreSQL."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend = backend
        self.root = root
        self.made: list[str] = []

    async def admin(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(POSTGRES_URL, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            missing("PostgreSQL", f"cannot connect to {POSTGRES_URL}: {exc}")
            raise

    async def create(self, name: str, template: str | None = None) -> str:
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.root / name / 'courtlink.db'}"
        db = f"courtlink_t_{uuid.uuid4().hex[:12]}"
        conn = await self.admin()
        try:
            suffix = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{db}"{suffix}')
        finally:
            await conn.close()
        self.made.append(db)
        base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{db}"

    async def drop_all(self) -> None:
        if not self.made:
            return
        conn = await self.admin()
        try:
            for db in self.made:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()


async def judge_all(databases: Databases) -> dict[str, Verdict]:
    """Write one chain, copy it once per scenario, tamper, and run every verification at once
    (each is a process of its own; together they take the time of a few)."""
    hasher = SecretHasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    root = databases.root
    base_url = await databases.create("base")
    chain = await write_chain(root / "base", base_url, hasher)
    copies: dict[str, tuple[Chain, int | None]] = {}
    for number, (name, scenario) in enumerate(SCENARIOS.items()):
        data_dir = root / f"copy{number}"
        shutil.copytree(root / "base", data_dir)
        if databases.backend == "sqlite":
            url = f"sqlite+aiosqlite:///{data_dir / 'courtlink.db'}"
        else:
            url = await databases.create(f"copy{number}", template=base_url)
        copy = replace(chain, data_dir=data_dir, url=url)
        expected = await tamper(url, partial(scenario, chain=copy))
        copies[name] = (copy, expected)
    results = await asyncio.gather(*(courtlink_verify(copy) for copy, _ in copies.values()))
    return {
        name: Verdict(copy, expected, status, out)
        for (name, (copy, expected)), (status, out) in zip(copies.items(), results, strict=True)
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def verdicts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Verdict]]:
    databases = Databases(request.param, tmp_path_factory.mktemp(f"tamper-{request.param}"))
    try:
        yield asyncio.run(judge_all(databases))
    finally:
        asyncio.run(databases.drop_all())


def test_an_intact_chain_verifies(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["intact"]
    assert verdict.status == 0, verdict.out
    assert verdict.out.strip() == (
        f"audit chain ok: {verdict.chain.end} events, 2 signed checkpoints"
    )


@pytest.mark.parametrize("scenario", TAMPERED)
def test_tampering_is_named_at_the_first_bad_seq(
    verdicts: dict[str, Verdict], scenario: str
) -> None:
    verdict = verdicts[scenario]
    assert verdict.status == 1, verdict.out
    first_line = verdict.out.splitlines()[0]
    assert first_line.startswith(f"audit chain broken at seq {verdict.expected}: "), verdict.out
    assert "Traceback" not in verdict.out


async def test_only_the_witness_catches_a_cut_the_database_agrees_with(
    verdicts: dict[str, Verdict],
) -> None:
    verdict = verdicts["tail and checkpoints cut, head edited"]
    assert "a witnessed checkpoint is missing from the database" in verdict.out
    # Without the witness file nothing in the database disagrees (the documented limit).
    chain = verdict.chain
    store = Store(chain.url)
    await store.open(migrate=False)
    try:
        keys = KeyRing.load_or_create(chain.data_dir / "keys" / "audit")
        blind = Auditor(store, keys, chain.data_dir / "no-witness.jsonl")
        assert (await blind.verify()).ok
    finally:
        await store.close()
