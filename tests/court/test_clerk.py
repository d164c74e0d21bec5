"""The Clerk: every change checks the policy and writes its audit event in the same transaction.

Runs on SQLite with a clock the tests move (tests/rooms/conftest.py); the configured maximum
detention period there is 20 days, so that "the law says 15" is never assumed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update

from courtlink.court.audit import AuditEvent, AuditKind
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal, TerminalPrincipal
from courtlink.court.seats import Seat
from courtlink.court.sessions import SessionState
from courtlink.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InviteExpired,
    InviteInvalid,
    InviteRevoked,
    NotFound,
    SeatNotAllowed,
)
from courtlink.storage import tables as t
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.helpers import PIN, World

J, OF, D, C = Seat.JUDGE, Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR


@pytest.fixture
def services(world_services: tuple[Services, World]) -> Services:
    return world_services[0]


@pytest.fixture
def world(world_services: tuple[Services, World]) -> World:
    return world_services[1]


async def events(services: Services, kind: str | None = None) -> list[AuditEvent]:
    async with services.store.read() as tx:
        found = await tx.audit_events()
    return [e for e in found if kind is None or e.kind == kind]


async def invitee(services: Services, world: World, name: str) -> InvitePrincipal:
    return InvitePrincipal(await services.clerk.check_invite(world.tokens[name]))


def others(services: Services, world: World) -> dict[str, Principal]:
    """Principals who may not change the world's case."""
    return {
        "other judge": AccountPrincipal(world.other_judge),
        "approver": AccountPrincipal(world.approver),
        "officer": AccountPrincipal(world.officer),
        "admin (not assigned)": AccountPrincipal(world.admin),
        "disabled assigned judge": AccountPrincipal(replace(world.judge, disabled=True)),
    }


# Cases --------------------------------------------------------------------------------------


async def test_a_judge_creates_a_case_with_its_audit_event(
    services: Services, world: World
) -> None:
    case = await services.clerk.create_case(
        world.me,
        number="（2022）苏0903执恢7号",
        creditor_name=" 王建国 ",
        debtor_name="李某",
        amount_owed_fen=1_000_00,
        amount_paid_fen=250_00,
    )
    assert case.number == "(2022)苏0903执恢7号"
    assert case.judge_id == world.judge.id
    assert case.court == world.judge.court  # from the judge's account
    assert case.creditor_name == "王建国"
    assert await services.clerk.case(world.me, case.id) == case
    created = await events(services, AuditKind.CASE_CREATED)
    assert created[-1].case_id == case.id
    assert created[-1].actor == world.judge.actor
    assert created[-1].data == {"number": "(2022)苏0903执恢7号"}


async def test_only_judges_create_cases(services: Services, world: World) -> None:
    before = len(await events(services))
    refused: list[Principal] = [
        AccountPrincipal(world.approver),
        AccountPrincipal(world.officer),
        AccountPrincipal(replace(world.judge, disabled=True)),
        await invitee(services, world, "judge"),
    ]
    for principal in refused:
        with pytest.raises(Forbidden):
            await services.clerk.create_case(
                principal,
                number="(2022)苏0903执9号",
                creditor_name="王建国",
                debtor_name="李某",
                amount_owed_fen=100,
            )
    async with services.store.read() as tx:
        assert [c.id for c in await tx.cases()] == [world.case.id]
    assert len(await events(services)) == before


async def test_a_case_number_is_unique_in_any_spelling(services: Services, world: World) -> None:
    with pytest.raises(Conflict):
        await services.clerk.create_case(
            AccountPrincipal(world.other_judge),
            number="（２０２１）苏0903执1234号",
            creditor_name="王建国",
            debtor_name="李某",
            amount_owed_fen=100,
        )


@pytest.mark.parametrize(
    ("owed", "paid", "creditor"),
    [
        (0, 0, "王建国"),
        (100, 101, "王建国"),
        (100, -1, "王建国"),
        (100, 0, "  "),
        (100, 0, "x" * 101),
    ],
)
async def test_case_fields_are_validated(
    services: Services, world: World, owed: int, paid: int, creditor: str
) -> None:
    with pytest.raises(InvalidInput):
        await services.clerk.create_case(
            world.me,
            number="(2022)苏0903执9号",
            creditor_name=creditor,
            debtor_name="李某",
            amount_owed_fen=owed,
            amount_paid_fen=paid,
        )


async def test_reading_cases_follows_the_policy(services: Services, world: World) -> None:
    assert [c.id for c in await services.clerk.cases(AccountPrincipal(world.approver))] == [
        world.case.id
    ]
    with pytest.raises(Forbidden):
        await services.clerk.cases(AccountPrincipal(world.officer))
    with pytest.raises(NotFound):
        await services.clerk.case(world.me, "missing")


# Detentions ---------------------------------------------------------------------------------


async def test_the_assigned_judge_orders_a_detention_up_to_the_configured_maximum(
    services: Services, world: World, clock: MovableClock
) -> None:
    assert services.clerk.rules.max_period_days == 20
    made = await services.clerk.create_detention(
        world.me, case_id=world.case.id, center=" 盐城市拘留所 ", start=clock(), days=20
    )
    assert made.periods[0].days == 20
    assert made.center == "盐城市拘留所"
    assert made.debtor_name == world.case.debtor_name
    recorded = (await events(services, AuditKind.DETENTION_CREATED))[-1]
    assert recorded.data["detention"] == made.id
    assert recorded.data["days"] == 20


@pytest.mark.parametrize("days", [21, 30, 0, -3])
async def test_a_detention_beyond_the_configured_maximum_is_refused(
    services: Services, world: World, clock: MovableClock, days: int
) -> None:
    before = len(await events(services))
    with pytest.raises(InvalidInput):
        await services.clerk.create_detention(
            world.me, case_id=world.case.id, center="盐城市拘留所", start=clock(), days=days
        )
    async with services.store.read() as tx:
        assert [d.id for d in await tx.detentions()] == [world.detention.id]
    assert len(await events(services)) == before


async def test_only_the_assigned_judge_orders_a_detention(
    services: Services, world: World, clock: MovableClock
) -> None:
    for principal in others(services, world).values():
        with pytest.raises(Forbidden):
            await services.clerk.create_detention(
                principal, case_id=world.case.id, center="盐城市拘留所", start=clock(), days=5
            )
    async with services.store.read() as tx:
        assert [d.id for d in await tx.detentions()] == [world.detention.id]


async def test_officers_see_the_detentions_of_their_own_center(
    services: Services, world: World
) -> None:
    officer = AccountPrincipal(world.officer)
    assert [d.id for d in await services.clerk.detentions(officer)] == [world.detention.id]
    elsewhere = AccountPrincipal(replace(world.officer, center="南京市拘留所"))
    assert await services.clerk.detentions(elsewhere) == []
    # Court staff see all of them.
    assert len(await services.clerk.detentions(AccountPrincipal(world.approver))) == 1


# Sessions and invites -----------------------------------------------------------------------


async def test_sessions_are_created_and_ended_by_the_assigned_judge(
    services: Services, world: World
) -> None:
    clerk = services.clerk
    session = await clerk.create_session(world.me, case_id=world.case.id, recorded=True)
    assert session.state is SessionState.SCHEDULED
    assert session.lobby is clerk.rules.lobby_by_default
    assert session.recorded
    for principal in others(services, world).values():
        with pytest.raises(Forbidden):
            await clerk.create_session(principal, case_id=world.case.id)
        with pytest.raises(Forbidden):
            await clerk.end_session(principal, session.id)
    ended = await clerk.end_session(world.me, session.id)
    assert ended.state is SessionState.ENDED
    assert (await clerk.session(world.me, session.id))[0] == ended
    with pytest.raises(Conflict):
        await clerk.end_session(world.me, session.id)


async def test_presence_moves_the_session_state_with_an_audit_event(
    services: Services, world: World
) -> None:
    clerk, sid = services.clerk, world.session.id
    assert (await clerk.note_presence(sid, judge_in=False, others_in=1)).state is SessionState.OPEN
    assert (await clerk.note_presence(sid, judge_in=True, others_in=1)).state is SessionState.LIVE
    before = len(await events(services))
    assert (await clerk.note_presence(sid, judge_in=True, others_in=2)).state is SessionState.LIVE
    assert len(await events(services)) == before  # no change, no event
    changes = [e.data for e in await events(services, AuditKind.SESSION_STATE)]
    assert changes == [{"from": "scheduled", "to": "open"}, {"from": "open", "to": "live"}]


async def test_issuing_invites(services: Services, world: World) -> None:
    clerk = services.clerk
    issued = await clerk.issue_invite(
        world.me, session_id=world.session.id, seats=[D, OF, D], label=" 会见室 "
    )
    assert issued.invite.seats == (D, OF)
    assert issued.invite.label == "会见室"
    claims = await clerk.check_invite(issued.token)
    assert claims.invite_id == issued.invite.id
    assert claims.seats == (D, OF)
    assert issued.invite in await clerk.invites(world.me, world.session.id)
    assert issued.invite.expires_at - issued.invite.created_at == timedelta(
        hours=clerk.rules.invite_ttl_hours
    )


@pytest.mark.parametrize(
    ("seats", "hours"),
    [([J, C], None), ([OF, C], None), ([], None), ([C], 0), ([C], -1), ([C], 24 * 90 + 1)],
)
async def test_invalid_invites_are_refused(
    services: Services, world: World, seats: list[Seat], hours: float | None
) -> None:
    with pytest.raises(InvalidInput):
        await services.clerk.issue_invite(
            world.me, session_id=world.session.id, seats=seats, ttl_hours=hours
        )


async def test_only_the_assigned_judge_issues_and_lists_invites(
    services: Services, world: World
) -> None:
    for principal in others(services, world).values():
        with pytest.raises(Forbidden):
            await services.clerk.issue_invite(principal, session_id=world.session.id, seats=[C])
        with pytest.raises(Forbidden):
            await services.clerk.invites(principal, world.session.id)
        with pytest.raises(Forbidden):
            await services.clerk.revoke_invite(principal, world.invites["creditor"].id)


async def test_no_invites_for_an_ended_session(services: Services, world: World) -> None:
    await services.clerk.end_session(world.me, world.session.id)
    with pytest.raises(Conflict):
        await services.clerk.issue_invite(world.me, session_id=world.session.id, seats=[C])


async def test_a_revoked_invite_is_refused(services: Services, world: World) -> None:
    clerk = services.clerk
    invite = world.invites["creditor"]
    revoked = await clerk.revoke_invite(world.me, invite.id)
    assert revoked.revoked()
    with pytest.raises(InviteRevoked):
        await clerk.check_invite(world.tokens["creditor"])
    with pytest.raises(InviteRevoked):
        await clerk.open_invite(world.tokens["creditor"])
    # Revoking again changes nothing and records nothing.
    before = len(await events(services, AuditKind.INVITE_REVOKED))
    assert (await clerk.revoke_invite(world.me, invite.id)).revoked_at == revoked.revoked_at
    assert len(await events(services, AuditKind.INVITE_REVOKED)) == before == 1
    # The other invites still work.
    assert (await clerk.check_invite(world.tokens["debtor"])).seats == (D,)


async def test_an_invite_expires_by_the_injected_clock(
    services: Services, world: World, clock: MovableClock
) -> None:
    clerk = services.clerk
    token = world.tokens["creditor"]
    clock.advance(hours=clerk.rules.invite_ttl_hours - 0.01)
    assert (await clerk.check_invite(token)).seats == (C,)
    clock.advance(hours=0.02)
    with pytest.raises(InviteExpired):
        await clerk.check_invite(token)


async def test_an_invite_issued_later_by_the_clock_is_valid(
    services: Services, world: World, clock: MovableClock
) -> None:
    clock.advance(days=2)  # the clock, not the wall clock, says when the invite was issued
    issued = await services.clerk.issue_invite(world.me, session_id=world.session.id, seats=[C])
    assert (await services.clerk.check_invite(issued.token)).invite_id == issued.invite.id


async def test_tokens_not_from_this_server_are_invalid(services: Services, world: World) -> None:
    for token in ("", "garbage", world.tokens["creditor"][:-4] + "AAAA"):
        with pytest.raises(InviteInvalid):
            await services.clerk.check_invite(token)


async def test_opening_an_invite_is_recorded(services: Services, world: World) -> None:
    claims = await services.clerk.open_invite(world.tokens["terminal"])
    opened = (await events(services, AuditKind.INVITE_OPENED))[-1]
    assert opened.actor == f"invite:{claims.invite_id}"
    assert opened.session_id == world.session.id
    assert opened.data == {"seats": ["officer", "debtor"]}


# Consent ------------------------------------------------------------------------------------


async def test_a_creditor_invite_gives_consent(services: Services, world: World) -> None:
    clerk = services.clerk
    creditor = await invitee(services, world, "creditor")
    assert await clerk.consent_needed(creditor.claims) == [C]
    made = await clerk.give_consent(creditor)
    assert [(c.seat, c.invite_id, c.confirmed_by) for c in made] == [
        (C, creditor.claims.invite_id, None)
    ]
    assert made[0].recorded is world.session.recorded
    assert await clerk.consent_needed(creditor.claims) == []
    assert await clerk.give_consent(creditor) == []  # once is enough
    given = await events(services, AuditKind.CONSENT_GIVEN)
    assert len(given) == 1
    assert given[0].data["seat"] == "creditor"
    assert given[0].actor == creditor.actor


async def test_a_terminal_invite_needs_an_officer_with_a_pin(
    services: Services, world: World
) -> None:
    clerk = services.clerk
    terminal = await invitee(services, world, "terminal")
    assert await clerk.consent_needed(terminal.claims) == [D]  # officers need no consent
    refused = [
        (None, None),
        ("officer", None),
        (None, PIN),
        ("officer", "000000"),  # wrong PIN
        ("nobody", PIN),
        ("judge", PIN),  # not an officer
    ]
    for username, pin in refused:
        with pytest.raises(Forbidden):
            await clerk.give_consent(terminal, officer_username=username, officer_pin=pin)
    # Nothing stored, nothing recorded.
    async with services.store.read() as tx:
        assert await tx.consents(world.session.id) == []
    assert await events(services, AuditKind.CONSENT_GIVEN) == []
    with pytest.raises(Forbidden) as caught:
        await clerk.authorize_join(terminal, world.session.id, (OF, D))
    assert caught.value.code == "consent_required"

    made = await clerk.give_consent(terminal, officer_username=" Officer ", officer_pin=PIN)
    assert [(c.seat, c.confirmed_by) for c in made] == [(D, world.officer.id)]
    session, case = await clerk.authorize_join(terminal, world.session.id, (OF, D))
    assert (session.id, case.id) == (world.session.id, world.case.id)


async def test_a_disabled_officer_cannot_confirm(services: Services, world: World) -> None:
    async with services.store.write() as tx:
        await tx.conn.execute(
            update(t.accounts).where(t.accounts.c.id == world.officer.id).values(disabled=True)
        )
    terminal = await invitee(services, world, "terminal")
    with pytest.raises(Forbidden):
        await services.clerk.give_consent(terminal, officer_username="officer", officer_pin=PIN)


async def test_no_consent_after_the_session_ended(services: Services, world: World) -> None:
    creditor = await invitee(services, world, "creditor")
    await services.clerk.end_session(world.me, world.session.id)
    with pytest.raises(Conflict):
        await services.clerk.give_consent(creditor)


# Joining ------------------------------------------------------------------------------------


async def test_a_party_cannot_join_before_consenting(services: Services, world: World) -> None:
    for name, seat in (("creditor", C), ("debtor", D)):
        principal = await invitee(services, world, name)
        with pytest.raises(Forbidden) as caught:
            await services.clerk.authorize_join(principal, world.session.id, (seat,))
        assert caught.value.code == "consent_required"
        await services.clerk.give_consent(principal)
        await services.clerk.authorize_join(principal, world.session.id, (seat,))


async def test_judge_and_officer_seats_need_no_consent(services: Services, world: World) -> None:
    clerk, sid = services.clerk, world.session.id
    await clerk.authorize_join(await invitee(services, world, "officer"), sid, (OF,))
    await clerk.authorize_join(await invitee(services, world, "judge"), sid, (J,))
    await clerk.authorize_join(world.me, sid, (J,))


async def test_an_invite_holds_only_its_own_seats(services: Services, world: World) -> None:
    creditor = await invitee(services, world, "creditor")
    await services.clerk.give_consent(creditor)
    for seats in ((D,), (J,), (C, D)):
        with pytest.raises(SeatNotAllowed):
            await services.clerk.authorize_join(creditor, world.session.id, seats)
    with pytest.raises(InvalidInput):
        await services.clerk.authorize_join(creditor, world.session.id, ())


async def test_an_invite_of_another_session_is_refused(services: Services, world: World) -> None:
    other = await services.clerk.create_session(world.me, case_id=world.case.id)
    creditor = await invitee(services, world, "creditor")
    await services.clerk.give_consent(creditor)
    with pytest.raises(SeatNotAllowed):
        await services.clerk.authorize_join(creditor, other.id, (C,))
    with pytest.raises(NotFound):
        await services.clerk.authorize_join(creditor, "missing", (C,))


async def test_nobody_joins_an_ended_session(services: Services, world: World) -> None:
    creditor = await invitee(services, world, "creditor")
    await services.clerk.give_consent(creditor)
    await services.clerk.end_session(world.me, world.session.id)
    with pytest.raises(Conflict):
        await services.clerk.authorize_join(creditor, world.session.id, (C,))
    with pytest.raises(Conflict):
        await services.clerk.authorize_join(world.me, world.session.id, (J,))


async def test_accounts_join_only_as_the_assigned_judge(services: Services, world: World) -> None:
    clerk, sid = services.clerk, world.session.id
    with pytest.raises(Forbidden):
        await clerk.authorize_join(world.me, sid, (C,))
    for principal in others(services, world).values():
        with pytest.raises(Forbidden):
            await clerk.authorize_join(principal, sid, (J,))
    _, credential = await services.gate.add_terminal(None, name="会见室", center="盐城市拘留所")
    kiosk: TerminalPrincipal = await services.gate.terminal_for(credential)
    with pytest.raises(Forbidden):
        await clerk.authorize_join(kiosk, sid, (OF,))


async def test_every_change_leaves_a_verifiable_chain(services: Services, world: World) -> None:
    creditor = await invitee(services, world, "creditor")
    await services.clerk.give_consent(creditor)
    await services.clerk.revoke_invite(world.me, world.invites["debtor"].id)
    await services.clerk.end_session(world.me, world.session.id)
    report = await services.auditor.verify()
    assert report.ok, report.summary()
    kinds = [e.kind for e in await events(services)]
    for kind in (
        AuditKind.ACCOUNT_CREATED,
        AuditKind.CASE_CREATED,
        AuditKind.DETENTION_CREATED,
        AuditKind.SESSION_CREATED,
        AuditKind.INVITE_ISSUED,
        AuditKind.CONSENT_GIVEN,
        AuditKind.INVITE_REVOKED,
        AuditKind.SESSION_ENDED,
    ):
        assert kind in kinds
