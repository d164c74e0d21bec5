"""Transcripts (笔录) on the built world's SQLite database with in-memory ports: the clerk or
the case's judge drafts one per session and saves it again and again; the first signature
freezes the text (also against a save already under way); the parties sign and the judge
confirms through the settlement's steps, and the sealed copy goes to every party."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.documents.lifecycle import DocKind, DocState, Document
from courtlink.court.documents.registry import Registry
from courtlink.court.documents.transcripts import MAX_TEXT
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal
from courtlink.court.seats import AccountRole
from courtlink.errors import Conflict, Forbidden, InvalidInput
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.court.documents.support import (
    InstantPrinter,
    MemoryFiles,
    drafted,
    events,
    registry_on,
    told,
)
from tests.helpers import PASSWORD, PIN, World

PNG = b"\x89PNG\r\n\x1a\n signature"


async def clerk_of(services: Services) -> AccountPrincipal:
    """A clerk (书记员) account of the court."""
    account = await services.gate.add_account(
        None,
        username="clerk",
        display_name="书记员",
        role=AccountRole.CLERK,
        password=PASSWORD,
        court="盐城市盐都区人民法院",
    )
    return AccountPrincipal(account)


async def invite(services: Services, world: World, name: str) -> InvitePrincipal:
    return InvitePrincipal(await services.clerk.check_invite(world.tokens[name]))


async def started(registry: Registry, clerk: Principal, world: World) -> Document:
    return await registry.draft_transcript(
        clerk, session_id=world.session.id, text="审判长：开庭。"
    )


def printer(registry: Registry) -> InstantPrinter:
    printer = registry.printer
    assert isinstance(printer, InstantPrinter)
    return printer


async def test_the_clerk_drafts_a_sessions_transcript_and_the_parties_get_its_preview(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)

    document = await started(registry, clerk, world)

    assert document.kind is DocKind.TRANSCRIPT
    assert document.state is DocState.DRAFTED
    assert document.title == "笔录"
    assert document.fields == {
        "session_id": world.session.id,
        "text": "审判长：开庭。",
        "version": 1,
    }
    assert document.detention_id == world.detention.id
    assert document.file_name.endswith("-草稿.pdf")
    assert printer(registry).printed == [("transcript", document.id)]
    recipients = {item.recipient for item, _ in told(registry).delivered}
    assert f"seat:{world.case.id}:debtor" in recipients
    assert f"seat:{world.case.id}:creditor" in recipients
    [event] = [e for e in await events(registry) if e.data.get("document") == document.id]
    assert event.kind == AuditKind.DOCUMENT_DRAFTED
    assert event.actor == clerk.actor
    # The chain holds the text's hash and length, not the text.
    assert event.data["fields"]["chars"] == len("审判长：开庭。")
    assert "text" not in event.data["fields"]


async def test_saves_are_versions_and_the_same_text_changes_nothing(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)
    document = await started(registry, clerk, world)

    clock.advance(seconds=5)
    await registry.save_transcript(clerk, document.id, "审判长：开庭。\n书记员：核对身份。")
    clock.advance(seconds=5)
    saved = await registry.save_transcript(
        clerk, document.id, "审判长：开庭。\n书记员：核对身份。\n被执行人：无异议。"
    )
    told(registry).changed.clear()
    again = await registry.save_transcript(clerk, document.id, saved.fields["text"])

    assert saved.fields["version"] == 3
    assert saved.fields["text"].endswith("被执行人：无异议。")
    assert [s["action"] for s in saved.steps] == ["draft", "save", "save"]
    assert [s["action"] for s in again.steps] == ["draft", "save", "save"]
    assert told(registry).changed == []
    kinds = [e.kind for e in await events(registry) if e.data.get("document") == document.id]
    assert kinds == [
        AuditKind.DOCUMENT_DRAFTED,
        AuditKind.DOCUMENT_TRANSCRIPT_SAVED,
        AuditKind.DOCUMENT_TRANSCRIPT_SAVED,
    ]
    # Each save re-renders the preview; the stored file is the last one.
    assert [t for t, _ in printer(registry).printed] == ["transcript"] * 3
    files = registry.files
    assert isinstance(files, MemoryFiles)
    assert document.id in files.files
    assert not await registry.reconcile()


async def test_the_cases_judge_writes_it_too_and_nobody_else(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await started(registry, world.me, world)
    await registry.save_transcript(world.me, document.id, "法官改写")
    for principal in (
        AccountPrincipal(world.other_judge),
        AccountPrincipal(world.approver),
        AccountPrincipal(world.officer),
        await invite(services, world, "creditor"),
        await invite(services, world, "debtor"),
    ):
        with pytest.raises(Forbidden):
            await registry.save_transcript(principal, document.id, "别人改写")
    other = await services.clerk.create_session(world.me, case_id=world.case.id)
    with pytest.raises(Forbidden):
        await registry.draft_transcript(
            AccountPrincipal(world.officer), session_id=other.id, text="警官"
        )
    assert (await registry.find(document.id)).fields["text"] == "法官改写"


async def test_one_transcript_a_session(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)
    await started(registry, clerk, world)
    with pytest.raises(Conflict):
        await started(registry, world.me, world)


@pytest.mark.parametrize("text", ["", "  \n ", "字" * (MAX_TEXT + 1)])
async def test_a_blank_or_too_long_text_is_refused(
    world_services: tuple[Services, World], clock: MovableClock, text: str
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)
    with pytest.raises(InvalidInput):
        await registry.draft_transcript(clerk, session_id=world.session.id, text=text)
    document = await started(registry, clerk, world)
    with pytest.raises(InvalidInput):
        await registry.save_transcript(clerk, document.id, text)
    # The limit itself is allowed.
    saved = await registry.save_transcript(clerk, document.id, "字" * MAX_TEXT)
    assert saved.fields["version"] == 2


async def test_signed_by_both_confirmed_by_the_judge_and_sent_to_every_party(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)
    document = await started(registry, clerk, world)

    # The debtor signs at the terminal; the officer confirms with name and PIN.
    terminal = await invite(services, world, "terminal")
    await registry.sign(
        terminal, document.id, PNG, officer="officer", pin=PIN, version=document.fields["version"]
    )
    with pytest.raises(Conflict):
        await registry.save_transcript(clerk, document.id, "签名后改写")
    with pytest.raises(Conflict):  # not yet signed by both
        await registry.confirm(world.me, document.id)
    signed = await registry.sign(
        await invite(services, world, "creditor"),
        document.id,
        PNG,
        version=document.fields["version"],
    )
    assert signed.state is DocState.SIGNED
    with pytest.raises(Forbidden):  # the clerk writes; the judge confirms
        await registry.confirm(clerk, document.id)

    confirmed = await registry.confirm(world.me, document.id)

    assert confirmed.state is DocState.ISSUED
    assert confirmed.signed_by == "test-key"
    assert confirmed.fields["text"] == "审判长：开庭。"
    assert printer(registry).printed[-1] == ("transcript", document.id)
    assert [s["action"] for s in confirmed.steps] == ["draft", "sign", "sign", "confirm"]
    sign_steps = [s for s in confirmed.steps if s["action"] == "sign"]
    assert sign_steps[0]["officer_id"] == world.officer.id
    # The officer's seat is new; the parties had the draft and must fetch the final copy again.
    async with services.store.read() as tx:
        items = {i.recipient: i for i in await tx.items(document_id=document.id)}
    seats = {f"seat:{world.case.id}:{seat}" for seat in ("officer", "debtor", "creditor")}
    assert seats <= set(items)
    assert all(items[seat].fetched_at is None for seat in seats)
    assert [i.recipient for i, _ in told(registry).delivered][-1] == (
        f"seat:{world.case.id}:officer"
    )
    assert not await registry.reconcile()


class SignsWhileRendering:
    """A Printer that lets a signature land while a save renders its preview."""

    def __init__(self, during: Any) -> None:
        self.during = during

    async def print(
        self, template: str, context: dict[str, Any], *, document_id: str, seal: bool = True
    ) -> tuple[bytes, str | None]:
        await self.during()
        return b"%PDF-test preview", None


async def test_a_signature_during_a_save_wins_and_the_text_stays_as_signed(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)
    document = await started(registry, clerk, world)
    creditor = await invite(services, world, "creditor")

    async def sign() -> None:
        await registry.sign(creditor, document.id, PNG, version=document.fields["version"])

    registry.printer = SignsWhileRendering(sign)
    with pytest.raises(Conflict):
        await registry.save_transcript(clerk, document.id, "签名时改写")

    stored = await registry.find(document.id)
    assert stored.fields == document.fields
    assert [s["action"] for s in stored.steps] == ["draft", "sign"]


async def test_of_two_saves_at_once_one_wins(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)
    document = await started(registry, clerk, world)
    both = asyncio.Barrier(2)

    async def wait() -> None:
        await both.wait()

    registry.printer = SignsWhileRendering(wait)
    results = await asyncio.gather(
        registry.save_transcript(clerk, document.id, "甲"),
        registry.save_transcript(world.me, document.id, "乙"),
        return_exceptions=True,
    )

    assert sum(isinstance(r, Conflict) for r in results) == 1
    stored = await registry.find(document.id)
    assert stored.fields["version"] == 2
    assert stored.fields["text"] in ("甲", "乙")


async def test_a_clerk_does_not_approve_orders(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    clerk = await clerk_of(services)
    order = await drafted(registry, world)
    with pytest.raises(Forbidden):
        await registry.approve(clerk, order.id)
    # Court staff: the clerk lists the case's documents, and reads a transcript.
    transcript = await started(registry, clerk, world)
    assert {d.id for d in await registry.documents(clerk, [world.case.id])} >= {
        order.id,
        transcript.id,
    }
    assert (await registry.read(clerk, transcript.id)).id == transcript.id
