"""media._forward's receiving half (media/_receive.c): Source.receive, the per-packet path of a
Producer, against the same packets taken apart in Python and handed to Slot.forward one by one;
RTX unwrapping, statistics, NACK gaps, key frames and refusals."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import pytest

from courtlink.media import _forward, wire
from courtlink.media.consumer import Consumer, _extension_prefix
from courtlink.media.producer import NACK_HOLD, Producer
from courtlink.media.recording.depacketize import tapped
from courtlink.media.rtp import (
    EXT_ABS_SEND_TIME,
    EXT_AUDIO_LEVEL,
    build_extensions,
    parse_header,
    write_packet,
)
from tests.media.test_fastpath import session_pair
from tests.media.test_reconnect import FakeEgress, FakeProducer, FakeTransceiver

MEDIA_PT, RTX_PT, SSRC = 96, 97, 0x5150
KEY = b"\x10\x00\x00\x9d\x01\x2a"  # VP8: start of partition 0, P bit clear (a key frame)
DELTA = b"\x10\x01\x00"  # VP8: P bit set (a delta frame)


class FakeReceiver:
    """What media/wire.py reads of an RTCRtpReceiver for statistics."""

    def __init__(self) -> None:
        self._RTCRtpReceiver__remote_streams: dict[int, Any] = {}


@pytest.fixture
def rtcp(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The NACKs and PLIs the producer decides to send, recorded instead of sent."""
    sent: dict[str, list[Any]] = {"nack": [], "pli": []}

    async def nack(receiver: Any, ssrc: int, lost: list[int]) -> None:
        sent["nack"].append((ssrc, lost))

    async def pli(receiver: Any, ssrc: int) -> None:
        sent["pli"].append(ssrc)

    monkeypatch.setattr(wire, "send_nack", nack)
    monkeypatch.setattr(wire, "send_pli", pli)
    return sent


def packet(
    seq: int,
    payload: bytes,
    *,
    pt: int = MEDIA_PT,
    ssrc: int = SSRC,
    marker: bool = False,
    level: int | None = None,
    padding: int = 0,
) -> bytes:
    extensions = build_extensions(b"1", audio_level=level) if level is not None else b""
    data = write_packet(
        marker=marker,
        payload_type=pt,
        sequence_number=seq & 0xFFFF,
        timestamp=(seq * 3000) & 0xFFFFFFFF,
        ssrc=ssrc,
        extensions=extensions,
        payload=payload + bytes(padding - 1) + bytes([padding]) if padding else payload,
    )
    if padding:
        data = bytes([data[0] | 0x20]) + data[1:]
    return data


def rtx(seq: int, original: int, payload: bytes) -> bytes:
    """The publisher's retransmission of ``original``: its own SSRC, sequence and type."""
    return packet(seq, original.to_bytes(2, "big") + payload, pt=RTX_PT, ssrc=SSRC + 1)


def slot(kind: str, producer: Any, egress: Any) -> Consumer:
    made = Consumer("judge", kind, FakeTransceiver())  # type: ignore[arg-type]
    made.ready = True
    made.egress = egress
    made.next_seq = 1000
    element, size = (EXT_ABS_SEND_TIME, 3) if kind == "video" else (EXT_AUDIO_LEVEL, 1)
    made._prefix, made._pad = _extension_prefix(b"2", element, size)
    made.switch(producer)
    return made


def producer(kind: str) -> Producer:
    made = Producer("debtor", kind, FakeReceiver())  # type: ignore[arg-type]
    made.configure("vp8", {RTX_PT: MEDIA_PT})
    return made


def without_send_time(data: bytes) -> bytes:
    """A forwarded video packet with its abs-send-time (which is now) zeroed."""
    # The fixed header, the extension block's header, the MID element ("2"), then this one.
    assert data[18] == (EXT_ABS_SEND_TIME << 4) | 2
    return data[:19] + b"\0\0\0" + data[22:]


@pytest.mark.parametrize("kind", ["video", "audio"])
async def test_receive_forwards_like_slot_forward_fed_by_hand(
    kind: str, rtcp: dict[str, list[Any]]
) -> None:
    source = producer(kind)
    egresses = [FakeEgress(), FakeEgress()]
    slots = [slot(kind, source, egress) for egress in egresses]
    twin_egress, twin_source = FakeEgress(), FakeProducer()
    twin = slot(kind, twin_source, twin_egress)
    seqs = [*range(10), 11, 10, 12, 12]  # reordered, then a duplicate
    for seq in seqs:
        payload = (KEY if seq == 0 else DELTA) + bytes([seq]) * (40 + seq)
        data = packet(seq, payload, marker=seq % 3 == 0, level=0x80 | seq, padding=seq % 4)
        before = time.time()
        assert source.receive(data) == 2
        header = parse_header(data)
        if kind == "video":
            value = b"\0\0\0"
            sent_at = parse_header(egresses[0].sent[-1]).abs_send_time
            assert sent_at is not None
            # The arrival's abs-send-time (6.18 fixed point seconds, modulo 64 s), read after
            # ``before``; one tick (3.8 µs) of slack: time.time() is the same clock rounded to
            # a float, which can round up across a tick (CI saw -1 tick once).
            assert (sent_at - int(before * 262144) + 1) & 0xFFFFFF < 262144 // 4
        else:
            value = bytes([0x80 | seq])
        body = data[header.payload_start : header.payload_end]
        assert twin.forward(header, body, value, seq == 0) == 1
    assert len(egresses[0].sent) == len(egresses[1].sent) == len(seqs)
    shift = (slots[0].ts_offset - twin.ts_offset) & 0xFFFFFFFF
    for got, other, want in zip(egresses[0].sent, egresses[1].sent, twin_egress.sent, strict=True):
        if kind == "video":
            assert parse_header(got).abs_send_time == parse_header(other).abs_send_time
            got, want = without_send_time(got), without_send_time(want)
        ts = (int.from_bytes(want[4:8], "big") + shift) & 0xFFFFFFFF
        assert got == want[:4] + ts.to_bytes(4, "big") + want[8:]
    assert source.packets == len(seqs)
    assert source.bytes == sum(len(KEY if s == 0 else DELTA) + 40 + s for s in seqs)
    assert source.ssrc == SSRC
    assert not rtcp["nack"]  # 10 and 11 were only reordered


async def test_a_new_ssrc_gets_fresh_statistics_the_receiver_reads(
    rtcp: dict[str, list[Any]],
) -> None:
    source = producer("audio")
    streams = source.receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    for seq in (1, 2, 4):
        source.receive(packet(seq, b"opus"))
    stats = source.stats
    assert stats is not None
    assert streams == {SSRC: stats}
    assert (stats.base_seq, stats.max_seq, stats.packets_received, stats.packets_lost) == (
        1,
        4,
        3,
        1,
    )
    assert source.loss_since_last() == pytest.approx(0.25)
    assert source.loss_since_last() == 0.0
    # The publisher restarted its stream under a new SSRC.
    source.receive(packet(900, b"opus", ssrc=SSRC + 7))
    assert source.ssrc == SSRC + 7
    assert source.stats is not stats
    assert streams[SSRC + 7] is source.stats
    assert source.stats.packets_received == 1
    assert source.loss_since_last() == 0.0


async def test_retransmissions_are_unwrapped_and_close_the_gap(
    rtcp: dict[str, list[Any]],
) -> None:
    source = producer("video")
    now = [50.0]
    source.clock = lambda: now[0]
    egress = FakeEgress()
    made = slot("video", source, egress)
    source.receive(packet(0, KEY))
    source.receive(packet(1, DELTA))
    source.receive(packet(4, DELTA))  # 2 and 3 lost
    await asyncio.sleep(0)
    assert rtcp["nack"] == [(SSRC, [2, 3])]
    assert source.nacks is not None
    assert source.nacks.missing == {2, 3}
    assert source.receive(rtx(500, 3, DELTA + b"three")) == 1
    assert source.nacks.missing == {2}
    recovered = parse_header(egress.sent[-1])
    assert (recovered.payload_type, recovered.ssrc) == (MEDIA_PT, made._ssrc)
    assert recovered.sequence_number == (3 + (made.seq_offset or 0)) & 0xFFFF
    assert egress.sent[-1].endswith(DELTA + b"three")
    # Only the statistics of the media SSRC count, and the recovered packet is one of them.
    assert source.stats is not None
    assert source.stats.packets_received == 4
    # A padding-only probe on the RTX stream carries no packet.
    assert source.receive(rtx(501, 2, b"")) == 0
    assert source.nacks.missing == {2}
    # relay_nack asks again only for what is still missing here, and not within NACK_HOLD.
    source.relay_nack([2, 3])
    await asyncio.sleep(0)
    assert len(rtcp["nack"]) == 1
    now[0] += NACK_HOLD
    source.relay_nack([2, 3])
    await asyncio.sleep(0)
    assert rtcp["nack"][-1] == (SSRC, [2])


async def test_a_publisher_is_asked_for_a_packet_again_only_after_a_round_trip(
    rtcp: dict[str, list[Any]],
) -> None:
    """Three browsers asking every 100 ms for a packet lost on a weak publisher's uplink made
    its downlink carry 80 NACKs a second: a missing packet is asked for once per 1.2 round
    trips to the publisher, whoever asks and however often a new gap opens."""
    source = producer("video")
    now = [10.0]
    source.clock = lambda: now[0]
    source.rtt = 0.5
    source.receive(packet(0, KEY))
    source.receive(packet(2, DELTA))  # 1 lost: asked for at once
    await asyncio.sleep(0)
    assert rtcp["nack"] == [(SSRC, [1])]
    for _ in range(5):  # subscribers relaying their NACKs every 100 ms
        now[0] += 0.1
        source.relay_nack([1])
    source.receive(packet(4, DELTA))  # a new gap: 3 is new, 1 was asked for 0.5 s ago
    await asyncio.sleep(0)
    assert rtcp["nack"] == [(SSRC, [1]), (SSRC, [3])]
    now[0] += 0.11  # 1.2 round trips since 1 was asked for
    source.relay_nack([1, 3])
    await asyncio.sleep(0)
    assert rtcp["nack"][-1] == (SSRC, [1])


async def test_retransmissions_before_the_stream_are_dropped(rtcp: dict[str, list[Any]]) -> None:
    source = producer("video")
    egress = FakeEgress()
    slot("video", source, egress)
    assert source.receive(rtx(1, 7, KEY)) == 0
    assert (source.ssrc, source.packets, egress.sent) == (None, 0, [])


async def test_video_waits_for_a_key_frame_and_the_producer_asks_for_one(
    rtcp: dict[str, list[Any]],
) -> None:
    source = producer("video")
    egress = FakeEgress()
    slot("video", source, egress)
    for seq in range(3):
        assert source.receive(packet(seq, DELTA)) == 0
    await asyncio.sleep(0)
    assert rtcp["pli"] == [SSRC]  # once: PLIs are rate limited
    assert source.plis_sent == 1
    assert source.receive(packet(3, KEY)) == 1
    assert source.receive(packet(4, DELTA)) == 1


async def test_h264_key_frames_when_negotiated(rtcp: dict[str, list[Any]]) -> None:
    source = producer("video")
    source.configure("h264", {RTX_PT: MEDIA_PT})
    assert source.h264
    egress = FakeEgress()
    slot("video", source, egress)
    assert source.receive(packet(0, KEY)) == 0  # a VP8 key frame is no H.264 IDR
    assert source.receive(packet(1, b"\x65\x88")) == 1  # an IDR slice


async def test_what_is_not_rtp_is_counted_and_dropped(rtcp: dict[str, list[Any]]) -> None:
    source = producer("audio")
    egress = FakeEgress()
    slot("audio", source, egress)
    good = packet(1, b"opus", padding=2)
    bad = [
        good[:11],  # shorter than a header
        b"\x40" + good[1:],  # version 1
        bytes([good[0] | 0x0F]) + good[1:],  # more CSRCs than bytes
        good[:-1] + b"\x00",  # padding of zero
        good[:-1] + b"\xff",  # more padding than payload
    ]
    for data in bad:
        assert source.receive(data) == 0
    assert (source.malformed, source.packets, source.ssrc, egress.sent) == (len(bad), 0, None, [])
    with pytest.raises(TypeError, match="bytes"):
        source.receive(bytearray(good))  # type: ignore[arg-type]
    assert source.receive(good) == 1


async def test_a_closed_producer_forwards_nothing(rtcp: dict[str, list[Any]]) -> None:
    source = producer("audio")
    egress = FakeEgress()
    made = slot("audio", source, egress)
    source.close()
    assert source.receive(packet(1, b"opus")) == 0
    assert (source.packets, egress.sent, made.source) == (0, [], None)


async def test_a_consumer_leaving_mid_packet_is_safe(rtcp: dict[str, list[Any]]) -> None:
    """A Python callback during the fan-out (here the first slot's new epoch) may change the
    list of consumers; the loop reads it afresh, as a Python for loop would."""
    source = producer("audio")
    first_egress, second_egress = FakeEgress(), FakeEgress()
    first = slot("audio", source, first_egress)
    second = slot("audio", source, second_egress)
    new_epoch = first._new_epoch

    def leave_then_start(sequence_number: int, timestamp: int) -> int:
        second.switch(None)
        return new_epoch(sequence_number, timestamp)

    first._new_epoch = leave_then_start  # type: ignore[method-assign]
    assert source.receive(packet(1, b"opus")) == 1
    assert (len(first_egress.sent), second_egress.sent) == (1, [])
    assert source.consumers == [first]


async def test_bad_settings_are_refused_and_change_nothing(rtcp: dict[str, list[Any]]) -> None:
    source = producer("video")
    with pytest.raises(ValueError, match="payload types"):
        source.rtx = {RTX_PT: 300, 98: 96}
    with pytest.raises(TypeError, match="dict"):
        source.rtx = [(1, 2)]  # type: ignore[assignment]
    assert source.rtx == {RTX_PT: MEDIA_PT}
    assert source.receive(rtx(1, 7, KEY)) == 0  # the table is unchanged too: 98 is no RTX
    with pytest.raises(ValueError, match="32-bit"):
        source.ssrc = 1 << 32
    assert source.ssrc is None


async def test_a_consumer_that_is_no_slot_is_an_error(rtcp: dict[str, list[Any]]) -> None:
    source = producer("video")
    source.consumers.append(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Slot"):
        source.receive(packet(0, KEY))


async def test_a_producer_and_its_consumers_are_collected_together(
    rtcp: dict[str, list[Any]],
) -> None:
    source = producer("video")
    slot("video", source, FakeEgress())
    source.receive(packet(0, KEY))
    gone = weakref.ref(source)
    del source
    gc.collect()
    assert gone() is None


def test_parse_rtp_takes_any_bytes_like_object() -> None:
    data = packet(7, b"opus", level=0x85)
    fields = _forward.parse_rtp(memoryview(data))
    assert fields == _forward.parse_rtp(bytearray(data))
    assert fields[2] == 7
    assert fields[7] == 0x85
    assert _forward.parse_rtp(data, False)[7] is None  # not scanned
    with pytest.raises(ValueError, match="shorter"):
        _forward.parse_rtp(b"\x80")


# Demux ----------------------------------------------------------------------------------------


async def test_the_demux_routes_by_payload_type(rtcp: dict[str, list[Any]]) -> None:
    audio, video = producer("audio"), producer("video")
    audio_egress, video_egress = FakeEgress(), FakeEgress()
    slot("audio", audio, audio_egress)
    slot("video", video, video_egress)
    demux = _forward.Demux()
    demux.route(111, audio)
    demux.route(MEDIA_PT, video)
    demux.route(RTX_PT, video)
    assert demux.routes == {111: audio, MEDIA_PT: video, RTX_PT: video}
    now = time.perf_counter_ns()
    assert demux(packet(1, b"opus", pt=111, ssrc=7), now) == 1
    assert demux(packet(1, KEY), now) == 1
    assert demux(rtx(2, 1, KEY), now) == 1  # RTX reaches the video producer, unwrapped
    assert demux(packet(2, b"?", pt=100), now) == 0  # no route
    assert demux(packet(2, b"opus", pt=111, ssrc=7)[:11], now) == 0  # not RTP
    assert (len(audio_egress.sent), len(video_egress.sent)) == (1, 2)
    assert (audio.packets, video.packets, demux.received) == (1, 2, 3)
    demux.route(111, None)
    assert demux(packet(3, b"opus", pt=111, ssrc=7), now) == 0
    demux.clear()
    assert demux.routes == {}


async def test_the_demux_observes_one_latency_in_32(rtcp: dict[str, list[Any]]) -> None:
    source = producer("audio")
    slot("audio", source, FakeEgress())
    demux = _forward.Demux()
    demux.route(111, source)
    seen: list[float] = []
    demux.observe = seen.append
    for seq in range(64):
        demux(packet(seq, b"opus", pt=111), time.perf_counter_ns())
    assert len(seen) == 2
    assert all(0 <= latency < 0.5 for latency in seen)
    demux.observe = None
    demux(packet(64, b"opus", pt=111), time.perf_counter_ns())


def test_the_demux_refuses_bad_routes_and_calls() -> None:
    demux = _forward.Demux()
    with pytest.raises(ValueError, match="payload types"):
        demux.route(128, None)
    with pytest.raises(TypeError, match="Source"):
        demux.route(96, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        demux("text", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        demux(b"")  # type: ignore[call-arg]
    assert demux.routes == {}


async def test_an_ingress_hands_packets_to_its_demux_directly(
    rtcp: dict[str, list[Any]],
) -> None:
    """The fast path: the socket callback decrypts into its buffer and the Demux takes the
    packet from there, to the producer and its subscribers; what the Demux raises is reported
    to the Ingress's on_error, never to the event loop."""
    from pylibsrtp._binding import ffi, lib

    sender, receiver = session_pair()
    source = producer("audio")
    egress = FakeEgress()
    slot("audio", source, egress)
    demux = _forward.Demux()
    demux.route(111, source)
    others: list[Any] = []
    errors: list[BaseException] = []
    ingress = _forward.Ingress(
        receiver,
        int(ffi.cast("uintptr_t", receiver._srtp[0])),
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_unprotect"))),
        demux,
        lambda data, addr: others.append(data),
        errors.append,
    )
    addr = ("127.0.0.1", 5000)
    for seq in range(5):
        ingress(sender.protect(packet(seq, b"opus-%d" % seq, pt=111, level=0x90)), addr)
    assert [p.endswith(b"opus-%d" % seq) for seq, p in enumerate(egress.sent)] == [True] * 5
    assert (source.packets, demux.received, ingress.received) == (5, 5, 5)
    source.consumers.append(object())  # type: ignore[arg-type]
    ingress(sender.protect(packet(5, b"opus", pt=111)), addr)
    assert len(errors) == 1
    assert isinstance(errors[0], TypeError)
    assert not others


# Review findings: Python that runs mid-packet ----------------------------------------------


async def test_a_failing_new_ssrc_hook_is_tried_again(rtcp: dict[str, list[Any]]) -> None:
    """The source is not taken when _new_ssrc fails: the next packet calls it again, so the
    statistics always belong to the SSRC they are filed under."""
    source = producer("audio")
    calls = 0
    new_ssrc = source._new_ssrc

    def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("registering failed once")
        new_ssrc()

    source._new_ssrc = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="once"):
        source.receive(packet(1, b"opus"))
    assert (source.ssrc, source.stats, source.packets) == (None, None, 0)
    assert source.receive(packet(2, b"opus")) == 0  # no subscriber, but taken
    assert (calls, source.ssrc, source.packets) == (2, SSRC, 1)
    assert source.stats is not None
    assert source.stats.packets_received == 1


async def test_a_new_ssrc_brings_fresh_gaps_and_its_own_statistics_back(
    rtcp: dict[str, list[Any]],
) -> None:
    source = producer("video")
    for seq in (10, 11, 13):
        source.receive(packet(seq, KEY))
    first = source.stats
    assert source.nacks is not None
    assert source.nacks.missing == {12}
    source.receive(packet(5000, KEY, ssrc=SSRC + 1))  # the publisher restarted its stream
    assert source.nacks.missing == set()  # nothing of the old stream is asked for
    source.receive(packet(5001, KEY, ssrc=SSRC + 1))
    source.receive(packet(14, KEY))  # and back: its statistics go on where they were
    assert source.stats is first
    assert first is not None
    assert first.packets_received == 4


async def test_one_failing_consumer_does_not_keep_the_packet_from_the_rest(
    rtcp: dict[str, list[Any]],
) -> None:
    source = producer("audio")
    failing, good = FakeEgress(), FakeEgress()

    def refuse(packet: bytes) -> bool:
        raise OSError("a broken egress")

    failing.send = refuse  # type: ignore[method-assign]
    slot("audio", source, failing)
    slot("audio", source, good)
    with pytest.raises(OSError, match="broken"):
        source.receive(packet(1, b"opus"))
    assert len(good.sent) == 1  # the second consumer still got it


def test_the_rtx_table_is_read_from_a_copy() -> None:
    """A key whose conversion runs Python that empties the dict being read cannot make the
    setter read freed memory: it reads its own copy, and keeps the converted ints. The
    getter's dict is a copy too: changing it changes nothing."""
    source = _forward.Source()
    table: dict[Any, Any] = {}

    class Sneaky:
        def __index__(self) -> int:
            table.clear()  # frees the value object, if the setter were reading this dict
            return 97

    table[Sneaky()] = int("96")  # a value object of its own
    source.rtx = table
    assert source.rtx == {97: 96}
    got = source.rtx
    got[98] = 96
    assert source.rtx == {97: 96}


def test_stream_stats_refuse_an_arrival_out_of_range() -> None:
    stats = _forward.StreamStats(90000)
    stats.add(1, 0, 1000)
    for arrival in (-1, 1 << 62):
        with pytest.raises(ValueError, match="arrival"):
            stats.add(2, 3000, arrival)
    assert stats.packets_received == 1


def tap_entry_after_arrival(entry: bytes, before_ns: int, after_ns: int) -> bytes:
    """A tap entry's header and payload, its arrival checked to lie within the window."""
    assert before_ns <= int.from_bytes(entry[:8], "big") <= after_ns
    return entry[8:]


async def test_the_tap_takes_each_packet_as_the_recorder_reads_it(
    rtcp: dict[str, list[Any]],
) -> None:
    """Per packet one entry in the Tap's buffer: arrival, a plain RTP header (RTX unwrapped,
    no extensions), the payload (padding off), as depacketize.tapped makes it."""
    source = producer("video")
    assert source.tap is None
    source.receive(packet(1, KEY))  # no tap: nothing kept
    tap = source.tap = _forward.Tap()
    before = time.time_ns()
    source.receive(packet(2, KEY + b"key", marker=True))
    source.receive(packet(4, DELTA + b"padded", padding=7))
    source.receive(rtx(50, 3, DELTA + b"again"))
    after = time.time_ns()
    assert len(tap) == 3
    got = [tap_entry_after_arrival(e, before, after) for e in tap.entries()]
    assert got == [
        tapped(0, 2, 6000, SSRC, True, KEY + b"key")[8:],
        tapped(0, 4, 12000, SSRC, False, DELTA + b"padded")[8:],
        tapped(0, 3, 150000, SSRC, False, DELTA + b"again")[8:],
    ]
    assert tap.nbytes == sum(4 + len(e) for e in tap.entries())
    # The buffer as the Assembler reads it: each entry after its little-endian length.
    view = bytes(memoryview(tap))
    assert view[:4] == (len(tap.entries()[0])).to_bytes(4, "little")
    assert source.tap_dropped == 0
    source.tap = [b"not a tap"]  # type: ignore[assignment]
    source.receive(packet(5, DELTA))  # anything but a Tap takes nothing, and fails nothing
    assert source.tap == [b"not a tap"]
    assert len(tap) == 3


async def test_a_full_or_busy_tap_drops_and_counts_and_never_fails_a_packet(
    rtcp: dict[str, list[Any]],
) -> None:
    source = producer("audio")
    egress = FakeEgress()
    slot("audio", source, egress)
    tap = source.tap = _forward.Tap()
    source.tap_limit = 3
    for seq in range(5):
        assert source.receive(packet(seq, b"opus")) == 1  # forwarded all the same
    assert len(tap) == 3
    assert source.tap_dropped == 2
    # The recorder's swap: a fresh Tap takes again; the full one is read and cleared.
    fresh = source.tap = _forward.Tap()
    source.receive(packet(5, b"opus"))
    assert len(fresh) == 1
    assert [int.from_bytes(e[10:12], "big") for e in tap.entries()] == [0, 1, 2]
    tap.clear()
    assert len(tap) == 0
    assert tap.nbytes == 0
    # While a view of the buffer is open (the Assembler reading it), nothing moves it: the
    # packet path drops and counts, clear() and append() refuse.
    with memoryview(fresh) as view:
        assert source.receive(packet(6, b"opus")) == 1
        assert len(fresh) == 1
        assert source.tap_dropped == 3
        with pytest.raises(BufferError):
            fresh.clear()
        with pytest.raises(BufferError):
            fresh.append(tapped(0, 1, 2, 3, True, b""))
        assert len(view) == fresh.nbytes
    source.receive(packet(7, b"opus"))
    assert len(fresh) == 2
    assert source.tap_dropped == 3
    assert len(egress.sent) == 8


def test_a_tap_checks_what_it_is_given() -> None:
    tap = _forward.Tap()
    assert len(tap) == 0
    assert not tap
    assert tap.entries() == []
    assert bytes(memoryview(tap)) == b""
    with pytest.raises(TypeError):
        _forward.Tap(1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="tap entry"):
        tap.append(b"\x00" * 19)
    with pytest.raises(ValueError, match="tap entry"):
        tap.append(bytearray(30))  # type: ignore[arg-type]
    entries = [tapped(n, n, n * 960, 7, True, bytes(n * 100)) for n in range(200)]
    for entry in entries:
        tap.append(entry)
    assert len(tap) == 200
    assert tap.entries() == entries  # grown across many reallocations, nothing lost
    tap.clear()
    tap.append(entries[3])
    assert tap.entries() == [entries[3]]
