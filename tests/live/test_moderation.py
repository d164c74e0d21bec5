"""The judge's controls and media negotiation on the hearing, with the fake outbox and media."""

from __future__ import annotations

import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.routing import Caucus
from courtlink.court.seats import Seat
from courtlink.errors import Conflict, Forbidden, InviteRevoked, NotFound
from tests.live.conftest import Live


async def test_only_the_judge_seat_moderates(live: Live) -> None:
    officer, _ = await live.joined("officer")
    with pytest.raises(Forbidden):
        await live.controls.lobby(officer, False)
    judge = await live.connect("judge")
    with pytest.raises(Conflict):  # connected, not seated
        await live.controls.lobby(judge, False)
    assert live.outbox.presence()[-1]["moderation"]["lobby"] is True


async def test_lobby_admit_caucus_and_mute_reach_presence_and_the_sfu(live: Live) -> None:
    await live.consent("creditor")
    judge, _ = await live.joined("judge-account")
    _, c = await live.joined("creditor")
    creditor_seat = live.outbox.presence()[-1]["seats"]["creditor"]
    assert creditor_seat["status"]["in_lobby"] is True

    moderation = await live.controls.admit(judge, Seat.CREDITOR)
    assert moderation["admitted"] == ["creditor"]
    assert live.outbox.presence()[-1]["seats"]["creditor"]["status"]["in_lobby"] is False

    moderation = await live.controls.caucus(judge, Caucus.DETENTION)
    assert moderation["caucus"] == "detention"
    assert live.outbox.presence()[-1]["seats"]["creditor"]["status"]["on_hold"] is True
    assert live.media.routes[-1][2].caucus is Caucus.DETENTION
    assert live.media.routes[-1][1][Seat.CREDITOR] == c["participant"]

    moderation = await live.controls.caucus(judge, None)
    assert moderation["caucus"] is None
    moderation = await live.controls.mute(judge, Seat.CREDITOR, True)
    assert moderation["muted"] == ["creditor"]
    assert live.outbox.presence()[-1]["seats"]["creditor"]["status"]["muted"] is True
    moderation = await live.controls.lobby(judge, False)
    assert moderation["lobby"] is False
    assert live.outbox.presence()[-1]["moderation"] == moderation


async def test_remove_takes_the_holder_out_and_revokes_its_invite(live: Live) -> None:
    judge, _ = await live.joined("judge")
    officer, o = await live.joined("officer")
    with pytest.raises(NotFound):
        await live.controls.remove(judge, Seat.DEBTOR)
    await live.controls.remove(judge, Seat.OFFICER)
    assert live.outbox.to(officer, "removed") == [
        {"session": live.session_id, "reason": "removed_by_judge"}
    ]
    assert (officer, 0.0) in live.outbox.disconnected
    assert live.outbox.presence()[-1]["seats"]["officer"] is None
    assert o["participant"] in live.media.did("detach")
    [left] = await live.audit(AuditKind.LEFT)
    assert left.data == {"participant": o["participant"], "seats": ["officer"], "reason": "removed"}
    assert len(await live.audit(AuditKind.REMOVED)) == 1
    assert live.gauge("courtlink_participants") == 1
    # The invite it came with no longer opens the session.
    with pytest.raises(InviteRevoked):
        await live.connect("officer")


async def test_end_by_the_judge(live: Live) -> None:
    judge, _ = await live.joined("judge")
    officer, _ = await live.joined("officer")
    with pytest.raises(Forbidden):
        await live.controls.end(officer)
    await live.controls.end(judge)
    assert [e for _, e, _ in live.outbox.published].count("session_ended") == 1
    assert await live.hearing.presence.snapshot(live.session_id) == {}
    assert len(await live.audit(AuditKind.SESSION_ENDED)) == 1


# Media negotiation ----------------------------------------------------------------------------


async def test_answer_candidate_and_restart(live: Live) -> None:
    officer, o = await live.joined("officer")
    p = o["participant"]
    await live.negotiation.answer(officer, "v=0 answer")
    assert ("answer", live.session_id, p, "v=0 answer") in live.media.calls
    held = await live.hearing.presence.holder(live.session_id, p)
    assert held is not None
    assert held.state.connection == "connecting"
    await live.negotiation.candidate(officer, {"candidate": "candidate:1 1 udp 1 ::1 9 typ host"})
    assert live.media.calls[-1][0] == "candidate"

    await live.negotiation.restart(officer)
    offers = live.outbox.to(officer, "media.offer")
    assert [o["sdp"] for o in offers] == [f"offer for {p}", f"again for {p}"]
    assert offers[-1]["ice_transport_policy"] == "relay"
    seat = live.outbox.presence()[-1]["seats"]["officer"]
    assert seat["state"]["connection"] == "reconnecting"


async def test_negotiation_needs_a_seat(live: Live) -> None:
    officer = await live.connect("officer")
    with pytest.raises(Conflict):
        await live.negotiation.answer(officer, "v=0")
    with pytest.raises(Conflict):
        await live.negotiation.restart(officer)
    assert live.media.calls == []


async def test_media_events_reach_presence_and_the_participant(live: Live) -> None:
    officer, o = await live.joined("officer")
    p = o["participant"]
    assert live.media.listener is not None
    await live.media.listener(live.session_id, p, "state", {"state": "connected"})
    seat = live.outbox.presence()[-1]["seats"]["officer"]
    assert seat["state"]["connection"] == "connected"
    assert live.outbox.to(officer, "media.state") == []
    await live.media.listener(live.session_id, p, "state", {"state": "failed"})
    assert live.outbox.to(officer, "media.state") == [{"state": "failed"}]
    report = {"participants": {p: {"rtt": 0.01}}}
    await live.media.listener(live.session_id, p, "quality", report)
    assert live.outbox.published[-1] == (live.session_id, "media.quality", report)
    # A participant no longer seated: nothing to tell.
    published = len(live.outbox.published)
    await live.media.listener(live.session_id, "gone", "state", {"state": "failed"})
    assert len(live.outbox.published) == published
