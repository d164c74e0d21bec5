"""The step template (documents/steps.py), on the built world's SQLite database with in-memory
ports: the phases in their order, the database free while a step renders, and what a refused
step, a lost race and a failed write leave behind (nothing, and nobody told)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.documents.desk import Desk
from courtlink.court.documents.lifecycle import DocAction, DocState, Document, InboxItem
from courtlink.court.documents.steps import DocumentScene, DocumentStep, Written
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal
from courtlink.errors import Conflict, Forbidden
from courtlink.storage import Records
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.court.documents.support import drafted, events, registry_on, told
from tests.helpers import World


class Disk(Exception):
    """A write that fails halfway."""


@dataclass(frozen=True, kw_only=True)
class Probe(DocumentStep[DocumentScene, Document]):
    """An approval that notes each phase of the template in ``calls``, and can be made to do
    something while it renders (``during_prepare``), to fail in its write, or to change
    nothing."""

    action = DocAction.APPROVE

    calls: list[str]
    during_prepare: Callable[[], Awaitable[object]] | None = None
    fail_in_write: bool = False
    changes: bool = True

    async def load(self, desk: Desk, tx: Records) -> DocumentScene:
        self.calls.append("load")
        return await self.read_scene(desk, tx)

    def allowed(self, scene: DocumentScene) -> DocState:
        self.calls.append("allowed")
        return super().allowed(scene)

    async def prepare(
        self, desk: Desk, scene: DocumentScene, state: DocState, now: datetime
    ) -> Document:
        self.calls.append("prepare")
        if self.during_prepare is not None:
            await self.during_prepare()
        return replace(scene.document, state=state, updated_at=now)

    async def lock(self, tx: Records, scene: DocumentScene) -> DocumentScene:
        self.calls.append("lock")
        return await super().lock(tx, scene)

    async def write(
        self, desk: Desk, tx: Records, scene: DocumentScene, prepared: Document, now: datetime
    ) -> Written:
        self.calls.append("write")
        await tx.save_document(prepared)
        await desk.step(tx, prepared, self.action, scene.who, now)
        await desk.audit(tx, scene.who, AuditKind.DOCUMENT_APPROVED, prepared)
        if self.fail_in_write:
            raise Disk("no space left on device")
        return Written(prepared, changed=self.changes)


class PushProbe:
    """A Notifier noting "push" in the probe's calls, with the state the database holds then
    (a push before commit would see the old one)."""

    def __init__(self, desk: Desk, calls: list[str]) -> None:
        self.desk = desk
        self.calls = calls
        self.states: list[DocState] = []

    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        self.calls.append("push")
        async with self.desk.store.read() as tx:
            self.states.append((await tx.document(document.id)).state)

    async def delivered(self, item: InboxItem, document: Document) -> None:
        return None

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        return None


def approver(world: World) -> Principal:
    return AccountPrincipal(world.approver)


async def test_phases_run_in_order_and_the_push_follows_the_commit(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await drafted(registry, world)
    calls: list[str] = []
    pushes = PushProbe(registry.desk, calls)
    registry.notifier = pushes

    written = await Probe(principal=approver(world), document_id=document.id, calls=calls).run(
        registry.desk
    )

    assert calls == ["load", "allowed", "prepare", "lock", "write", "push"]
    assert pushes.states == [DocState.APPROVED]
    # The answer is the document as stored, with the step just written.
    assert written.document.state is DocState.APPROVED
    assert [s["action"] for s in written.document.steps] == ["draft", "approve"]


async def test_the_database_is_free_while_a_step_prepares(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await drafted(registry, world)

    async def another_writer() -> None:
        # Rendering takes a second; a transaction held meanwhile would keep this one waiting.
        async def write() -> None:
            async with registry.store.write() as tx:
                await tx.count_documents(world.case.id)

        await asyncio.wait_for(write(), timeout=5)

    calls: list[str] = []
    probe = Probe(
        principal=approver(world),
        document_id=document.id,
        calls=calls,
        during_prepare=another_writer,
    )
    await probe.run(registry.desk)
    assert calls[-1] == "write"


async def test_a_refused_step_prepares_nothing_and_writes_nothing(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await drafted(registry, world)
    before = len(await events(registry))
    heard = len(told(registry).changed)
    debtor = InvitePrincipal(await services.clerk.check_invite(world.tokens["debtor"]))

    calls: list[str] = []
    with pytest.raises(Forbidden):
        await Probe(principal=debtor, document_id=document.id, calls=calls).run(registry.desk)

    assert calls == ["load", "allowed"]
    assert len(await events(registry)) == before
    assert len(told(registry).changed) == heard


async def test_a_lost_race_is_a_conflict_and_leaves_nothing_behind(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await drafted(registry, world)

    async def the_other_wins() -> Document:
        return await registry.approve(approver(world), document.id)

    calls: list[str] = []
    probe = Probe(
        principal=approver(world),
        document_id=document.id,
        calls=calls,
        during_prepare=the_other_wins,
    )
    heard = len(told(registry).changed)
    with pytest.raises(Conflict, match="changed meanwhile"):
        await probe.run(registry.desk)

    assert calls == ["load", "allowed", "prepare", "lock"]
    stored = await registry.find(document.id)
    assert [s["action"] for s in stored.steps] == ["draft", "approve"]  # the winner's only
    approvals = [e for e in await events(registry) if e.kind == AuditKind.DOCUMENT_APPROVED]
    assert len(approvals) == 1
    assert len(told(registry).changed) == heard + 1  # the winner's push, none for the loser


async def test_a_failed_write_rolls_back_whole_and_tells_nobody(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await drafted(registry, world)
    before = len(await events(registry))
    heard = len(told(registry).changed)

    probe = Probe(principal=approver(world), document_id=document.id, calls=[], fail_in_write=True)
    with pytest.raises(Disk):
        await probe.run(registry.desk)

    stored = await registry.find(document.id)
    assert stored.state is DocState.DRAFTED
    assert [s["action"] for s in stored.steps] == ["draft"]
    assert len(await events(registry)) == before
    assert len(told(registry).changed) == heard
    assert await registry.reconcile() == []


async def test_a_step_that_changed_nothing_tells_nobody(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await drafted(registry, world)
    heard = len(told(registry).changed)

    probe = Probe(principal=approver(world), document_id=document.id, calls=[], changes=False)
    written = await probe.run(registry.desk)

    assert len(told(registry).changed) == heard
    assert written.document.state is DocState.APPROVED  # what the write said, not re-read
