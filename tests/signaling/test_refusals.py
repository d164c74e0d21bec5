"""Refused connections and requests: each one answers with its error code and changes nothing
(presence, session state, the audit chain's joins, the other clients' view)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.invites import InviteSigner
from courtlink.court.seats import Seat
from courtlink.web.keys import METRICS, STORE
from tests.signaling.conftest import Login, Peer, Room, RoomFactory, holders

# Helpers -----------------------------------------------------------------------------------------


def gauge(room: Room, name: str) -> float:
    value = room.live.app[METRICS].registry.get_sample_value(name)
    return 0.0 if value is None else value


def refusals(room: Room, where: str, code: str) -> float:
    value = room.live.app[METRICS].registry.get_sample_value(
        "courtlink_errors_total", {"where": where, "code": code}
    )
    return 0.0 if value is None else value


@asynccontextmanager
async def nothing_changes(room: Room, *watchers: Peer) -> AsyncIterator[None]:
    """Whatever happens inside must leave presence, state, joins and the watchers' view alone."""
    seats = await room.snapshot()
    state = await room.session_state()
    joins = len(await room.audit(AuditKind.JOINED, AuditKind.LEFT, AuditKind.REPLACED))
    participants = gauge(room, "courtlink_participants")
    for watcher in watchers:
        watcher.skip_past("presence")
    yield
    for watcher in watchers:
        await watcher.quiet("presence")
        assert watcher.connected
        assert not watcher.all("replaced")
        assert not watcher.all("removed")
    assert await room.snapshot() == seats
    assert await room.session_state() == state
    assert len(await room.audit(AuditKind.JOINED, AuditKind.LEFT, AuditKind.REPLACED)) == joins
    assert gauge(room, "courtlink_participants") == participants


async def watcher(room: Room) -> Peer:
    """The judge (by invite), joined, watching presence."""
    judge, _ = await room.joined("judge")
    await judge.presence(judge=True)
    return judge


def flip(char: str) -> str:
    return "A" if char != "A" else "B"


def tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2  # not the last character: its low bits may be padding
    return ".".join(
        [header, payload, signature[:middle] + flip(signature[middle]) + signature[middle + 1 :]]
    )


def tamper_payload(token: str, **changes: Any) -> str:
    """The same signature over a changed payload."""
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    forged = jwt.encode(claims, b"k" * 32, algorithm="HS256").split(".")[1]
    return ".".join([header, forged, signature])


# Refused connections -----------------------------------------------------------------------------


async def test_no_credentials(room: Room) -> None:
    judge = await watcher(room)
    connections = gauge(room, "courtlink_connections")
    async with nothing_changes(room, judge):
        error = await room.refused_connect()
        assert error["code"] == "not_authenticated"
        assert (await room.refused_connect(auth={}))["code"] == "not_authenticated"
        assert (await room.refused_connect(auth={"as": "invite"}))["code"] == "not_authenticated"
        assert (await room.refused_connect(auth={"as": "account"}))["code"] == "not_authenticated"
    assert gauge(room, "courtlink_connections") == connections
    assert refusals(room, "connect", "not_authenticated") == 4


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "", "x" * 3000, "eyJhbGciOiJub25lIn0.e30."],
    ids=["word", "three-parts", "empty", "huge", "alg-none"],
)
async def test_garbage_token(room: Room, token: str) -> None:
    judge = await watcher(room)
    async with nothing_changes(room, judge):
        error = await room.refused_connect(auth={"invite": token})
        assert error["code"] == "invite_invalid"
        if token:
            cookie = await room.refused_connect(headers={"Cookie": f"cl_invite={token}"})
            assert cookie["code"] == "invite_invalid"


async def test_tampered_tokens(room: Room) -> None:
    judge = await watcher(room)
    creditor = room.token("creditor")
    other_key = InviteSigner(os.urandom(32)).sign(room.world.invites["creditor"])
    async with nothing_changes(room, judge):
        for token in (
            tamper_signature(creditor),
            other_key,
            tamper_payload(creditor, seats=["judge"]),
            tamper_payload(creditor, exp=2**31),
        ):
            error = await room.refused_connect(auth={"invite": token})
            assert error["code"] == "invite_invalid", token
            assert "token" not in error["message"].lower() or token not in error["message"]
        by_cookie = await room.refused_connect(headers={"Cookie": f"cl_invite={other_key}"})
        assert by_cookie["code"] == "invite_invalid"


async def test_malformed_auth_payload(room: Room) -> None:
    judge = await watcher(room)
    async with nothing_changes(room, judge):
        error = await room.refused_connect(auth={"invite": room.token("officer"), "seat": "judge"})
        assert error == {"code": "invalid_input", "message": "auth: unknown field"}
        error = await room.refused_connect(auth="token")
        assert error["code"] == "invalid_input"
        # A number is not a token: nothing to authenticate with.
        error = await room.refused_connect(auth={"invite": 12345})
        assert error["code"] == "not_authenticated"


async def test_bad_account_cookie(room: Room) -> None:
    judge = await watcher(room)
    async with nothing_changes(room, judge):
        error = await room.refused_connect(
            auth={"as": "account"}, headers={"Cookie": "cl_session=not-a-login"}
        )
        assert error["code"] == "not_authenticated"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def test_expired_token_with_injected_clock(make_room: RoomFactory) -> None:
    clock = FakeClock()
    room = await make_room(clock=clock)
    judge = await watcher(room)
    issued = await room.clerk.issue_invite(
        room.world.me, session_id=room.session_id, seats=[Seat.OFFICER], ttl_hours=1
    )
    early = await room.peer("early", auth={"invite": issued.token})  # connected in time
    clock.advance(hours=1, seconds=1)
    async with nothing_changes(room, judge):
        error = await room.refused_connect(auth={"invite": issued.token})
        assert error["code"] == "invite_expired"
        cookie = await room.refused_connect(headers={"Cookie": f"cl_invite={issued.token}"})
        assert cookie["code"] == "invite_expired"
        # A connection opened before the invite expired cannot take a seat with it after.
        assert (await early.refused("join", {"session": room.session_id}))["code"] == (
            "invite_expired"
        )
    # The world's own invites (72 hours) still work at the same moment.
    _, data = await room.joined("officer")
    assert data["seats"] == ["officer"]


async def test_expired_token_in_real_time(room: Room) -> None:
    issued = await room.clerk.issue_invite(
        room.world.me, session_id=room.session_id, seats=[Seat.OFFICER], ttl_hours=0.0003
    )
    await asyncio.sleep(1.5)  # 0.0003 h = 1.08 s
    judge = await watcher(room)
    async with nothing_changes(room, judge):
        error = await room.refused_connect(auth={"invite": issued.token})
        assert error["code"] == "invite_expired"


async def test_revoked_invite(room: Room) -> None:
    await room.consent("creditor")
    login = await room.login()
    judge = await room.judge_by_account(login)
    j = (await judge.ok("join", {"session": room.session_id}))["participant"]
    creditor, c = await room.joined("creditor")
    await judge.presence(judge=j, creditor=c["participant"])
    idle = await room.invitee("creditor")  # connected with the same invite, not joined
    invite_id = room.world.invites["creditor"].id

    # Without the CSRF token the judge's request is refused and nothing happens.
    status, body = await room.api(
        "DELETE", f"/api/invites/{invite_id}", Login(login.cookie, "wrong")
    )
    assert status == 403, body
    assert creditor.connected
    assert not creditor.all("removed")

    status, body = await room.api("DELETE", f"/api/invites/{invite_id}", login)
    assert status == 200, body
    removed = await creditor.wait("removed")
    assert removed == {"session": room.session_id, "reason": "invite_revoked"}
    await creditor.disconnected()
    await judge.presence(judge=j, creditor=None)
    assert holders(await room.snapshot())["creditor"] is None

    async with nothing_changes(room, judge):
        error = await room.refused_connect(auth={"invite": room.token("creditor")})
        assert error["code"] == "invite_revoked"
        cookie = await room.refused_connect(
            headers={"Cookie": f"cl_invite={room.token('creditor')}"}
        )
        assert cookie["code"] == "invite_revoked"
        # A connection opened before the revocation cannot take the seat afterwards either.
        assert (await idle.refused("join", {"session": room.session_id}))["code"] == (
            "invite_revoked"
        )
    kinds = [e.kind for e in await room.audit()]
    assert "invite.revoked" in kinds
    await room.verify_audit()


async def test_logged_out_account_cannot_join(room: Room) -> None:
    login = await room.login()
    judge = await room.judge_by_account(login)
    status, _ = await room.api("POST", "/api/logout", login)
    assert status == 204
    officer, _ = await room.joined("officer")
    async with nothing_changes(room, officer):
        error = await judge.refused("join", {"session": room.session_id})
        assert error["code"] == "not_authenticated"


async def test_wrong_seat(room: Room) -> None:
    await room.consent("creditor")
    judge = await watcher(room)
    creditor = await room.invitee("creditor")
    async with nothing_changes(room, judge):
        for seats in (["judge"], ["debtor"], ["creditor", "debtor"], ["officer"]):
            error = await creditor.refused("join", {"session": room.session_id, "seats": seats})
            assert error["code"] == "seat_not_allowed", seats
    refused = await room.audit(AuditKind.INVITE_REFUSED)
    assert [e.data for e in refused] == [
        {"seats": seats, "code": "seat_not_allowed"}
        for seats in (["judge"], ["debtor"], ["creditor", "debtor"], ["officer"])
    ]
    assert all(e.actor == f"invite:{room.world.invites['creditor'].id}" for e in refused)
    # The right seat still works on the same connection afterwards.
    data = await creditor.ok("join", {"session": room.session_id, "seats": ["creditor"]})
    await judge.presence(creditor=data["participant"])


async def test_judge_account_may_not_take_a_party_seat(room: Room) -> None:
    officer, _ = await room.joined("officer")
    judge = await room.judge_by_account()
    async with nothing_changes(room, officer):
        for seats in (["creditor"], ["officer"], ["judge", "creditor"]):
            error = await judge.refused("join", {"session": room.session_id, "seats": seats})
            assert error["code"] == "forbidden", seats


async def test_other_session(room: Room) -> None:
    await room.consent("creditor")
    other = await room.clerk.create_session(room.world.me, case_id=room.world.case.id)
    judge = await watcher(room)
    creditor = await room.invitee("creditor")
    officer = await room.invitee("officer")
    other_judge = await room.judge_by_account(await room.login("judge2"))
    async with nothing_changes(room, judge):
        for peer in (creditor, officer):
            error = await peer.refused("join", {"session": other.id})
            assert error["code"] == "seat_not_allowed"
        missing = await creditor.refused("join", {"session": "0000000000000000"})
        assert missing["code"] == "not_found"
        # A judge not assigned to the case may not join its session.
        error = await other_judge.refused("join", {"session": room.session_id})
        assert error["code"] == "forbidden"
    async with room.live.app[STORE].read() as tx:
        assert await tx.audit_events(session_id=other.id) != []  # created, nothing more
        joined = [
            e for e in await tx.audit_events(session_id=other.id) if e.kind == AuditKind.JOINED
        ]
    assert joined == []


async def test_consent_required(room: Room) -> None:
    judge = await watcher(room)
    peers = {who: await room.invitee(who) for who in ("creditor", "debtor", "terminal")}
    async with nothing_changes(room, judge):
        for who, peer in peers.items():
            error = await peer.refused("join", {"session": room.session_id})
            assert error["code"] == "consent_required", who
        # The terminal may take the officer seat alone without the detainee's consent.
    terminal = await peers["terminal"].ok(
        "join", {"session": room.session_id, "seats": ["officer"]}
    )
    await judge.presence(officer=terminal["participant"], debtor=None)
    codes = [e.data["code"] for e in await room.audit(AuditKind.INVITE_REFUSED)]
    assert codes == ["consent_required"] * 3
    # After consent the same connection may join.
    await room.consent("creditor")
    data = await peers["creditor"].ok("join", {"session": room.session_id})
    await judge.presence(creditor=data["participant"])


async def test_ended_session(room: Room) -> None:
    await room.consent("creditor")
    login = await room.login()
    judge = await room.judge_by_account(login)
    await judge.ok("join", {"session": room.session_id})
    officer, _ = await room.joined("officer")
    creditor, _ = await room.joined("creditor")
    idle = await room.invitee("debtor")  # connected, never joined: not in the session's room
    await judge.presence(judge=True, officer=True, creditor=True, state="live")

    status, body = await room.api("POST", f"/api/sessions/{room.session_id}/end", login)
    assert status == 200, body
    assert body["state"] == "ended"
    for peer in (judge, officer, creditor):
        assert await peer.wait("session_ended") == {"session": room.session_id}
        await peer.disconnected()
    await idle.quiet("session_ended")
    assert await room.snapshot() == {
        seat: None for seat in ("judge", "officer", "debtor", "creditor")
    }
    assert await room.session_state() == "ended"

    joins = len(await room.audit(AuditKind.JOINED))
    again = await room.invitee("officer")
    error = await again.refused("join", {"session": room.session_id})
    assert error["code"] == "conflict"
    judge_again = await room.judge_by_account(login)
    assert (await judge_again.refused("join", {"session": room.session_id}))["code"] == "conflict"
    assert len(await room.audit(AuditKind.JOINED)) == joins
    assert await room.snapshot() == {
        seat: None for seat in ("judge", "officer", "debtor", "creditor")
    }
    assert await room.session_state() == "ended"
    await room.verify_audit()


# Malformed requests ------------------------------------------------------------------------------

MALFORMED: dict[str, list[tuple[Any, ...]]] = {
    "join": [
        ("not an object",),
        (["session"],),
        (42,),
        (True,),
        ({"session": 42},),
        ({"session": ["x"]},),
        ({"session": "s", "seats": "officer"},),
        ({"session": "s", "seats": ["usher"]},),
        ({"session": "s", "seats": ["officer", "debtor", "judge"]},),
        ({"session": "s", "extra": 1},),
        ({},),
        ({"session": "s"}, "second argument"),
    ],
    "leave": [("x",), ([],), (7,), ({"now": True},), ({}, {})],
    "state": [
        ("muted",),
        ([True],),
        ({"audio_muted": "yes"},),
        ({"audio_muted": 1},),
        ({"video_muted": "false"},),
        ({"connection": "connected"},),
        ({"audio_muted": True}, "extra"),
    ],
    "presence": [("x",), ([1],), (0,), ({"session": "s"},), ({}, 1)],
}


@pytest.mark.parametrize("event", list(MALFORMED))
async def test_malformed_payloads_before_and_after_join(room: Room, event: str) -> None:
    judge = await watcher(room)
    officer = await room.invitee("officer")
    async with nothing_changes(room, judge):
        for payload in MALFORMED[event]:
            error = await officer.refused(event, *payload)
            assert error["code"] == "invalid_input", (event, payload)
    await officer.ok("join", {"session": room.session_id})
    await judge.presence(officer=True)
    async with nothing_changes(room, judge):
        for payload in MALFORMED[event]:
            error = await officer.refused(event, *payload)
            assert error["code"] == "invalid_input", (event, payload)
        if event == "state":  # well-formed but empty: refused once there is something to change
            for empty in ({}, {"audio_muted": None}, {"audio_muted": None, "video_muted": None}):
                error = await officer.refused("state", empty)
                assert error == {"code": "invalid_input", "message": "payload: nothing to change"}
    assert officer.connected
    extra = 3 if event == "state" else 0
    assert refusals(room, "signaling", "invalid_input") == 2 * len(MALFORMED[event]) + extra


async def test_requests_before_join_are_conflicts(room: Room) -> None:
    judge = await watcher(room)
    officer = await room.invitee("officer")
    async with nothing_changes(room, judge):
        assert (await officer.refused("leave"))["code"] == "conflict"
        assert (await officer.refused("leave", {}))["code"] == "conflict"
        assert (await officer.refused("state", {"audio_muted": True}))["code"] == "conflict"
        assert (await officer.refused("presence"))["code"] == "conflict"
        assert (await officer.refused("presence", {}))["code"] == "conflict"
    # And after leaving, the same again.
    await officer.ok("join", {"session": room.session_id})
    await officer.ok("leave")
    await judge.presence(officer=None)
    async with nothing_changes(room, judge):
        assert (await officer.refused("leave"))["code"] == "conflict"
        assert (await officer.refused("state", {"video_muted": True}))["code"] == "conflict"
        assert (await officer.refused("presence"))["code"] == "conflict"


async def test_second_join_for_other_seats_is_a_conflict(room: Room) -> None:
    await room.consent("terminal")
    judge = await watcher(room)
    terminal, _ = await room.joined("terminal", seats=["officer"])
    async with nothing_changes(room, judge):
        for payload in (
            {"session": room.session_id, "seats": ["debtor"]},
            {"session": room.session_id},  # officer and debtor: not what it holds
        ):
            assert (await terminal.refused("join", payload))["code"] == "conflict"


async def test_unknown_event_changes_nothing(room: Room) -> None:
    judge = await watcher(room)
    officer, _ = await room.joined("officer")
    async with nothing_changes(room, judge):
        await officer.sio.emit("kick", {"seat": "judge"})
        await officer.sio.emit("replaced", {"session": room.session_id})
    assert officer.connected


async def test_concurrent_joins_on_one_connection(room: Room) -> None:
    judge = await watcher(room)
    officer = await room.invitee("officer")
    payload = {"session": room.session_id}
    acks = await asyncio.gather(officer.call("join", payload), officer.call("join", payload))
    # The connection does not displace itself: it ends up holding the seat, still connected.
    assert any(ack["ok"] for ack in acks), acks
    for ack in acks:
        assert ack["ok"] or ack["error"]["code"] == "conflict", ack
    await asyncio.sleep(0.3)
    assert officer.connected
    assert not officer.all("replaced")
    participants = {ack["data"]["participant"] for ack in acks if ack["ok"]}
    assert len(participants) == 1
    [p] = participants
    await judge.presence(officer=p)
    assert holders(await room.snapshot())["officer"] == p
    assert await room.audit(AuditKind.REPLACED) == []
