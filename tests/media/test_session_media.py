"""A four-party session end to end: ``courtlink serve`` in a subprocess, four headless
participants (web/participant.py) in this process, each publishing its seat's colour and tone.

The participants send a key frame only every 10 s on their own, so anyone who starts receiving
later (a late joiner, an admitted creditor, the end of a caucus) depends on the SFU asking the
publisher for one (PLI). Flowing is measured as frame counters rising over a 2 s window.

One session serves the whole module, in order: lobby, late joiner, the full mesh, the server's
threads and metrics, caucus, mute, a refused command, and last the removal of the creditor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import socketio

from courtlink.bench.participant import Participant
from courtlink.errors import NotAuthenticated
from tests.media.conftest import (
    RawClient,
    Served,
    everyone,
    expect_flows,
    media,
    start_served,
    window,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEATS = ("judge", "officer", "debtor", "creditor")
LATE_JOINER = "debtor"
LATE_BY = 3.0  # seconds
KEYFRAME_INTERVAL = 10.0  # seconds: without PLI a late joiner would wait up to this long


@dataclass
class Court:
    served: Served
    parties: dict[str, Participant]
    tasks: dict[str, asyncio.Task[dict[str, Any]]]

    @property
    def judge(self) -> Participant:
        return self.parties["judge"]

    def presence_seat(self, seat: str) -> Any:
        return self.judge.presence["seats"][seat]

    async def admit_creditor(self) -> None:
        ack = await self.judge.command("admit", {"seat": "creditor"})
        assert ack["ok"], ack


async def wait_until(predicate: Any, what: str, within: float = 20.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def court(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Court]:
    served = start_served(tmp_path_factory.mktemp("session") / "var")
    parties = {
        seat: Participant(
            served.invites[seat], consent=True, keyframe_interval=KEYFRAME_INTERVAL, ssl=False
        )
        for seat in SEATS
    }
    tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}
    try:
        for seat in SEATS:
            if seat != LATE_JOINER:
                tasks[seat] = asyncio.create_task(parties[seat].run(600))
        await asyncio.sleep(LATE_BY)
        tasks[LATE_JOINER] = asyncio.create_task(parties[LATE_JOINER].run(600))
        took = await wait_until(
            lambda: (
                all(p.peer_state == "connected" for p in parties.values())
                or any(t.done() for t in tasks.values())
            ),
            "four connected participants",
        )
        for seat, task in tasks.items():
            if task.done():
                pytest.fail(f"{seat} stopped: {task.result()['stopped']}")
        print(f"four participants connected {took:.1f}s after the late joiner started")
        yield Court(served, parties, tasks)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        served.stop()


@pytest.mark.timeout(60)
async def test_lobby_holds_the_creditor_apart_until_admitted(court: Court) -> None:
    assert court.presence_seat("creditor")["status"]["in_lobby"] is True

    def lobby(rx: str, src: str) -> tuple[bool, bool]:
        flows = "creditor" not in (rx, src)
        return flows, flows

    await expect_flows(court.parties, lobby, what="lobby on, creditor waiting")
    creditor = court.parties["creditor"].report()["slots"]
    assert all(s["video_frames"] == 0 and s["audio_frames"] == 0 for s in creditor.values())

    admitted_at = time.monotonic()
    await court.admit_creditor()
    took = await wait_until(
        lambda: all(
            (p.report()["slots"].get(other) or {}).get("video_frames", 0) > 0
            for seat, p in court.parties.items()
            for other in SEATS
            if other != seat and "creditor" in (seat, other)
        ),
        "the creditor's first frames both ways",
        within=KEYFRAME_INTERVAL,
    )
    print(f"creditor admitted: first frames both ways after {took:.2f}s")
    assert time.monotonic() - admitted_at < 5
    await expect_flows(court.parties, everyone, what="creditor admitted")
    assert court.presence_seat("creditor")["status"]["in_lobby"] is False


async def test_late_joiner_gets_its_first_frames_by_pli(court: Court) -> None:
    late = court.parties[LATE_JOINER].report()["slots"]
    firsts = {seat: late[seat]["first_video_at"] for seat in ("judge", "officer")}
    print(f"{LATE_JOINER} joined {LATE_BY}s late; first frames after joining: {firsts}")
    for seat, first in firsts.items():
        assert first is not None, f"{LATE_JOINER} never got {seat}'s video"
        # Well under the 7 s it would wait for the publisher's own next key frame.
        assert first < 4.0, f"{LATE_JOINER} waited {first}s for {seat}'s first frame"


@pytest.mark.timeout(60)
async def test_each_party_sees_and_hears_the_other_three(court: Court) -> None:
    await court.admit_creditor()
    await expect_flows(court.parties, everyone, what="full mesh")
    for rx, party in court.parties.items():
        slots = party.report()["slots"]
        got = {src: (slots[src]["seen"], slots[src]["heard"]) for src in SEATS if src != rx}
        print(f"{rx} sees/hears {got}")
        assert sorted(slots) == sorted(s for s in SEATS if s != rx)
        for src, (seen, heard) in got.items():
            assert seen == src, f"{rx}'s {src} slot shows {seen}'s colour ({slots[src]['rgb']})"
            assert heard == src, f"{rx}'s {src} slot plays {heard}'s tone ({slots[src]['tone_hz']})"


@pytest.mark.timeout(60)
async def test_server_forwards_without_codecs_in_few_threads(court: Court) -> None:
    await court.admit_creditor()
    await expect_flows(court.parties, everyone, what="full mesh, checking the server")
    threads = court.served.threads()
    metrics = await court.served.ametrics()
    print(f"server pid {court.served.pid}: {len(threads)} threads {threads}")
    print(
        "server media: "
        + ", ".join(
            f"{kind} {media(metrics, kind):.0f}"
            for kind in ("routers", "peers", "consumers", "codec_attempts")
        )
    )
    assert not [t for t in threads if "decoder" in t.lower() or "encoder" in t.lower()]
    assert len(threads) <= 12
    assert media(metrics, "codec_attempts") == 0
    assert media(metrics, "routers") == 1
    assert media(metrics, "peers") == 4
    assert media(metrics, "consumers") == 24  # 4 participants x 3 seats x audio and video


@pytest.mark.timeout(60)
async def test_caucus_with_the_creditor_holds_the_detention_side_both_ways(court: Court) -> None:
    await court.admit_creditor()
    ack = await court.judge.command("caucus", {"side": "creditor"})
    assert ack["ok"], ack
    assert ack["data"]["moderation"]["caucus"] == "creditor"
    inside = {"judge", "creditor"}

    def caucus(rx: str, src: str) -> tuple[bool, bool]:
        flows = (rx in inside) == (src in inside)
        return flows, flows

    await expect_flows(court.parties, caucus, what="caucus with the creditor")
    for seat in ("officer", "debtor"):
        assert court.presence_seat(seat)["status"]["on_hold"] is True
    assert court.presence_seat("creditor")["status"]["on_hold"] is False

    ack = await court.judge.command("caucus", {"side": None})
    assert ack["ok"], ack
    await expect_flows(court.parties, everyone, what="caucus ended")
    assert not any(court.presence_seat(s)["status"]["on_hold"] for s in SEATS if s != "judge")


@pytest.mark.timeout(60)
async def test_muting_the_officer_stops_only_its_audio(court: Court) -> None:
    await court.admit_creditor()
    ack = await court.judge.command("mute", {"seat": "officer", "muted": True})
    assert ack["ok"], ack

    def muted(rx: str, src: str) -> tuple[bool, bool]:
        return True, src != "officer"

    await expect_flows(court.parties, muted, what="officer muted")
    assert court.presence_seat("officer")["status"]["muted"] is True

    ack = await court.judge.command("mute", {"seat": "officer", "muted": False})
    assert ack["ok"], ack
    await expect_flows(court.parties, everyone, what="officer unmuted")
    assert court.presence_seat("officer")["status"]["muted"] is False


@pytest.mark.timeout(60)
async def test_only_the_judge_may_call_a_caucus(court: Court) -> None:
    await court.admit_creditor()
    before = court.judge.presence["moderation"]
    for seat in ("officer", "creditor"):
        ack = await court.parties[seat].command("caucus", {"side": "creditor"})
        print(f"{seat} asks for a caucus: {ack}")
        assert ack["ok"] is False
        assert ack["error"]["code"] == "forbidden"
    presence = await court.judge.command("presence")
    assert presence["data"]["moderation"] == before
    assert presence["data"]["moderation"]["caucus"] is None
    await expect_flows(court.parties, everyone, what="after the refused caucus", within=0)


@pytest.mark.timeout(60)
async def test_removing_the_creditor_ends_its_call_and_its_invite(court: Court) -> None:
    await court.admit_creditor()
    ack = await court.judge.command("remove", {"seat": "creditor"})
    assert ack["ok"], ack
    report = await asyncio.wait_for(court.tasks["creditor"], 10)
    print(f"creditor stopped: {report['stopped']}")
    assert report["stopped"] == "removed"
    await wait_until(lambda: court.presence_seat("creditor") is None, "an empty creditor seat", 5)

    rest = {seat: p for seat, p in court.parties.items() if seat != "creditor"}
    await expect_flows(rest, everyone, what="the three left")
    gone = await window(court.parties, 1.0)
    assert all(gone[(rx, "creditor")] == (0, 0) for rx in rest)

    # The invite no longer works: neither the link nor the Socket.IO connection.
    again = Participant(court.served.invites["creditor"], consent=True, ssl=False)
    with pytest.raises(NotAuthenticated):
        await again.run(5)
    client = RawClient(court.served.url, court.served.invites["creditor"])
    with pytest.raises(socketio.exceptions.ConnectionError) as refused:
        await client.connect()
    await client.close()
    print(f"the creditor's invite again: {refused.value}, {client.refusals}")
    assert [r["data"]["code"] for r in client.refusals] == ["invite_revoked"]
