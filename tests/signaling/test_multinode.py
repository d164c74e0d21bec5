"""Two app instances sharing one PostgreSQL database and one Redis: presence, replacement,
leave, revocation and ending a session work across nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.hashing import SecretHasher
from courtlink.web.keys import METRICS
from tests.conftest import make_settings, start_server
from tests.signaling.conftest import Room, holders

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def nodes(
    tmp_path: Path, pg_url: str, redis_url: str, fast_hasher: SecretHasher
) -> AsyncIterator[tuple[Room, Room]]:
    # One data directory for both: the same invite secret and audit keys, as a deployment
    # would share them (a secret file mounted on every node).
    settings = make_settings(tmp_path / "a", database={"url": pg_url}, redis={"url": redis_url})
    first = await start_server(settings, fast_hasher)
    try:
        second = await start_server(settings, fast_hasher)
    except BaseException:
        await first.close()
        raise
    one = await Room.open(first, settings)
    two = await Room.open(second, settings, world=one.world)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()
        await second.close()
        await first.close()


def participants_gauge(room: Room) -> float:
    value = room.live.app[METRICS].registry.get_sample_value("courtlink_participants")
    return 0.0 if value is None else value


async def test_a_seat_taken_on_another_node_replaces_the_holder(nodes: tuple[Room, Room]) -> None:
    one, two = nodes
    judge, j = await one.joined("judge")
    a_client, a = await one.joined("officer")
    await judge.presence(judge=j["participant"], officer=a["participant"], state="live")

    b_client, b = await two.joined("officer")
    replaced = await a_client.wait("replaced")
    assert replaced == {
        "session": one.session_id,
        "seats": ["officer"],
        "reason": "seat_taken",
        "message": replaced["message"],
    }
    await a_client.disconnected()
    assert b_client.connected

    # Presence from node 2 reaches node 1's client, and node 2's own.
    await judge.presence(judge=j["participant"], officer=b["participant"], state="live")
    await b_client.presence(judge=j["participant"], officer=b["participant"])
    assert holders(await one.snapshot()) == holders(await two.snapshot())
    assert holders(await one.snapshot())["officer"] == b["participant"]

    # The replaced client's disconnect on node 1 does not free the seat node 2 now holds.
    await judge.quiet("presence")
    assert holders(await one.snapshot())["officer"] == b["participant"]
    [event] = await one.audit(AuditKind.REPLACED)
    assert event.data == {
        "participant": a["participant"],
        "by": b["participant"],
        "seats": ["officer"],
    }
    assert [e.data["participant"] for e in await one.audit(AuditKind.LEFT)] == []
    # Each node counts the seats held through it.
    assert participants_gauge(one) == 1  # the judge
    assert participants_gauge(two) == 1  # the officer
    await one.verify_audit()


async def test_presence_and_leave_across_nodes(nodes: tuple[Room, Room]) -> None:
    one, two = nodes
    await one.consent("creditor")
    judge, j = await one.joined("judge")
    creditor, c = await two.joined("creditor")
    officer, o = await two.joined("officer")
    everyone = {
        "judge": j["participant"],
        "creditor": c["participant"],
        "officer": o["participant"],
    }
    for peer in (judge, creditor, officer):
        await peer.presence(**everyone, state="live")

    await creditor.ok("leave")
    await judge.presence(judge=j["participant"], creditor=None, officer=o["participant"])
    await officer.presence(judge=j["participant"], creditor=None, officer=o["participant"])
    assert holders(await one.snapshot())["creditor"] is None

    # A state change on node 2 shows on node 1.
    await officer.ok("state", {"video_muted": True})
    await judge.wait(
        "presence",
        lambda m: (
            m["seats"]["officer"] is not None
            and m["seats"]["officer"]["state"]["video_muted"] is True
        ),
    )
    # A disconnect on node 1 shows on node 2.
    await judge.sio.disconnect()
    await officer.presence(judge=None, officer=o["participant"])
    assert participants_gauge(one) == 0
    assert participants_gauge(two) == 1


async def test_revoke_and_end_reach_other_nodes(nodes: tuple[Room, Room]) -> None:
    one, two = nodes
    await one.consent("creditor")
    login = await one.login()
    judge = await one.judge_by_account(login)
    await judge.ok("join", {"session": one.session_id})
    creditor, _ = await two.joined("creditor")
    officer, _ = await two.joined("officer")
    await judge.presence(judge=True, creditor=True, officer=True)

    # Revoked through node 1's API: the holder on node 2 is removed.
    status, _ = await one.api("DELETE", f"/api/invites/{one.world.invites['creditor'].id}", login)
    assert status == 200
    assert (await creditor.wait("removed"))["reason"] == "invite_revoked"
    await creditor.disconnected()
    await judge.presence(creditor=None, officer=True)
    refused = await two.refused_connect(auth={"invite": two.token("creditor")})
    assert refused["code"] == "invite_revoked"

    # Ended through node 1's API: the client on node 2 is told and disconnected.
    status, _ = await one.api("POST", f"/api/sessions/{one.session_id}/end", login)
    assert status == 200
    for peer in (judge, officer):
        assert await peer.wait("session_ended") == {"session": one.session_id}
        await peer.disconnected()
    assert await two.snapshot() == {s: None for s in ("judge", "officer", "debtor", "creditor")}
    again = await two.invitee("officer")
    assert (await again.refused("join", {"session": two.session_id}))["code"] == "conflict"
    assert participants_gauge(one) == 0
    assert participants_gauge(two) == 0
