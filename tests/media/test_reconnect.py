"""A participant whose network drops for 10 s mid-call comes back into the same seat and slots.

For real: the creditor runs ``courtlink participant`` inside a network namespace joined to this
host by a veth pair; the server (``courtlink serve``, ICE bound to the host end) and the other
three participants run outside it. Setting the host end down cuts the creditor's media and
signaling alike; the participant's watchdog asks for a new connection after 3 s of silence, and
that request gets through once the link is up again.

Also a unit test of what made video come back at all: a Consumer that sees more packets missing
upstream than NACK can recover starts again on a key frame instead of leaving the subscriber a
hole (aiortc's jitter buffer waits hundreds of packets for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from courtlink.bench.participant import Participant
from courtlink.media.consumer import (
    HISTORY_SIZE,
    MAX_GAP,
    RECEIVER_WINDOW,
    RESEND_FLOOR,
    RESEND_HOLD,
    RESEND_MAX,
    RESEND_SHARE,
    SENT_WINDOW,
    Consumer,
)
from courtlink.media.rtp import parse_header, write_packet
from tests.conftest import missing
from tests.media.conftest import (
    COURTLINK,
    MIN_AUDIO,
    MIN_VIDEO,
    Served,
    expect_flows,
)

CUT_SECONDS = 10.0
BEFORE_CUT = 5.0  # seconds after the creditor joined
AFTER_UP = 5.0  # the creditor's run ends this long after the link is up: the limit we test
FPS, AUDIO_FPS = 15, 50  # the test pattern's frame rate; Opus frames of 20 ms


# The network namespace ------------------------------------------------------------------------


@dataclass
class Netns:
    name: str
    host_if: str
    host_ip: str
    inner_ip: str

    def link(self, state: str) -> None:
        subprocess.run(["ip", "link", "set", self.host_if, state], check=True, timeout=10)


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


@pytest.fixture
def netns() -> Iterator[Netns]:
    if shutil.which("ip") is None:
        missing("network namespaces", "the `ip` command (iproute2) is not installed")
    tag = f"{os.getpid() % 100000}"
    used = _ip("-o", "-4", "addr").stdout
    subnet = next(
        (n for n in random.sample(range(20, 250), 230) if f"10.231.{n}." not in used), None
    )
    if subnet is None:
        missing("network namespaces", "no free 10.231.x.0/24 subnet")
    ns = Netns(f"clrc{tag}", f"clh{tag}", f"10.231.{subnet}.1", f"10.231.{subnet}.2")
    inner_if = f"cln{tag}"
    made = _ip("netns", "add", ns.name)
    if made.returncode != 0:
        missing("network namespaces", f"`ip netns add` failed: {made.stderr.strip()}")
    try:
        for args in (
            ("link", "add", ns.host_if, "type", "veth", "peer", "name", inner_if),
            ("link", "set", inner_if, "netns", ns.name),
            ("addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if),
            ("link", "set", ns.host_if, "up"),
            ("-n", ns.name, "addr", "add", f"{ns.inner_ip}/24", "dev", inner_if),
            ("-n", ns.name, "link", "set", inner_if, "up"),
            ("-n", ns.name, "link", "set", "lo", "up"),
        ):
            step = _ip(*args)
            if step.returncode != 0:
                missing("network namespaces", f"`ip {' '.join(args)}`: {step.stderr.strip()}")
        yield ns
    finally:
        _ip("netns", "del", ns.name)  # takes the namespace's end of the pair, and so the pair
        _ip("link", "del", ns.host_if)


# The participant in the namespace ---------------------------------------------------------------


@dataclass
class Outside:
    """``courtlink participant --json`` in the namespace: its lines, stamped on arrival."""

    proc: asyncio.subprocess.Process
    lines: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    stderr: bytes = b""

    def events(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, line["data"]) for t, line in self.lines if line.get("event") == kind]

    def report(self) -> dict[str, Any] | None:
        return next((line for _, line in reversed(self.lines) if "event" not in line), None)

    def peer_connected_after(self, moment: float) -> float | None:
        return next(
            (t for t, d in self.events("peer") if t > moment and d["state"] == "connected"), None
        )

    async def read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.append((time.monotonic(), json.loads(raw)))


async def start_outside(ns: Netns, invite: str, seconds: float) -> tuple[Outside, asyncio.Task]:
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        ns.name,
        str(COURTLINK),
        "participant",
        "--invite",
        invite,
        "--consent",
        "--json",
        "--keyframe-interval",
        "10",
        "--seconds",
        f"{seconds:.2f}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    outside = Outside(proc)
    return outside, asyncio.create_task(outside.read())


def dump(outside: Outside, up_at: float) -> None:
    for t, line in outside.lines:
        if line.get("event") not in (None, "presence"):
            print(
                f"  creditor {t - up_at:+.2f}s after link up: {line['event']} {line['data']}"[:160]
            )


async def wait_for(predicate: Any, what: str, within: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic()


def from_creditor(parties: dict[str, Participant]) -> dict[str, tuple[int, int]]:
    counts = {}
    for seat, party in parties.items():
        slot = party.report()["slots"].get("creditor") or {}
        counts[seat] = (slot.get("video_frames", 0), slot.get("audio_frames", 0))
    return counts


@pytest.mark.timeout(90)
async def test_a_participant_cut_off_for_ten_seconds_comes_back_within_five(
    netns: Netns, served: Callable[..., Served]
) -> None:
    server = served(
        host="0.0.0.0",  # the namespace reaches the server over the veth pair
        public_host=netns.host_ip,
        env={"COURTLINK__MEDIA__HOST_ADDRESS": netns.host_ip},
    )
    parties = {
        seat: Participant(server.invites[seat], keyframe_interval=10, ssl=False)
        for seat in ("judge", "officer", "debtor")
    }
    parties["debtor"].consent = True
    seen_by_judge: list[tuple[float, Any]] = []  # the creditor's seat in the judge's presence

    def on_judge_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "presence":
            seen_by_judge.append((time.monotonic(), data["seats"]["creditor"]))

    parties["judge"].on_event = on_judge_event
    tasks = [asyncio.create_task(p.run(120)) for p in parties.values()]
    outside: Outside | None = None
    reader: asyncio.Task | None = None
    up_at = float("inf")
    try:
        await wait_for(lambda: parties["judge"].participant_id is not None, "the judge", 20)
        assert (await parties["judge"].command("admit", {"seat": "creditor"}))["ok"]
        # The run's clock starts when it connects, a moment before "joined": it ends at most
        # AFTER_UP seconds after the link is up again.
        outside, reader = await start_outside(
            netns, server.invites["creditor"], BEFORE_CUT + CUT_SECONDS + AFTER_UP
        )
        joined_at = await wait_for(lambda: outside.events("joined"), "the creditor to join", 30)
        joined = outside.events("joined")[0][1]
        first_up = await wait_for(
            lambda: outside.peer_connected_after(0) is not None, "the creditor's media", 10
        )
        await expect_flows(parties, lambda rx, src: (True, True), what="before the cut", within=3)
        counts = from_creditor(parties)
        await asyncio.sleep(1)
        assert all(from_creditor(parties)[s][0] > counts[s][0] for s in parties), (
            "the creditor's video does not reach the others before the cut"
        )
        assert time.monotonic() < joined_at + BEFORE_CUT, "too slow to get going before the cut"
        await asyncio.sleep(joined_at + BEFORE_CUT - time.monotonic())

        cut_at = time.monotonic()
        netns.link("down")
        await asyncio.sleep(CUT_SECONDS / 2)
        during = from_creditor(parties)
        await asyncio.sleep(CUT_SECONDS - (time.monotonic() - cut_at))
        still = from_creditor(parties)
        assert still == during, f"media from the creditor during the cut: {during} -> {still}"
        netns.link("up")
        up_at = time.monotonic()
        at_up = from_creditor(parties)

        # Media from the creditor: each of the others decodes its video and audio again.
        resumed: dict[str, float] = {}

        def all_resumed() -> bool:
            now = from_creditor(parties)
            for seat in parties:
                if seat not in resumed and all(now[seat][k] > at_up[seat][k] for k in (0, 1)):
                    resumed[seat] = time.monotonic() - up_at
            return len(resumed) == len(parties)

        await wait_for(all_resumed, "media from the creditor after the cut", AFTER_UP)
        # To the creditor: its new peer connection is up (the watchdog asked for it).
        await wait_for(
            lambda: outside.peer_connected_after(up_at) is not None,
            "the creditor's new peer connection",
            AFTER_UP,
        )
        reconnected = outside.peer_connected_after(up_at)
        assert reconnected is not None

        def same_seat_connected() -> bool:
            held = parties["judge"].presence["seats"]["creditor"]
            return (
                held is not None
                and held["participant"] == joined["participant"]
                and held["state"]["connection"] == "connected"
            )

        # Others see it back in its seat: the same participant, connected.
        seated_at = await wait_for(same_seat_connected, "the creditor back in its seat", 2)
        # And media from the creditor flows over the new connection, before its run ends.
        at_reconnect = from_creditor(parties)

        def flowing_again() -> bool:
            now = from_creditor(parties)
            return all(
                now[s][0] - at_reconnect[s][0] >= MIN_VIDEO
                and now[s][1] - at_reconnect[s][1] >= MIN_AUDIO
                for s in parties
            )

        flowing_at = await wait_for(
            flowing_again,
            "media from the creditor over its new connection",
            max(0.0, up_at + AFTER_UP - time.monotonic()),
        )

        await asyncio.wait_for(outside.proc.wait(), AFTER_UP + 15)
        await reader
        ended_at = outside.lines[-1][0]
        report = outside.report()
        assert outside.proc.stderr is not None
        outside.stderr = await outside.proc.stderr.read()
    except BaseException:
        if outside is not None:
            dump(outside, up_at)
        print(f"server log:\n{server.log_tail(30)}")
        raise
    finally:
        if outside is not None and outside.proc.returncode is None:
            outside.proc.kill()
            await outside.proc.wait()
        if reader is not None:
            reader.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.stop()  # before the namespace goes

    restarts = outside.events("restart")
    dump(outside, up_at)
    for t, held in seen_by_judge:
        if t > cut_at:
            state = None if held is None else (held["participant"], held["state"]["connection"])
            print(f"  judge {t - up_at:+.2f}s after link up: creditor seat {state}")
    print(
        "server log:\n"
        + "\n".join(
            line for line in server.log_tail(200).splitlines() if "aiohttp.access" not in line
        )
    )
    print(
        f"cut {CUT_SECONDS:.0f}s: restart asked {[round(t - cut_at, 1) for t, _ in restarts]}s "
        f"into the cut; after the link came up, media from the creditor resumed at "
        + ", ".join(f"{s} {t:.2f}s" for s, t in sorted(resumed.items()))
        + f"; the creditor's new peer connection was up at {reconnected - up_at:.2f}s, "
        f"the judge saw it connected in its seat at {seated_at - up_at:.2f}s; "
        f"media from it flowed over the new connection at {flowing_at - up_at:.2f}s; "
        f"its run ended {ended_at - up_at:.1f}s after the link came up"
    )
    assert report is not None, outside.stderr.decode(errors="replace")[-2000:]
    assert report["stopped"] is None, report["stopped"]
    assert restarts, "the watchdog never asked for a new connection"
    assert all(cut_at < t < up_at for t, _ in restarts)
    # The same seat and participant (a new peer connection, not a new join) and the same slots.
    assert report["participant"] == joined["participant"]
    assert report["seats"] == joined["seats"] == ["creditor"]
    assert report["offers"] == 2
    assert sorted(report["slots"]) == ["debtor", "judge", "officer"]
    for seat, slot in report["slots"].items():
        assert (slot["seen"], slot["heard"]) == (seat, seat), slot
        # Everything received before the cut fits in the time between connecting and the cut
        # at the pattern's frame rates; the rest came after the link was up, before the run
        # ended (at most AFTER_UP later).
        before_video = FPS * (cut_at - first_up) + 2
        before_audio = AUDIO_FPS * (cut_at - first_up) + 5
        late_video, late_audio = slot["video_frames"] - before_video, slot["audio_frames"]
        late_audio -= before_audio
        print(f"creditor got from {seat}: >= {late_video:.0f} video, >= {late_audio:.0f} audio")
        assert late_video >= MIN_VIDEO, f"no video from {seat} after the link came up: {slot}"
        assert late_audio >= MIN_AUDIO, f"no audio from {seat} after the link came up: {slot}"
    for seat, seconds in resumed.items():
        assert seconds < AFTER_UP, seat
    assert reconnected - up_at < AFTER_UP
    assert seated_at - up_at < AFTER_UP
    assert flowing_at - up_at < AFTER_UP


# The upstream gap -----------------------------------------------------------------------------


class FakeEgress:
    """Takes the plaintext packets a Consumer sends (media/fastpath.Egress's interface)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, packet: bytes) -> bool:
        self.sent.append(bytes(packet))
        return True


class FakeSender:
    """The few attributes media/wire.py reads from an RTCRtpSender."""

    def __init__(self) -> None:
        self._ssrc = 4242
        self._rtx_ssrc = 4243
        self._RTCRtpSender__rtt: float | None = None  # aiortc's, from receiver reports


class FakeTransceiver:
    def __init__(self) -> None:
        self.sender = FakeSender()
        self.mid = "2"


class FakeProducer:
    def __init__(self) -> None:
        self.consumers: list[Consumer] = []
        self.keyframe_requests = 0

    def want_keyframe(self) -> bool:
        self.keyframe_requests += 1
        return True


def video_slot(seat: str) -> tuple[Consumer, FakeEgress]:
    """A video Consumer, ready, sending into a FakeEgress."""
    consumer = Consumer(seat, "video", FakeTransceiver())  # type: ignore[arg-type]
    consumer.ready = True
    egress = FakeEgress()
    consumer.egress = egress  # type: ignore[assignment]
    return consumer, egress


def forward_seq(consumer: Consumer, seq: int, keyframe: bool = False) -> None:
    """Forward a small VP8-like packet with sequence number ``seq`` (timestamps follow it)."""
    data = write_packet(
        marker=True,
        payload_type=96,
        sequence_number=seq & 0xFFFF,
        timestamp=(seq * 6000) & 0xFFFFFFFF,
        ssrc=99,
        extensions=b"",
        payload=b"\x10\x00",
    )
    header = parse_header(data)
    consumer.forward(header, data[header.payload_start : header.payload_end], b"\0\0\0", keyframe)


async def test_a_gap_beyond_nack_restarts_video_on_a_key_frame() -> None:
    consumer, egress = video_slot("creditor")
    producer = FakeProducer()
    consumer.switch(producer)  # type: ignore[arg-type]
    sent = egress.sent

    async def packet(seq: int, keyframe: bool = False) -> None:
        forward_seq(consumer, seq, keyframe)

    def out_seqs() -> list[int]:
        return [parse_header(p).sequence_number for p in sent]

    await packet(65500, keyframe=True)
    for seq in range(65501, 65520):  # across the 16-bit wrap
        await packet(seq)
    assert len(sent) == 20
    first = out_seqs()[0]
    # A small loss is left to NACK: forwarded at once, the hole kept.
    await packet(65520 + 30)
    assert len(sent) == 21
    assert out_seqs()[-1] == (first + 50) & 0xFFFF
    requests = producer.keyframe_requests
    # More lost than NACK can recover: nothing until a key frame, which is asked for ...
    gap_start = 65550 + MAX_GAP + 2
    await packet(gap_start)
    await packet(gap_start + 1)
    assert len(sent) == 21
    assert producer.keyframe_requests > requests
    # ... and then the sequence goes on a whole receiver window past the last packet sent,
    # because the small loss left a hole that was never repaired: an aiortc subscriber drops
    # everything older at once and starts at the key frame.
    await packet(gap_start + 2, keyframe=True)
    await packet(gap_start + 3)
    after = (first + 51 + RECEIVER_WINDOW) & 0xFFFF
    assert out_seqs()[-2:] == [after, (after + 1) & 0xFFFF]
    # Old packets arriving late (reordering, retransmissions) are not mistaken for a gap.
    await packet(gap_start - 5)
    assert len(sent) == 24
    # The subscriber counts the skipped window lost; the slot's loss counts leave it out (the
    # allocator would take video away for a loss the network never had). Its reports before
    # and after: the hole of 29 is loss (upstream, but the subscriber never got it).
    before = 0x30000 + first + 50
    await consumer.on_feedback("loss", (0.0, before, 29))
    await consumer.on_feedback("loss", (0.9, before + 2 + RECEIVER_WINDOW, 29 + RECEIVER_WINDOW))
    assert consumer.take_loss_counts() == (2, 0)


async def test_a_new_epoch_continues_the_sequence_when_nothing_is_missing() -> None:
    consumer, egress = video_slot("judge")
    first_source, second_source = FakeProducer(), FakeProducer()

    def send(seq: int, keyframe: bool = False) -> None:
        forward_seq(consumer, seq, keyframe)

    consumer.switch(first_source)  # type: ignore[arg-type]
    send(100, keyframe=True)
    send(101)
    send(103)  # 102 lost upstream ...
    send(102)  # ... and recovered (the publisher's retransmission): no hole is left
    consumer.switch(second_source)  # type: ignore[arg-type]
    send(5000, keyframe=True)
    seqs = [parse_header(p).sequence_number for p in egress.sent]
    start = seqs[0]
    assert seqs == [
        start,
        (start + 1) & 0xFFFF,
        (start + 3) & 0xFFFF,
        (start + 2) & 0xFFFF,
        (start + 4) & 0xFFFF,
    ]


async def test_a_window_longer_than_the_payload_history_is_no_hole() -> None:
    """A new epoch looks at RECEIVER_WINDOW sequence numbers, more than the ring keeps
    payloads for: numbers sent but no longer held are not holes (was_sent, not kept)."""
    assert HISTORY_SIZE < RECEIVER_WINDOW <= SENT_WINDOW
    consumer, egress = video_slot("judge")
    consumer.switch(FakeProducer())  # type: ignore[arg-type]
    for i in range(RECEIVER_WINDOW + 10):
        forward_seq(consumer, 7000 + i, keyframe=i == 0)
    last = parse_header(egress.sent[-1]).sequence_number
    oldest = (last - RECEIVER_WINDOW + 1) & 0xFFFF
    assert consumer.kept(oldest) is None
    assert consumer.was_sent(oldest)
    consumer.switch(FakeProducer())  # type: ignore[arg-type]
    forward_seq(consumer, 100, keyframe=True)
    assert parse_header(egress.sent[-1]).sequence_number == (last + 1) & 0xFFFF


async def test_only_holes_since_the_receiver_started_afresh_cause_a_jump() -> None:
    consumer, egress = video_slot("officer")

    def send(seq: int, keyframe: bool = False) -> int:
        forward_seq(consumer, seq, keyframe)
        return parse_header(egress.sent[-1]).sequence_number

    consumer.switch(FakeProducer())  # type: ignore[arg-type]
    start = send(10, keyframe=True)
    send(12)  # 11 never comes: a hole
    consumer.switch(FakeProducer())  # type: ignore[arg-type]
    jumped = send(900, keyframe=True)
    assert jumped == (start + 3 + RECEIVER_WINDOW) & 0xFFFF
    send(901)
    # Another source soon after: the numbers skipped by the jump are not holes to the
    # receiver (it started afresh at the key frame), so the sequence simply continues.
    consumer.switch(FakeProducer())  # type: ignore[arg-type]
    assert send(4000, keyframe=True) == (jumped + 2) & 0xFFFF


def test_a_packet_nacked_again_within_a_round_trip_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A receiver that does not know the round trip asks again every 100 ms; on a phone's link
    (a second's round trip) those copies would fill the link the media needs."""
    monkeypatch.setattr("courtlink.media.consumer.RESEND_FLOOR", 100)  # no budget here
    now = [100.0]
    consumer, egress = video_slot("judge")
    consumer.clock = lambda: now[0]
    consumer.sender._RTCRtpSender__rtt = 0.5  # type: ignore[attr-defined]
    for seq in range(10, 14):
        forward_seq(consumer, seq, keyframe=seq == 10)
    sent = list(egress.sent)
    first = parse_header(sent[1]).sequence_number
    egress.sent.clear()
    consumer.retransmit([first, first + 1])
    assert len(egress.sent) == 2
    for at in (100.1, 100.3, 100.55):  # within 1.2 round trips: held
        now[0] = at
        consumer.retransmit([first])
    assert len(egress.sent) == 2
    assert consumer.resend_held == 3
    now[0] = 100.61
    consumer.retransmit([first])
    assert len(egress.sent) == 3
    # At most RESEND_MAX copies of one packet, however late it is asked for again.
    for at in (101.5, 102.5, 103.5, 104.5):
        now[0] = at
        consumer.retransmit([first])
    assert len(egress.sent) == 1 + RESEND_MAX  # ``first`` RESEND_MAX times, ``first + 1`` once
    assert consumer.retransmitted == 1 + RESEND_MAX


def test_without_a_round_trip_a_resent_packet_is_held_for_resend_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("courtlink.media.consumer.RESEND_FLOOR", 100)  # no budget here
    now = [5.0]
    consumer, egress = video_slot("judge")
    consumer.clock = lambda: now[0]
    forward_seq(consumer, 20, keyframe=True)
    seq = parse_header(egress.sent[0]).sequence_number
    egress.sent.clear()
    consumer.retransmit([seq])
    now[0] += RESEND_HOLD - 0.01
    consumer.retransmit([seq])
    assert len(egress.sent) == 1
    now[0] += 0.02
    consumer.retransmit([seq])
    assert len(egress.sent) == 2


def test_retransmissions_in_a_second_are_at_most_half_what_was_forwarded() -> None:
    """On a congested link resending whatever is asked for feeds the congestion: a second's
    retransmissions are capped at RESEND_SHARE of the packets forwarded (at least
    RESEND_FLOOR)."""
    now = [10.0]
    consumer, egress = video_slot("judge")
    consumer.clock = lambda: now[0]
    consumer.retransmit([])  # the second the budget counts from
    for seq in range(100, 160):  # 60 packets in that second
        forward_seq(consumer, seq, keyframe=seq == 100)
    sent = [parse_header(p).sequence_number for p in egress.sent]
    egress.sent.clear()
    now[0] = 11.0
    consumer.retransmit(sent)
    assert len(egress.sent) == int(60 * RESEND_SHARE)
    held = consumer.resend_held
    assert held == 60 - int(60 * RESEND_SHARE)
    # The next second has a budget again (from what was forwarded since: nothing, so the floor).
    now[0] = 12.0
    consumer.retransmit(sent[-RESEND_FLOOR - 5 :])
    assert len(egress.sent) == int(60 * RESEND_SHARE) + RESEND_FLOOR


def test_a_paused_slot_resends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("courtlink.media.consumer.RESEND_FLOOR", 100)  # no budget here
    consumer, egress = video_slot("judge")
    for seq in range(30, 34):
        forward_seq(consumer, seq, keyframe=seq == 30)
    sent = [parse_header(p).sequence_number for p in egress.sent]
    egress.sent.clear()
    consumer.paused = True
    consumer.retransmit(sent)
    assert egress.sent == []
    assert consumer.resend_held == len(sent)
    consumer.paused = False
    consumer.retransmit(sent)
    assert len(egress.sent) == len(sent)


async def test_receiver_reports_count_packets_expected_and_lost_between_them() -> None:
    """Each receiver report against the one before: packets expected (its extended highest
    sequence number) and lost (its cumulative loss); taken once; a report that goes back or
    jumps more than a 16-bit wrap starts the count again."""
    consumer, _ = video_slot("judge")
    await consumer.on_feedback("loss", (0.0, 70_000, 3))  # the first: no interval yet
    assert consumer.take_loss_counts() == (0, 0)
    assert (consumer.loss, consumer.loss_at is not None) == (0.0, True)
    await consumer.on_feedback("loss", (0.1, 70_040, 7))
    await consumer.on_feedback("loss", (0.0, 70_100, 7))
    assert consumer.take_loss_counts() == (100, 4)
    assert consumer.take_loss_counts() == (0, 0)
    await consumer.on_feedback("loss", (0.0, 70_090, 7))  # older than the last: no interval
    await consumer.on_feedback("loss", (0.0, 70_120, 6))  # a late packet arrived after all
    assert consumer.take_loss_counts() == (30, -1)
    await consumer.on_feedback("loss", (0.0, 200_000, 9))  # a jump: start again
    assert consumer.take_loss_counts() == (0, 0)
