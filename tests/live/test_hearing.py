"""The hearing on its own, without Socket.IO or aiortc: joins, replacement, leave, disconnect,
refusals, ended sessions and revoked invites, read from what it told clients (the fake outbox),
what it asked of media (the fake media port), presence and the audit chain."""

from __future__ import annotations

from typing import Any

import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.policy import Principal
from courtlink.court.seats import Seat
from courtlink.errors import Conflict, Forbidden, InvalidInput, InviteRevoked, NotAuthenticated
from courtlink.live.hearing import ENDED_GRACE
from tests.live.conftest import Live


def holders(seats: dict[str, Any]) -> dict[str, str | None]:
    """seat -> participant id (None when empty) of a presence message's seats."""
    return {seat: None if held is None else held["participant"] for seat, held in seats.items()}


# Joining --------------------------------------------------------------------------------------


async def test_a_join_seats_audits_attaches_and_tells_everyone(live: Live) -> None:
    officer, data = await live.joined("officer")
    p = data["participant"]
    assert data["seats"] == ["officer"]
    assert data["session"] == {
        "id": live.session_id,
        "case_number": live.world.case.number,
        "state": "open",
        "recorded": live.world.session.recorded,
        "lobby": live.world.session.lobby,
    }
    assert holders(data["presence"]["seats"]) == {
        "judge": None,
        "officer": p,
        "debtor": None,
        "creditor": None,
    }
    assert data["presence"]["seats"]["officer"]["status"] == {
        "in_lobby": False,
        "on_hold": False,
        "muted": False,
    }
    # Presence holds it, the session's listeners include it and were told.
    held = await live.hearing.presence.holder(live.session_id, p)
    assert held is not None
    assert held.sid == officer
    assert held.seats == (Seat.OFFICER,)
    assert live.outbox.listening[live.session_id] == {officer}
    assert live.outbox.presence()[-1] == data["presence"]
    # Media attached it and its offer went to the client, with the ICE settings.
    assert live.media.did("attach") == [p]
    [offer] = live.outbox.to(officer, "media.offer")
    assert offer["sdp"] == f"offer for {p}"
    assert offer["ice_servers"] == [{"urls": ["stun:stun.example"], "username": p}]
    assert offer["ice_transport_policy"] == "relay"
    assert live.media.routes[-1][1] == {Seat.OFFICER: p}
    # Audited, counted.
    [joined] = await live.audit(AuditKind.JOINED)
    assert joined.data == {"participant": p, "seats": ["officer"]}
    assert joined.actor == f"invite:{live.world.invites['officer'].id}"
    assert joined.case_id == live.world.case.id
    assert live.gauge("courtlink_participants") == 1
    assert live.gauge("courtlink_connections") == 1


async def test_the_judge_account_takes_the_judge_seat_and_the_session_goes_live(
    live: Live,
) -> None:
    _, officer = await live.joined("officer")
    assert officer["session"]["state"] == "open"
    _, judge = await live.joined("judge-account")
    assert judge["seats"] == ["judge"]
    assert judge["presence"]["seats"]["judge"]["name"] == live.world.judge.display_name
    assert judge["session"]["state"] == "live"
    assert live.outbox.presence()[-1]["state"] == "live"


async def test_the_terminal_takes_both_of_its_seats_under_the_case_names(live: Live) -> None:
    await live.consent("terminal")
    _, data = await live.joined("terminal")
    assert data["seats"] == ["officer", "debtor"]
    name = f"officer / {live.world.case.debtor_name}"
    assert data["presence"]["seats"]["debtor"]["name"] == name
    assert live.gauge("courtlink_participants") == 2


async def test_a_repeated_join_gets_the_same_answer(live: Live) -> None:
    officer, first = await live.joined("officer")
    again = await live.hearing.join(officer, live.session_id)
    assert again["participant"] == first["participant"]
    assert len(await live.audit(AuditKind.JOINED)) == 1
    assert live.media.did("attach") == [first["participant"]]
    with pytest.raises(Conflict):
        await live.hearing.join(officer, live.session_id, [Seat.DEBTOR])


# Replacement ----------------------------------------------------------------------------------


async def test_a_newer_join_replaces_the_holder_of_the_seat(live: Live) -> None:
    await live.consent("terminal")
    judge, _ = await live.joined("judge")
    terminal, t = await live.joined("terminal")
    _, o = await live.joined("officer")

    # The terminal lost both its seats and its connection; it was told why.
    [replaced] = live.outbox.to(terminal, "replaced")
    assert replaced == {
        "session": live.session_id,
        "seats": ["officer", "debtor"],
        "reason": "seat_taken",
        "message": replaced["message"],
    }
    assert (terminal, 0.0) in live.outbox.disconnected
    assert holders(live.outbox.presence()[-1]["seats"]) == {
        "judge": live.outbox.presence()[-1]["seats"]["judge"]["participant"],
        "officer": o["participant"],
        "debtor": None,
        "creditor": None,
    }
    assert t["participant"] in live.media.did("detach")
    [event] = await live.audit(AuditKind.REPLACED)
    assert event.data == {
        "participant": t["participant"],
        "by": o["participant"],
        "seats": ["officer", "debtor"],
    }
    # Replaced is not left: its disconnect neither frees nor audits the seat again.
    assert await live.audit(AuditKind.LEFT) == []
    assert live.gauge("courtlink_participants") == 2  # the judge and the officer
    assert live.gauge("courtlink_connections") == 2
    with pytest.raises(NotAuthenticated):
        live.hearing.attendee(terminal)
    assert judge in live.outbox.listening[live.session_id]


# Leaving --------------------------------------------------------------------------------------


async def test_leave_frees_the_seat_and_the_connection_may_join_again(live: Live) -> None:
    officer, first = await live.joined("officer")
    await live.hearing.leave(officer)
    assert holders(live.outbox.presence()[-1]["seats"])["officer"] is None
    assert officer not in live.outbox.listening[live.session_id]
    assert live.media.did("detach") == [first["participant"]]
    [left] = await live.audit(AuditKind.LEFT)
    assert left.data == {
        "participant": first["participant"],
        "seats": ["officer"],
        "reason": "left",
    }
    assert live.gauge("courtlink_participants") == 0
    with pytest.raises(Conflict):
        await live.hearing.leave(officer)

    again = await live.hearing.join(officer, live.session_id)
    assert again["participant"] != first["participant"]


async def test_disconnect_frees_every_seat(live: Live) -> None:
    await live.consent("terminal")
    terminal, data = await live.joined("terminal")
    await live.hearing.disconnect(terminal)
    await live.hearing.disconnect(terminal)  # a second disconnect is no error
    assert await live.hearing.presence.snapshot(live.session_id) == {}
    [left] = await live.audit(AuditKind.LEFT)
    assert left.data == {
        "participant": data["participant"],
        "seats": ["officer", "debtor"],
        "reason": "disconnected",
    }
    assert live.gauge("courtlink_participants") == 0
    assert live.gauge("courtlink_connections") == 0


async def test_a_connection_closed_while_joining_holds_no_seat(live: Live) -> None:
    officer = await live.connect("officer")
    attendee = live.hearing.attendee(officer)
    authenticate = attendee.reauthenticate

    async def then_gone() -> Principal:
        principal = await authenticate()
        await live.hearing.disconnect(officer)  # the client went away mid-join
        return principal

    attendee.reauthenticate = then_gone
    with pytest.raises(Conflict):
        await live.hearing.join(officer, live.session_id)
    assert await live.hearing.presence.snapshot(live.session_id) == {}
    assert live.media.did("attach") == []
    assert live.gauge("courtlink_participants") == 0


async def test_state_changes_reach_presence(live: Live) -> None:
    officer, data = await live.joined("officer")
    await live.hearing.change_state(officer, audio_muted=True)
    seat = live.outbox.presence()[-1]["seats"]["officer"]
    assert seat["state"] == {"audio_muted": True, "video_muted": False, "connection": "signaling"}
    with pytest.raises(InvalidInput):
        await live.hearing.change_state(officer)
    asked = await live.hearing.presence_of(officer)
    assert asked["seats"]["officer"]["participant"] == data["participant"]


# Refusals -------------------------------------------------------------------------------------


async def test_unknown_connections_and_unseated_requests_are_refused(live: Live) -> None:
    with pytest.raises(NotAuthenticated):
        await live.hearing.join("nobody", live.session_id)
    officer = await live.connect("officer")
    with pytest.raises(Conflict):
        await live.hearing.leave(officer)
    with pytest.raises(Conflict):
        await live.hearing.change_state(officer, audio_muted=True)
    with pytest.raises(Conflict):
        await live.hearing.presence_of(officer)
    assert live.outbox.sent == []
    assert live.outbox.published == []


async def test_a_seat_the_invite_does_not_hold_is_refused_and_audited(live: Live) -> None:
    officer = await live.connect("officer")
    with pytest.raises(Forbidden) as refused:
        await live.hearing.join(officer, live.session_id, [Seat.CREDITOR])
    [event] = await live.audit(AuditKind.INVITE_REFUSED)
    assert event.data == {"seats": ["creditor"], "code": refused.value.code}
    assert await live.hearing.presence.snapshot(live.session_id) == {}
    assert live.outbox.sent == []
    assert live.outbox.published == []
    assert live.media.calls == []


async def test_consent_is_needed_before_a_party_joins(live: Live) -> None:
    creditor = await live.connect("creditor")
    with pytest.raises(Forbidden) as refused:
        await live.hearing.join(creditor, live.session_id)
    assert refused.value.code == "consent_required"
    assert await live.hearing.presence.snapshot(live.session_id) == {}


async def test_an_invite_revoked_after_connect_cannot_join(live: Live) -> None:
    officer = await live.connect("officer")
    invite = live.world.invites["officer"]
    await live.services.clerk.revoke_invite(live.world.me, invite.id)
    with pytest.raises(InviteRevoked):
        await live.hearing.join(officer, live.session_id)
    assert await live.hearing.presence.snapshot(live.session_id) == {}


# Ended, revoked, closed -----------------------------------------------------------------------


async def test_ending_tells_everyone_frees_every_seat_and_disconnects_shortly(live: Live) -> None:
    judge, _ = await live.joined("judge")
    officer, o = await live.joined("officer")
    await live.services.clerk.end_session(live.world.me, live.session_id)
    await live.hearing.end(live.session_id)
    assert (live.session_id, "session_ended", {"session": live.session_id}) in (
        live.outbox.published
    )
    assert await live.hearing.presence.snapshot(live.session_id) == {}
    assert ("end", live.session_id) in live.media.calls
    assert sorted(live.outbox.disconnected) == sorted(
        [(judge, ENDED_GRACE), (officer, ENDED_GRACE)]
    )
    left = {e.data["participant"]: e.data["reason"] for e in await live.audit(AuditKind.LEFT)}
    assert left[o["participant"]] == "session_ended"
    assert live.gauge("courtlink_participants") == 0
    # Their disconnects, when they come, do not free or audit anything again.
    await live.hearing.disconnect(officer)
    assert len(await live.audit(AuditKind.LEFT)) == 2
    with pytest.raises(Conflict):
        await live.hearing.join(await live.connect("officer"), live.session_id)


async def test_a_revoked_invite_loses_its_connection(live: Live) -> None:
    officer, o = await live.joined("officer")
    judge, _ = await live.joined("judge")
    await live.hearing.invite_revoked(live.session_id, live.world.invites["officer"].id)
    assert live.outbox.to(officer, "removed") == [
        {"session": live.session_id, "reason": "invite_revoked"}
    ]
    assert live.outbox.to(judge, "removed") == []
    assert holders(live.outbox.presence()[-1]["seats"])["officer"] is None
    [left] = await live.audit(AuditKind.LEFT)
    assert left.data["participant"] == o["participant"]
    assert left.data["reason"] == "disconnected"


async def test_close_disconnects_every_client_of_the_node(live: Live) -> None:
    officer, _ = await live.joined("officer")
    judge = await live.connect("judge")
    await live.hearing.close()
    assert {c for c, _ in live.outbox.disconnected} == {officer, judge}
    assert await live.hearing.presence.snapshot(live.session_id) == {}
    assert live.gauge("courtlink_connections") == 0
