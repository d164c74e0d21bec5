"""Joining a session over real Socket.IO connections: by invite (auth payload or cookie) and by
account login; presence pushed to everyone; session state; replacement; leave and disconnect;
participant state; the audit chain."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from courtlink.court.audit import AuditKind
from courtlink.court.sessions import SessionState
from courtlink.web.keys import MEDIA, METRICS
from tests.signaling.conftest import SEATS, Room, holders, presence_matches

SESSION_KEYS = {"id", "case_number", "state", "recorded", "lobby"}
JOIN_KEYS = {"participant", "seats", "session", "presence"}


def participants_gauge(room: Room) -> float:
    """Seats held through this node, as /metrics reports them."""
    value = room.live.app[METRICS].registry.get_sample_value("courtlink_participants")
    return 0.0 if value is None else value


def check_join_ack(room: Room, data: dict[str, Any], seats: list[str]) -> None:
    assert set(data) == JOIN_KEYS
    assert isinstance(data["participant"], str)
    assert data["participant"]
    assert data["seats"] == seats
    assert set(data["session"]) == SESSION_KEYS
    assert data["session"]["id"] == room.session_id
    assert data["session"]["case_number"] == room.world.case.number
    assert data["session"]["recorded"] is room.world.session.recorded
    assert data["session"]["lobby"] is room.world.session.lobby
    presence = data["presence"]
    assert set(presence) == {"session", "state", "seats", "moderation"}
    assert presence["session"] == room.session_id
    assert presence["state"] == data["session"]["state"]
    assert set(presence["seats"]) == set(SEATS)
    for seat in seats:
        held = presence["seats"][seat]
        assert held["participant"] == data["participant"]
        assert held["seats"] == seats
        assert held["state"] == {
            "audio_muted": False,
            "video_muted": False,
            "connection": "signaling",
        }


# Ways in ----------------------------------------------------------------------------------------


async def test_join_by_invite_in_auth(room: Room) -> None:
    officer = await room.invitee("officer")
    welcome = await officer.wait("welcome")
    assert welcome == {
        "protocol": 1,
        "principal": {"kind": "invite", "session": room.session_id, "seats": ["officer"]},
    }
    data = await officer.ok("join", {"session": room.session_id})
    check_join_ack(room, data, ["officer"])
    assert data["session"]["state"] == "open"
    assert data["presence"]["seats"]["officer"]["name"] == "officer"
    pushed = await officer.presence(officer=data["participant"])
    assert pushed == data["presence"]
    assert holders(await room.snapshot()) == {
        "judge": None,
        "officer": data["participant"],
        "debtor": None,
        "creditor": None,
    }


async def test_join_by_invite_cookie(room: Room) -> None:
    await room.consent("creditor")
    creditor = await room.peer(
        "creditor",
        headers={"Cookie": f"cl_invite={room.token('creditor')}"},
        transports=["polling", "websocket"],  # the cookie rides on every transport's request
    )
    welcome = await creditor.wait("welcome")
    assert welcome["principal"]["kind"] == "invite"
    assert welcome["principal"]["seats"] == ["creditor"]
    data = await creditor.ok("join", {"session": room.session_id})
    check_join_ack(room, data, ["creditor"])
    assert data["presence"]["seats"]["creditor"]["name"] == room.world.case.creditor_name
    await creditor.presence(creditor=data["participant"])


async def test_invite_in_auth_wins_over_cookie(room: Room) -> None:
    await room.consent("creditor")
    peer = await room.peer(
        "both",
        auth={"invite": room.token("creditor")},
        headers={"Cookie": f"cl_invite={room.token('officer')}"},
    )
    assert (await peer.wait("welcome"))["principal"]["seats"] == ["creditor"]


async def test_judge_joins_by_account_login(room: Room) -> None:
    judge = await room.judge_by_account()
    welcome = await judge.wait("welcome")
    assert welcome["principal"] == {
        "kind": "account",
        "role": "judge",
        "name": room.world.judge.display_name,
    }
    data = await judge.ok("join", {"session": room.session_id})
    check_join_ack(room, data, ["judge"])
    assert data["presence"]["seats"]["judge"]["name"] == room.world.judge.display_name
    # The same with the seat named explicitly, from a second tab: it replaces the first.
    second = await room.judge_by_account()
    again = await second.ok("join", {"session": room.session_id, "seats": ["judge"]})
    check_join_ack(room, again, ["judge"])
    replaced = await judge.wait("replaced")
    assert replaced["seats"] == ["judge"]
    await judge.disconnected()


async def test_account_cookie_chosen_with_as(room: Room) -> None:
    login = await room.login()
    cookies = f"cl_invite={room.token('officer')}; cl_session={login.cookie}"
    by_default = await room.peer("default", headers={"Cookie": cookies})
    assert (await by_default.wait("welcome"))["principal"]["kind"] == "invite"
    as_account = await room.peer("account", auth={"as": "account"}, headers={"Cookie": cookies})
    assert (await as_account.wait("welcome"))["principal"]["kind"] == "account"


# Presence and session state --------------------------------------------------------------------


async def test_state_goes_scheduled_open_live(room: Room) -> None:
    await room.consent("creditor")
    assert await room.session_state() == "scheduled"
    judge = await room.judge_by_account()
    judge_data = await judge.ok("join", {"session": room.session_id})
    assert judge_data["session"]["state"] == "open"
    await judge.presence(judge=judge_data["participant"], state="open")
    assert await room.session_state() == "open"

    creditor, data = await room.joined("creditor")
    assert data["session"]["state"] == "live"
    both = {"judge": judge_data["participant"], "creditor": data["participant"]}
    await judge.presence(**both, state="live")
    await creditor.presence(**both, state="live")
    assert await room.session_state() == "live"

    # The creditor leaves, the judge stays: the state the domain's rule gives (rooms.sessions).
    after = str(replace(room.world.session, state=SessionState.LIVE).after_presence(True, 0))
    await creditor.ok("leave")
    await judge.presence(judge=judge_data["participant"], creditor=None, state=after)
    assert await room.session_state() == after
    transitions = [(e.data["from"], e.data["to"]) for e in await room.audit("session.state")]
    expected = [("scheduled", "open"), ("open", "live")]
    assert transitions == expected + ([("live", after)] if after != "live" else [])


async def test_parties_without_the_judge_make_it_open(room: Room) -> None:
    await room.consent("creditor")
    _, officer = await room.joined("officer")
    assert officer["session"]["state"] == "open"
    _, creditor = await room.joined("creditor")
    assert creditor["session"]["state"] == "open"  # no judge yet
    _, judge = await room.joined("judge")  # the judge's own invite works too
    assert judge["session"]["state"] == "live"


async def test_presence_reaches_everyone(room: Room) -> None:
    await room.consent("creditor")
    judge = await room.judge_by_account()
    j = (await judge.ok("join", {"session": room.session_id}))["participant"]
    officer, o_data = await room.joined("officer")
    o = o_data["participant"]
    creditor, c_data = await room.joined("creditor")
    c = c_data["participant"]
    everyone = [judge, officer, creditor]
    full = {"judge": j, "officer": o, "creditor": c, "debtor": None, "state": "live"}
    for peer in everyone:
        await peer.presence(**full)

    # A state change reaches everyone, with the right seat changed.
    await officer.ok("state", {"audio_muted": True})
    for peer in everyone:
        message = await peer.wait(
            "presence",
            lambda m: (
                presence_matches(m, **full)
                and m["seats"]["officer"]["state"]["audio_muted"] is True
            ),
        )
        assert message["seats"]["judge"]["state"]["audio_muted"] is False
        assert message["seats"]["creditor"]["state"]["audio_muted"] is False

    # Leave: everyone left in the room hears it.
    await creditor.ok("leave")
    for peer in (judge, officer):
        await peer.presence(judge=j, officer=o, creditor=None)

    # Disconnect: the same.
    await officer.sio.disconnect()
    await judge.presence(judge=j, officer=None, creditor=None, debtor=None)
    assert holders(await room.snapshot()) == {
        "judge": j,
        "officer": None,
        "debtor": None,
        "creditor": None,
    }


async def test_a_client_that_left_hears_no_more_presence(room: Room) -> None:
    officer, _ = await room.joined("officer")
    await officer.ok("leave")
    officer.skip_past("presence")
    _, _ = await room.joined("judge")
    await officer.quiet("presence")


async def test_presence_request(room: Room) -> None:
    officer, data = await room.joined("officer")
    answer = await officer.ok("presence")
    officer_seat = answer["seats"]["officer"]
    # The judge's controls are off: in no lobby (only creditors wait), not held, not muted.
    assert officer_seat.pop("status") == {"in_lobby": False, "on_hold": False, "muted": False}
    assert answer == {
        "session": room.session_id,
        "state": "open",
        "seats": await room.snapshot(),
        "moderation": {"lobby": True, "admitted": [], "caucus": None, "muted": []},
    }
    officer_seat["status"] = {"in_lobby": False, "on_hold": False, "muted": False}
    assert answer["seats"]["officer"]["participant"] == data["participant"]
    assert await officer.ok("presence", {}) == answer


async def test_state_event_shows_in_presence(room: Room) -> None:
    await room.consent("terminal")
    judge, _ = await room.joined("judge")
    terminal, data = await room.joined("terminal")
    t = data["participant"]
    assert await terminal.ok("state", {"audio_muted": True}) == {}

    def muted(message: dict[str, Any], audio: bool, video: bool) -> bool:
        return all(
            message["seats"][seat] is not None
            and message["seats"][seat]["participant"] == t
            and message["seats"][seat]["state"]["audio_muted"] is audio
            and message["seats"][seat]["state"]["video_muted"] is video
            for seat in ("officer", "debtor")  # one participant, both seats
        )

    await judge.wait("presence", lambda m: muted(m, True, False))
    await terminal.wait("presence", lambda m: muted(m, True, False))
    await terminal.ok("state", {"video_muted": True})
    await judge.wait("presence", lambda m: muted(m, True, True))
    await terminal.ok("state", {"audio_muted": False, "video_muted": False})
    await judge.wait("presence", lambda m: muted(m, False, False))
    snapshot = await room.snapshot()
    assert snapshot["officer"]["state"] == {
        "audio_muted": False,
        "video_muted": False,
        "connection": "signaling",
    }


# Replacement -----------------------------------------------------------------------------------


async def test_a_seat_joined_twice_replaces_the_older_connection(room: Room) -> None:
    await room.consent("creditor")
    judge, _ = await room.joined("judge")
    first, a = await room.joined("creditor")
    await judge.presence(creditor=a["participant"])
    second, b = await room.joined("creditor")
    assert a["participant"] != b["participant"]

    replaced = await first.wait("replaced")
    assert replaced["session"] == room.session_id
    assert replaced["seats"] == ["creditor"]
    assert replaced["reason"] == "seat_taken"
    assert isinstance(replaced["message"], str)
    assert replaced["message"]
    await first.disconnected()
    assert second.connected

    await judge.presence(creditor=b["participant"])
    await second.presence(creditor=b["participant"])
    assert (await room.snapshot())["creditor"]["participant"] == b["participant"]
    assert await room.session_state() == "live"
    assert participants_gauge(room) == 2  # the judge and the newer creditor

    [event] = await room.audit(AuditKind.REPLACED)
    assert event.data == {
        "participant": a["participant"],
        "by": b["participant"],
        "seats": ["creditor"],
    }
    assert event.actor == f"invite:{room.world.invites['creditor'].id}"
    # The replaced participant did not "leave": only the replacement is recorded.
    left = [
        e for e in await room.audit(AuditKind.LEFT) if e.data["participant"] == a["participant"]
    ]
    assert left == []
    # The newer holder stays in and can act.
    await second.ok("state", {"audio_muted": True})
    await judge.wait(
        "presence",
        lambda m: (
            m["seats"]["creditor"] is not None
            and m["seats"]["creditor"]["state"]["audio_muted"] is True
        ),
    )


async def test_terminal_holds_officer_and_debtor_until_a_debtor_joins(room: Room) -> None:
    await room.consent("terminal")
    await room.consent("debtor")
    judge, _ = await room.joined("judge")
    terminal, t_data = await room.joined("terminal")
    check_join_ack(room, t_data, ["officer", "debtor"])
    t = t_data["participant"]
    name = t_data["presence"]["seats"]["officer"]["name"]
    assert name == f"officer / {room.world.case.debtor_name}"
    await judge.presence(officer=t, debtor=t, state="live")

    _debtor, d_data = await room.joined("debtor")
    d = d_data["participant"]
    replaced = await terminal.wait("replaced")
    assert replaced["seats"] == ["officer", "debtor"]
    assert replaced["reason"] == "seat_taken"
    await terminal.disconnected()
    # The displaced terminal loses every seat it held, not just the debtor's.
    message = await judge.presence(officer=None, debtor=d)
    assert message["seats"]["debtor"]["seats"] == ["debtor"]
    assert message["seats"]["debtor"]["name"] == room.world.case.debtor_name
    assert holders(await room.snapshot())["officer"] is None
    [event] = await room.audit(AuditKind.REPLACED)
    assert event.data == {"participant": t, "by": d, "seats": ["officer", "debtor"]}
    assert participants_gauge(room) == 2  # judge, debtor


async def test_terminal_may_take_one_of_its_seats(room: Room) -> None:
    await room.consent("terminal")
    terminal, data = await room.joined("terminal", seats=["officer"])
    assert data["seats"] == ["officer"]
    officer_only, other = await room.joined("officer")
    await terminal.wait("replaced")
    await officer_only.presence(officer=other["participant"], debtor=None)


# Leave and disconnect ----------------------------------------------------------------------------


async def test_leave_frees_the_seat_and_the_connection_may_join_again(room: Room) -> None:
    judge, _ = await room.joined("judge")
    officer, first = await room.joined("officer")
    assert await officer.ok("leave") == {}
    await judge.presence(officer=None)
    assert holders(await room.snapshot())["officer"] is None
    assert officer.connected  # leaving is not disconnecting

    again = await officer.ok("join", {"session": room.session_id})
    assert again["participant"] != first["participant"]
    await judge.presence(officer=again["participant"])

    [left] = await room.audit(AuditKind.LEFT)
    assert left.data == {
        "participant": first["participant"],
        "seats": ["officer"],
        "reason": "left",
    }


async def test_disconnect_frees_every_seat(room: Room) -> None:
    await room.consent("terminal")
    judge, _ = await room.joined("judge")
    terminal, data = await room.joined("terminal")
    await judge.presence(officer=data["participant"], debtor=data["participant"])
    await terminal.sio.disconnect()
    await judge.presence(officer=None, debtor=None)
    [left] = await room.audit(AuditKind.LEFT)
    assert left.data == {
        "participant": data["participant"],
        "seats": ["officer", "debtor"],
        "reason": "disconnected",
    }


async def test_join_twice_on_one_connection_is_idempotent(room: Room) -> None:
    officer, first = await room.joined("officer")
    again = await officer.ok("join", {"session": room.session_id})
    # A client that re-sends join (e.g. after an ack timed out) gets the same answer.
    check_join_ack(room, again, ["officer"])
    assert again["participant"] == first["participant"]
    seen = {
        seat: None if held is None else {k: v for k, v in held.items() if k != "status"}
        for seat, held in again["presence"]["seats"].items()
    }
    assert seen == await room.snapshot()
    assert len(await room.audit(AuditKind.JOINED)) == 1


async def test_disconnect_while_joining_leaves_no_ghost_seat(room: Room) -> None:
    judge, j = await room.joined("judge")
    # The client goes away while its join is still being carried out (several timings); each
    # time the officer seat must end up free again (no seat held by a closed connection).
    for delay in (0.0, 0.0, 0.001, 0.002, 0.004, 0.008, 0.016):
        peer = await room.invitee("officer")
        await peer.sio.emit("join", {"session": room.session_id})
        if delay:
            await asyncio.sleep(delay)
        await peer.sio.disconnect()
        for _ in range(40):
            await asyncio.sleep(0.05)
            if holders(await room.snapshot())["officer"] is None:
                break
        assert holders(await room.snapshot())["officer"] is None, f"ghost after {delay}s"
    await judge.presence(officer=None)
    assert await room.session_state() == "open"
    assert participants_gauge(room) == 1
    # Media holds nobody but the judge either.
    router = room.live.app[MEDIA].routers.get(room.session_id)  # type: ignore[attr-defined]
    attached = getattr(router, "participants", None) or getattr(router, "peers", {})
    assert set(attached) == {j["participant"]}
    # Every officer that joined also left: the audit chain has no dangling participant.
    joined = {e.data["participant"] for e in await room.audit(AuditKind.JOINED)}
    left = {e.data["participant"] for e in await room.audit(AuditKind.LEFT)}
    assert joined - left == {j["participant"]}


# Audit -----------------------------------------------------------------------------------------


async def test_audit_chain_records_joins_leaves_and_replacements(room: Room) -> None:
    await room.consent("creditor")
    judge_login = await room.login()
    judge = await room.judge_by_account(judge_login)
    j = (await judge.ok("join", {"session": room.session_id}))["participant"]
    first, a = await room.joined("creditor")
    second, b = await room.joined("creditor")
    await first.disconnected()
    await second.ok("leave")
    await judge.sio.disconnect()
    await asyncio.sleep(0.2)

    events = await room.audit(AuditKind.JOINED, AuditKind.LEFT, AuditKind.REPLACED)
    summary = [(e.kind, e.data["participant"]) for e in events]
    assert summary == [
        ("participant.joined", j),
        ("participant.joined", a["participant"]),
        ("participant.replaced", a["participant"]),
        ("participant.joined", b["participant"]),
        ("participant.left", b["participant"]),
        ("participant.left", j),
    ]
    assert events[0].actor == room.world.judge.actor
    assert events[0].data["seats"] == ["judge"]
    assert events[0].case_id == room.world.case.id
    assert events[-1].data["reason"] == "disconnected"
    assert events[-2].data["reason"] == "left"
    assert all(e.session_id == room.session_id for e in events)
    await room.verify_audit()
