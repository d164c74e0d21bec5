"""media._forward, the forwarding core in C: the Sender against pylibsrtp and a real loopback
socket, and Slot.forward (Consumer's per-packet path) against the same consumer sending through
a Python egress, packet for packet."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import resource
import socket
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pylibsrtp
import pytest

from courtlink.media import _forward, fastpath
from courtlink.media.consumer import HISTORY_SIZE, Consumer, _extension_prefix
from courtlink.media.rtp import EXT_ABS_SEND_TIME, EXT_AUDIO_LEVEL, parse_header, write_packet
from tests.media.test_fastpath import KEY, session_pair
from tests.media.test_reconnect import FakeEgress, FakeProducer, FakeTransceiver


class Transport:
    """What fastpath.sender_for reads of an asyncio datagram transport."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


@pytest.fixture
def link() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the server's socket, the subscriber's socket), both UDP on loopback."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    subscriber = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    subscriber.bind(("127.0.0.1", 0))
    subscriber.settimeout(2)
    yield server, subscriber
    server.close()
    subscriber.close()


def sender_to(
    session: pylibsrtp.Session, server: socket.socket, subscriber: socket.socket
) -> _forward.Sender:
    sender = fastpath.sender_for(session, Transport(server), subscriber.getsockname())
    assert sender is not None
    return sender


def rtp(seq: int, payload: bytes, *, pt: int = 96, marker: bool = False) -> bytes:
    return write_packet(
        marker=marker,
        payload_type=pt,
        sequence_number=seq & 0xFFFF,
        timestamp=(seq * 3000) & 0xFFFFFFFF,
        ssrc=0x1234,
        extensions=b"",
        payload=payload,
    )


def test_the_sender_protects_like_pylibsrtp_and_sends(link: Any) -> None:
    server, subscriber = link
    ours, twin = session_pair()[0], session_pair()[0]
    _, receiver = session_pair()
    sender = sender_to(ours, server, subscriber)
    assert sender.addr == subscriber.getsockname()
    for seq in range(50):
        packet = rtp(seq, os.urandom(200 + 20 * seq))
        assert sender.send(packet) is True
        sealed, source = subscriber.recvfrom(2048)
        assert source == server.getsockname()  # from the pair's own socket
        assert sealed == twin.protect(packet)  # same keys, same stream: the same bytes
        assert receiver.unprotect(sealed) == packet
    assert (sender.sent, sender.refused, sender.dropped) == (50, 0, 0)


def test_the_sender_refuses_what_it_cannot_send(link: Any) -> None:
    server, subscriber = link
    sender = sender_to(session_pair()[0], server, subscriber)
    assert sender.send(rtp(1, b"x" * _forward.MAX_PACKET)) is False  # over the limit
    assert sender.send(b"\x80") is False  # libsrtp refuses a runt
    assert (sender.sent, sender.refused) == (0, 2)
    with pytest.raises(TypeError):
        sender.send("not bytes")  # type: ignore[arg-type]
    subscriber.settimeout(0.2)
    with pytest.raises(TimeoutError):
        subscriber.recvfrom(2048)


def test_the_sender_keeps_its_own_descriptor(link: Any) -> None:
    server, subscriber = link
    _, receiver = session_pair()
    sender = sender_to(session_pair()[0], server, subscriber)
    server.close()  # the transport closes first: the Sender's duplicate still names the socket
    assert sender.send(rtp(7, b"after")) is True
    assert receiver.unprotect(subscriber.recvfrom(2048)[0]) == rtp(7, b"after")
    sender.close()
    assert sender.closed
    assert sender.send(rtp(8, b"closed")) is False
    assert sender.dropped == 1


@pytest.mark.parametrize(
    "addr",
    [("fe80::1%lo", 5000), ("localhost", 5000), ("127.0.0.1", 0), ("127.0.0.1", 70000)],
)
def test_addresses_the_sender_cannot_take_fall_back_to_python(link: Any, addr: Any) -> None:
    server, _ = link
    assert fastpath.sender_for(session_pair()[0], Transport(server), addr) is None
    with pytest.raises(ValueError, match=r"address|port"):
        _forward.Sender(session_pair()[0], 1, 1, server.fileno(), addr)


def test_a_transport_without_a_socket_gets_no_sender() -> None:
    # A TURN allocation: aioice's TurnTransport has no socket of its own.
    assert fastpath.sender_for(session_pair()[0], Transport(None), ("127.0.0.1", 1)) is None


def test_the_sender_keeps_its_session_alive(link: Any) -> None:
    server, subscriber = link
    session = session_pair()[0]
    gone = weakref.ref(session)
    sender = sender_to(session, server, subscriber)
    del session
    gc.collect()
    assert gone() is not None  # the Sender owns a reference: its libsrtp context is valid
    assert sender.send(rtp(1, b"alive"))
    del sender
    gc.collect()
    assert gone() is None


# Slot.forward ----------------------------------------------------------------------------------


def consumer(kind: str, egress: Any, producer: FakeProducer) -> Consumer:
    made = Consumer("judge", kind, FakeTransceiver())  # type: ignore[arg-type]
    made.ready = True
    made.egress = egress
    made.switch(producer)  # type: ignore[arg-type]
    return made


def feed(made: Consumer, data: bytes, value: bytes, keyframe: bool) -> int:
    header = parse_header(data)
    return made.forward(header, data[header.payload_start : header.payload_end], value, keyframe)


def stream(count: int) -> list[tuple[bytes, bool]]:
    """A key frame, then packets with a reordering, a duplicate (the same packet twice, as a
    retransmission that crossed the original), a marker every fifth and a second payload type
    (which the consumer under test maps)."""
    seqs = list(range(40000, 40000 + count))
    seqs[10], seqs[11] = seqs[11], seqs[10]
    seqs.insert(20, seqs[19])
    return [
        (
            rtp(
                seq,
                random.Random(seq).randbytes(50 + seq % 700),
                pt=97 if seq % 7 == 0 else 96,
                marker=seq % 5 == 0,
            ),
            i == 0,
        )
        for i, seq in enumerate(seqs)
    ]


class SocketTransport:
    """A transport whose sendto is a plain socket's (for the Python Egress)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sendto = sock.sendto


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_c_sender_and_python_egress_carry_the_same_packets(link: Any, kind: str) -> None:
    server, subscriber = link
    twin_subscriber = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    twin_subscriber.bind(("127.0.0.1", 0))
    twin_subscriber.settimeout(2)
    _, receiver = session_pair()
    _, twin_receiver = session_pair()
    c_egress = sender_to(session_pair()[0], server, subscriber)
    python_egress = fastpath.Egress(
        session_pair()[0], SocketTransport(server), twin_subscriber.getsockname()
    )
    through_c = consumer(kind, c_egress, FakeProducer())
    through_python = consumer(kind, python_egress, FakeProducer())
    for made in (through_c, through_python):
        made.next_seq = 100
        made.pt_map, made.same_pt = {96: 96, 97: 111}, False
        element, size = (EXT_ABS_SEND_TIME, 3) if kind == "video" else (EXT_AUDIO_LEVEL, 1)
        made._prefix, made._pad = _extension_prefix(b"2", element, size)
    value = b"\x01\x02\x03" if kind == "video" else b"\x7f"
    packets = stream(120)
    results = [
        (feed(through_c, data, value, key), feed(through_python, data, value, key))
        for data, key in packets
    ]
    assert all(c == py for c, py in results), results
    # libsrtp refuses to encrypt the same sequence number twice: the duplicate is not sent.
    assert sum(c for c, _ in results) == len(packets) - 1 == through_c.forwarded
    assert c_egress.refused == 1
    received = [receiver.unprotect(subscriber.recvfrom(2048)[0]) for _ in range(len(packets) - 1)]
    twins = [twin_receiver.unprotect(twin_subscriber.recvfrom(2048)[0]) for _ in received]
    twin_subscriber.close()
    # The timestamp offset is random per epoch: shift the twin's before comparing.
    shift = (through_c.ts_offset - through_python.ts_offset) & 0xFFFFFFFF
    for got, want in zip(received, twins, strict=True):
        ts = (int.from_bytes(want[4:8], "big") + shift) & 0xFFFFFFFF
        assert got == want[:4] + ts.to_bytes(4, "big") + want[8:]
    first = parse_header(received[0])
    assert (first.sequence_number, first.ssrc) == (100, 4242)
    if kind == "video":
        assert first.abs_send_time == 0x010203
    else:
        assert first.audio_level == 0x7F
    assert through_c.octets == through_python.octets
    assert through_c.next_seq == through_python.next_seq
    assert through_c.last_ts == ((through_python.last_ts or 0) + shift) & 0xFFFFFFFF
    assert any(parse_header(p).payload_type == 111 for p in received)  # 97 mapped
    assert not any(parse_header(p).payload_type == 97 for p in received)
    assert any(parse_header(p).marker for p in received)
    # Video keeps every sequence number it sent, plaintext, as sent; audio keeps nothing.
    assert through_c.kept_count() == (len(packets) - 1 if kind == "video" else 0)
    for packet in received:
        seq = parse_header(packet).sequence_number
        assert through_c.kept(seq) == (packet if kind == "video" else None)


def test_video_waits_for_a_key_frame_and_asks_for_one() -> None:
    egress, producer = FakeEgress(), FakeProducer()
    made = consumer("video", egress, producer)
    for seq in range(5):
        assert feed(made, rtp(seq, b"delta"), b"\x00\x00\x00", False) == 0
    assert producer.keyframe_requests == 5
    assert not egress.sent
    assert made.seq_offset is None
    assert made.waiting_keyframe
    assert feed(made, rtp(5, b"key"), b"\x00\x00\x00", True) == 1
    assert feed(made, rtp(6, b"delta"), b"\x00\x00\x00", False) == 1
    assert not made.waiting_keyframe
    assert made.seq_offset is not None
    assert [parse_header(p).sequence_number for p in egress.sent] == [
        made.next_seq - 2 & 0xFFFF,
        made.next_seq - 1 & 0xFFFF,
    ]


def test_no_egress_sends_nothing_and_changes_nothing() -> None:
    made = consumer("audio", None, FakeProducer())
    before = (made.next_seq, made.seq_offset, made.forwarded)
    assert feed(made, rtp(1, b"x"), b"\x00", False) == 0
    assert (made.next_seq, made.seq_offset, made.forwarded) == before


def test_bad_calls_are_refused_without_a_change() -> None:
    egress = FakeEgress()
    made = consumer("audio", egress, FakeProducer())
    header = parse_header(rtp(1, b"x"))
    with pytest.raises(TypeError):
        made.forward(header, b"x", b"\x00")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        made.forward(header, "x", b"\x00", False)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        made.forward(object(), b"x", b"\x00", False)
    with pytest.raises(ValueError, match="next_seq"):
        made.next_seq = 70000
    with pytest.raises(ValueError, match="seq_offset"):
        made.seq_offset = -1
    with pytest.raises(ValueError, match="ts_offset"):
        made.ts_offset = 1 << 32
    with pytest.raises(OverflowError):
        made._ssrc = -1
    with pytest.raises(AttributeError, match="_ssrc"):
        del made._ssrc
    assert not egress.sent
    assert made.forwarded == 0


def test_a_consumer_and_its_producer_are_collected_together() -> None:
    made = consumer("video", FakeEgress(), FakeProducer())
    producer = made.source
    assert producer is not None
    assert made in producer.consumers
    gone = weakref.ref(made)
    del made, producer
    gc.collect()
    assert gone() is None


def test_the_signature_the_sender_calls_is_pylibsrtps() -> None:
    # The Sender calls srtp_protect through a pointer of this type (media/_forward.c).
    from pylibsrtp._binding import ffi, lib

    assert ffi.typeof(ffi.addressof(lib, "srtp_protect")).cname == (
        "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"
    )
    assert pylibsrtp.SRTP_MAX_TRAILER_LEN <= _forward.MAX_TRAILER
    assert len(KEY) == 30


# Ingress ---------------------------------------------------------------------------------------


class Handed:
    """The peer's handler and aioice's original callback, recording what reaches each."""

    def __init__(self, fail: bool = False) -> None:
        self.plain: list[tuple[bytes, int]] = []
        self.other: list[tuple[bytes, Any]] = []
        self.errors: list[BaseException] = []
        self.fail = fail

    def handler(self, plain: bytes, arrived_ns: int) -> None:
        self.plain.append((plain, arrived_ns))
        if self.fail:
            raise RuntimeError("a broken handler")

    def original(self, data: bytes, addr: Any) -> None:
        self.other.append((data, addr))


def ingress_for(session: pylibsrtp.Session, handed: Handed) -> _forward.Ingress:
    from pylibsrtp._binding import ffi, lib

    return _forward.Ingress(
        session,
        int(ffi.cast("uintptr_t", session._srtp[0])),
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_unprotect"))),
        handed.handler,
        handed.original,
        handed.errors.append,
    )


def test_ingress_decrypts_rtp_and_passes_the_rest_on() -> None:
    sender, receiver = session_pair()
    handed = Handed()
    ingress = ingress_for(receiver, handed)
    addr = ("127.0.0.1", 5000)
    before = time.perf_counter_ns()
    packets = [rtp(seq, os.urandom(100 + seq)) for seq in range(20)]
    for packet in packets:
        ingress(sender.protect(packet), addr)
    after = time.perf_counter_ns()
    assert [plain for plain, _ in handed.plain] == packets
    assert all(before <= when <= after for _, when in handed.plain)  # perf_counter_ns's clock
    stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12)
    dtls = b"\x16\xfe\xfd" + bytes(20)
    rtcp = sender.protect_rtcp(bytes([0x80, 201, 0, 1]) + (0x1234).to_bytes(4, "big"))
    for other in (stun, dtls, rtcp, b"\x80"):
        ingress(other, addr)
    assert handed.other == [(stun, addr), (dtls, addr), (rtcp, addr), (b"\x80", addr)]
    assert (ingress.received, ingress.refused) == (20, 0)
    assert ingress.original == handed.original


def test_ingress_drops_what_libsrtp_refuses() -> None:
    sender, receiver = session_pair()
    handed = Handed()
    ingress = ingress_for(receiver, handed)
    sealed = sender.protect(rtp(1, b"payload"))
    ingress(sealed[:-1] + bytes([sealed[-1] ^ 1]), None)  # tampered
    ingress(sealed, None)
    ingress(sealed, None)  # a replay
    ingress(bytes([0x80, 96]) + bytes(2000), None)  # longer than any packet it takes
    assert [plain for plain, _ in handed.plain] == [rtp(1, b"payload")]
    assert (ingress.received, ingress.refused) == (1, 3)
    assert handed.other == []


def test_a_failing_handler_is_reported_not_raised() -> None:
    sender, receiver = session_pair()
    handed = Handed(fail=True)
    ingress = ingress_for(receiver, handed)
    ingress(sender.protect(rtp(1, b"x")), None)  # the event loop's callback must not raise
    assert len(handed.errors) == 1
    assert isinstance(handed.errors[0], RuntimeError)
    assert handed.errors[0].__traceback__ is not None
    with pytest.raises(TypeError):
        ingress(b"only one argument")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _forward.Ingress(receiver, 1, 1, None, handed.original, handed.errors.append)  # type: ignore[arg-type]


def test_the_history_holds_the_newest_packets_by_sequence_number() -> None:
    egress = FakeEgress()
    made = consumer("video", egress, FakeProducer())
    made.next_seq = 65500  # the sequence wraps in the ring
    for i in range(HISTORY_SIZE + 100):
        assert feed(made, rtp(i, bytes([i & 0xFF]) * 100), b"\x00\x00\x00", i == 0) == 1
    sent = {parse_header(p).sequence_number: p for p in egress.sent}
    newest = [parse_header(p).sequence_number for p in egress.sent[-HISTORY_SIZE:]]
    assert made.kept_count() == HISTORY_SIZE
    assert all(made.kept(seq) == sent[seq] for seq in newest)
    oldest = parse_header(egress.sent[0]).sequence_number
    assert made.kept(oldest) is None  # overwritten by the packet HISTORY_SIZE later
    with pytest.raises(ValueError, match="sequence number"):
        made.kept(70000)
    # Which numbers were sent is known further back than their payloads are held.
    assert made.was_sent(oldest)
    assert all(made.was_sent(seq) for seq in sent)
    assert not made.was_sent((newest[-1] + 1) & 0xFFFF)
    with pytest.raises(ValueError, match="sequence number"):
        made.was_sent(-1)
    made.forget()
    assert made.kept_count() == 0
    assert made.kept(newest[-1]) is None
    assert not made.was_sent(newest[-1])
    # A packet longer than any egress sends is neither sent nor kept.
    assert (
        feed(made, rtp(HISTORY_SIZE + 100, b"x" * _forward.MAX_PACKET), b"\x00\x00\x00", False) == 0
    )
    assert made.kept_count() == 0


class CountingEgress:
    def __init__(self) -> None:
        self.count = 0

    def send(self, packet: bytes) -> bool:
        self.count += 1
        return True


def test_the_history_is_reserved_when_a_negotiated_video_slot_gets_a_source() -> None:
    """Not before (an empty seat's slot never holds 375 KB), not for audio, and then off the
    packet path: whichever of negotiation and the first source comes last reserves it."""
    audio = Consumer("judge", "audio", FakeTransceiver())  # type: ignore[arg-type]
    audio.ready = True
    audio.switch(FakeProducer())  # type: ignore[arg-type]
    assert not audio.reserved
    video = Consumer("judge", "video", FakeTransceiver())  # type: ignore[arg-type]
    video.ready = True
    assert not video.reserved  # negotiated, no source yet
    video.switch(FakeProducer())  # type: ignore[arg-type]
    assert video.reserved
    early = Consumer("judge", "video", FakeTransceiver())  # type: ignore[arg-type]
    early.switch(FakeProducer())  # type: ignore[arg-type]
    assert not early.reserved  # a source before negotiation
    early.ready = True
    early._reserve_history()  # what configure() does last
    assert early.reserved


def test_the_history_is_reserved_off_the_packet_path() -> None:
    """A video slot's ring is mapped and populated by reserve(), so a lap of forwarding does
    not page-fault through it; reserving again keeps what is held."""
    made = Consumer("judge", "video", FakeTransceiver())  # type: ignore[arg-type]
    made.reserve()
    assert made.reserved
    assert made.kept_count() == 0
    made.ready, made.egress = True, CountingEgress()  # keeps nothing: no allocations
    made.switch(FakeProducer())  # type: ignore[arg-type]
    packets = [rtp(i, bytes(1100)) for i in range(HISTORY_SIZE)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i, data in enumerate(packets):
        feed(made, data, b"\x00\x00\x00", i == 0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    # An unpopulated ring would fault once a page: HISTORY_SIZE * MAX_PACKET / 4096 = 94.
    assert faults < 30, faults
    made.reserve()
    assert made.kept_count() == HISTORY_SIZE


def test_a_finalizer_replacing_the_prefix_mid_packet_changes_nothing_sent() -> None:
    """Dropping the previous last_sent_at may run Python (a finalizer) after the packet's
    parts are taken: the slot holds what they point into until the packet is sent. (Before,
    the old prefix was freed there and its memory, reused, went out in the packet.)"""
    egress = FakeEgress()
    made = consumer("audio", egress, FakeProducer())
    prefix, pad = _extension_prefix(b"2", EXT_AUDIO_LEVEL, 1)
    made._prefix, made._pad = bytes(bytearray(prefix)), pad  # singly owned
    reused: list[bytes] = []

    class Stamp(float):
        def __del__(self) -> None:
            made._prefix = prefix  # drops the slot's old prefix...
            reused.append(bytes(bytearray(b"A" * len(prefix))))  # ...and takes its memory

    made.clock = lambda: Stamp(time.monotonic())
    assert feed(made, rtp(1, b"opus"), b"\x7f", False) == 1
    assert feed(made, rtp(2, b"opus"), b"\x7f", False) == 1  # drops the first Stamp
    assert reused  # the finalizer ran during the second packet
    second = egress.sent[1]
    assert second[12 : 12 + len(prefix)] == prefix
    assert parse_header(second).audio_level == 0x7F


def test_deleted_fields_read_as_none_and_never_crash() -> None:
    egress = FakeEgress()
    made = consumer("audio", egress, FakeProducer())
    del made.last_sent_at
    assert feed(made, rtp(1, b"x"), b"\x00", False) == 1
    assert made.last_sent_at is not None  # set again by the packet
    del made.clock
    assert feed(made, rtp(2, b"x"), b"\x00", False) == 1
    del made.egress
    assert feed(made, rtp(3, b"x"), b"\x00", False) == 0
    video = consumer("video", FakeEgress(), FakeProducer())
    del video.source  # waiting for a key frame with no source to ask
    assert feed(video, rtp(1, b"x"), b"\x00\x00\x00", False) == 0


def test_a_clock_that_reconfigures_the_slot_cannot_corrupt_the_packet() -> None:
    egress = FakeEgress()
    made = consumer("audio", egress, FakeProducer())
    before = made._prefix

    def clock() -> float:
        # As if configure() ran from inside forward: the old prefix's bytes are freed.
        made._prefix = bytes(made._prefix)[:-1] + b"\x22"
        return 1.0

    made.clock = clock
    assert feed(made, rtp(1, b"payload"), b"\x7f", False) == 1
    sent = egress.sent[0]
    assert sent[12 : 12 + len(before)] in (before, made._prefix)  # one or the other, whole
    assert sent.endswith(b"payload")


def test_an_uninitialised_ingress_refuses_calls() -> None:
    bare = _forward.Ingress.__new__(_forward.Ingress)
    with pytest.raises(RuntimeError, match="not initialised"):
        bare(b"\x80" * 20, None)


def test_ctrl_c_in_the_handler_is_not_swallowed() -> None:
    sender, receiver = session_pair()
    handed = Handed()

    def interrupted(plain: bytes, arrived_ns: int) -> None:
        raise KeyboardInterrupt

    handed.handler = interrupted  # type: ignore[method-assign]
    ingress = ingress_for(receiver, handed)
    with pytest.raises(KeyboardInterrupt):
        ingress(sender.protect(rtp(1, b"x")), None)
    assert handed.errors == []


async def test_a_failing_report_does_not_end_the_connections_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from courtlink.court.seats import Seat
    from courtlink.media import peer as peer_module

    peer = peer_module.Peer("p1", (Seat.CREDITOR,))
    sent: list[bytes] = []
    calls = 0

    def reports() -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a broken report")
        return b"\x80\xc9\x00\x01\x00\x00\x00\x01"

    async def send_rtcp(transport: Any, payload: bytes) -> bool:
        sent.append(payload)
        return True

    monkeypatch.setattr(peer, "reports", reports)
    monkeypatch.setattr(peer_module.wire, "send_rtcp", send_rtcp)
    monkeypatch.setattr(peer_module.random, "random", lambda: 0.0)
    task = asyncio.create_task(peer._send_reports())
    try:
        await asyncio.sleep(1.3)  # two rounds at 0.5 s: the first fails, the second sends
    finally:
        task.cancel()
        await peer.close()
    assert calls >= 2
    assert sent
