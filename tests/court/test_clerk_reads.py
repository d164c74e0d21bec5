"""The Clerk's read side: what the pages show is decided by the policy, inside the Clerk.

The pages (web/pages.py) neither read the store nor ask the policy; these methods do both, so
each is checked here against every kind of principal that could ask.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from courtlink.clock import new_id
from courtlink.court.documents.lifecycle import DocKind, DocState, Document, InboxItem
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, TerminalPrincipal
from courtlink.court.seats import Seat
from courtlink.court.terminals import Terminal
from courtlink.errors import Forbidden
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.helpers import PIN, World


@pytest.fixture
def services(world_services: tuple[Services, World]) -> Services:
    return world_services[0]


@pytest.fixture
def world(world_services: tuple[Services, World]) -> World:
    return world_services[1]


async def invitee(services: Services, world: World, name: str) -> InvitePrincipal:
    return InvitePrincipal(await services.clerk.check_invite(world.tokens[name]))


# Assigned cases -------------------------------------------------------------------------------


async def test_only_the_cases_judge_is_assigned_to_them(services: Services, world: World) -> None:
    clerk = services.clerk
    cases = await clerk.cases(world.me)
    assert clerk.assigned(world.me, cases) == {world.case.id}
    for account in (
        world.other_judge,
        world.approver,
        world.officer,
        world.admin,
        replace(world.judge, disabled=True),
    ):
        assert clerk.assigned(AccountPrincipal(account), cases) == frozenset(), account.username
    invite = await invitee(services, world, "judge")
    assert clerk.assigned(invite, cases) == frozenset()


# Invite links ---------------------------------------------------------------------------------


async def test_invite_links_are_live_until_revoked_or_expired(
    services: Services, world: World, clock: MovableClock
) -> None:
    clerk = services.clerk
    links = {link.invite.id: link for link in await clerk.invite_links(world.me, world.session.id)}
    assert set(links) == {i.id for i in world.invites.values()}
    for name, invite in world.invites.items():
        link = links[invite.id]
        assert link.live, name
        assert link.token is not None
        # The shown link opens the same invite as the one handed out at issue.
        claims = await clerk.check_invite(link.token)
        assert (claims.invite_id, claims.seats) == (invite.id, invite.seats)

    await clerk.revoke_invite(world.me, world.invites["debtor"].id)
    links = {link.invite.id: link for link in await clerk.invite_links(world.me, world.session.id)}
    assert not links[world.invites["debtor"].id].live
    assert links[world.invites["debtor"].id].token is None
    assert links[world.invites["creditor"].id].live

    clock.advance(hours=24 * 4)  # past the default lifetime of 72 hours
    links = {link.invite.id: link for link in await clerk.invite_links(world.me, world.session.id)}
    assert not any(link.live for link in links.values())


async def test_invite_links_are_the_judges_only(services: Services, world: World) -> None:
    for account in (world.other_judge, world.approver, world.officer, world.admin):
        with pytest.raises(Forbidden):
            await services.clerk.invite_links(AccountPrincipal(account), world.session.id)
    with pytest.raises(Forbidden):
        await services.clerk.invite_links(await invitee(services, world, "judge"), world.session.id)


# Seating --------------------------------------------------------------------------------------


async def test_an_invite_comes_for_its_seats_and_consents_once(
    services: Services, world: World
) -> None:
    clerk = services.clerk
    terminal = await invitee(services, world, "terminal")
    seating = await clerk.seating(terminal, world.session.id)
    assert (seating.session.id, seating.case.id) == (world.session.id, world.case.id)
    assert seating.seats == (Seat.OFFICER, Seat.DEBTOR)
    assert seating.consent_pending == (Seat.DEBTOR,)

    await clerk.give_consent(terminal, officer_username="officer", officer_pin=PIN)
    assert (await clerk.seating(terminal, world.session.id)).consent_pending == ()

    judge_invite = await invitee(services, world, "judge")
    seating = await clerk.seating(judge_invite, world.session.id)
    assert (seating.seats, seating.consent_pending) == ((Seat.JUDGE,), ())


async def test_an_account_comes_for_the_judge_seat_of_its_own_case(
    services: Services, world: World
) -> None:
    clerk = services.clerk
    seating = await clerk.seating(world.me, world.session.id)
    assert (seating.seats, seating.consent_pending) == ((Seat.JUDGE,), ())
    # An ended session is no error here: the page says it has ended.
    await clerk.end_session(world.me, world.session.id)
    assert (await clerk.seating(world.me, world.session.id)).session.state == "ended"
    for account in (
        world.other_judge,
        world.approver,
        world.officer,
        replace(world.judge, disabled=True),
    ):
        with pytest.raises(Forbidden):
            await clerk.seating(AccountPrincipal(account), world.session.id)


async def test_an_invite_for_another_session_is_not_seated(
    services: Services, world: World
) -> None:
    other = await services.clerk.create_session(world.me, case_id=world.case.id)
    with pytest.raises(Forbidden):
        await services.clerk.seating(await invitee(services, world, "debtor"), other.id)


# Overdue documents ----------------------------------------------------------------------------


async def _delivered_order(services: Services, world: World) -> tuple[Document, InboxItem]:
    now = services.clerk.clock()
    order = Document(
        id=new_id(),
        case_id=world.case.id,
        kind=DocKind.RENEWAL,
        state=DocState.ISSUED,
        number="(2021)苏0903执1234号之一",
        title="续拘决定书",
        fields={},
        created_by=world.judge.actor,
        created_at=now,
        detention_id=world.detention.id,
    )
    item = InboxItem(id=new_id(), document_id=order.id, recipient="terminal:t1", created_at=now)
    async with services.store.write() as tx:
        await tx.add_document(order)
        await tx.add_item(item)
    return order, item


async def test_overdue_documents_are_those_alerted_and_still_waiting(
    services: Services, world: World
) -> None:
    clerk = services.clerk
    order, item = await _delivered_order(services, world)
    assert await clerk.overdue_documents(world.me) == frozenset()

    async with services.store.write() as tx:
        await tx.mark_item(item.id, alerted_at=clerk.clock())
    assert await clerk.overdue_documents(world.me) == {order.id}
    assert await clerk.overdue_documents(AccountPrincipal(world.approver)) == {order.id}

    async with services.store.write() as tx:
        await tx.save_document(
            replace(order, state=DocState.ACKNOWLEDGED, updated_at=clerk.clock())
        )
    assert await clerk.overdue_documents(world.me) == frozenset()


async def test_overdue_documents_are_for_court_staff(services: Services, world: World) -> None:
    terminal = Terminal(
        id="t1",
        name="终端",
        center="盐城市拘留所",
        credential_hash="",
        created_at=services.clerk.clock(),
    )
    for principal in (
        AccountPrincipal(world.officer),
        await invitee(services, world, "terminal"),
        TerminalPrincipal(terminal),
    ):
        with pytest.raises(Forbidden):
            await services.clerk.overdue_documents(principal)


# Operations -----------------------------------------------------------------------------------


async def test_tally_counts_sessions_by_state_and_the_audit_chain(
    services: Services, world: World
) -> None:
    clerk = services.clerk
    before = await clerk.tally()
    assert before.sessions == {"scheduled": 1, "open": 0, "live": 0, "ended": 0}
    async with services.store.read() as tx:
        assert before.audit_events == (await tx.audit_head())[0] > 0
    await clerk.end_session(world.me, world.session.id)
    after = await clerk.tally()
    assert after.sessions == {"scheduled": 0, "open": 0, "live": 0, "ended": 1}
    assert after.audit_events == before.audit_events + 1
