"""The private aiortc/aioice internals the SFU relies on (the docstrings of media/wire.py and
media/network.py, §6 of the aiortc research notes), one test each, plus an end-to-end run of
media.Sfu between two real aiortc clients in this process.

aiortc is pinned to 1.16.*; when an upgrade moves one of these internals, the test naming it
fails here instead of the SFU failing in a hearing. The end-to-end tests bind UDP ports
41000-41010 (and 41020-41021) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import importlib.metadata
import inspect
import re
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aioice.ice
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import CODECS, HEADER_EXTENSIONS, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcpeerconnection import RTCPeerConnection as PeerConnectionClass
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.utils import random32
from av import VideoFrame

from courtlink.court.routing import Caucus, Moderation
from courtlink.court.seats import Seat
from courtlink.errors import ConfigError
from courtlink.media import Sfu, fastpath, wire
from courtlink.media._forward import StreamStats
from courtlink.media.consumer import RECEIVER_WINDOW, Consumer
from courtlink.media.nack import Gaps
from courtlink.media.network import NetworkPolicy
from courtlink.media.peer import Peer
from courtlink.media.producer import Producer
from courtlink.media.rtp import EXT_ABS_SEND_TIME, EXT_AUDIO_LEVEL, EXT_MID, RtpHeader, parse_header
from courtlink.media.sfu import MediaSettings


def source(obj: Any) -> str:
    return textwrap.dedent(inspect.getsource(obj))


def params(func: Any) -> list[str]:
    return list(inspect.signature(func).parameters)


class FakeDtls:
    """Stands in for RTCDtlsTransport under a lone sender or receiver: records what is sent."""

    def __init__(self, state: str = "connected") -> None:
        self.state = state
        self.sent: list[bytes] = []
        self.receivers: list[tuple[Any, Any]] = []
        self.senders: list[Any] = []
        self.fail = False
        self._stats_id = "fake-dtls"  # aiortc's receiver reads it when a sender report comes

    def _get_stats(self) -> dict[str, Any]:  # the transport's own part of getStats
        return {}

    async def _send_rtp(self, data: bytes) -> None:
        if self.fail:
            raise ConnectionError("not connected")
        self.sent.append(bytes(data))

    def _register_rtp_receiver(self, receiver: Any, parameters: Any) -> None:
        self.receivers.append((receiver, parameters))

    def _unregister_rtp_receiver(self, receiver: Any) -> None:
        self.receivers = [r for r in self.receivers if r[0] is not receiver]

    def _register_rtp_sender(self, sender: Any, parameters: Any) -> None:
        self.senders.append(sender)

    def _unregister_rtp_sender(self, sender: Any) -> None:
        self.senders.remove(sender)

    def rtcp(self) -> list[Any]:
        return [p for data in self.sent for p in RtcpPacket.parse(data)]


def header(seq: int, ts: int = 0, ssrc: int = 1234) -> RtpHeader:
    return RtpHeader(
        marker=False,
        payload_type=97,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload_start=12,
        payload_end=12,
    )


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": 97}
)


async def wait_for(predicate: Callable[[], bool], what: str, within: float = 8.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


# --- version -------------------------------------------------------------------------------------


def test_aiortc_is_the_pinned_version() -> None:
    assert importlib.metadata.version("aiortc").startswith("1.16.")
    assert importlib.metadata.version("aioice").startswith("0.13.")


# --- RTCDtlsTransport ----------------------------------------------------------------------------


def test_dtls_hands_each_rtp_datagram_to_an_overridable_method() -> None:
    """wire.hook_rtp replaces ``_handle_rtp_data`` on the transport instance."""
    assert inspect.iscoroutinefunction(RTCDtlsTransport._handle_rtp_data)
    assert params(RTCDtlsTransport._handle_rtp_data) == ["self", "data", "arrival_time_ms"]
    recv_next = source(RTCDtlsTransport._recv_next)
    # An attribute lookup on self (so an instance attribute wins), with the keyword our
    # replacement accepts, after SRTP unprotect.
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in recv_next
    assert recv_next.index("self._rx_srtp.unprotect(data)") < recv_next.index(
        "self._handle_rtp_data("
    )


def test_dtls_dispatches_rtcp_to_an_overridable_recipient_method() -> None:
    """wire.hook_sender_feedback replaces ``_handle_rtcp_packet`` on the sender instance."""
    assert "await recipient._handle_rtcp_packet(packet)" in source(
        RTCDtlsTransport._handle_rtcp_data
    )


def test_dtls_send_rtp_protects_rtp_and_rtcp_and_needs_a_connection() -> None:
    assert inspect.iscoroutinefunction(RTCDtlsTransport._send_rtp)
    assert params(RTCDtlsTransport._send_rtp) == ["self", "data"]
    text = source(RTCDtlsTransport._send_rtp)
    assert "raise ConnectionError" in text
    assert "is_rtcp(data)" in text
    assert "protect_rtcp(data)" in text
    assert "protect(data)" in text


def test_dtls_allows_repeated_sequence_numbers() -> None:
    """A plain (non-RTX) retransmission re-sends a sequence number SRTP has seen."""
    assert "allow_repeat_tx = True" in inspect.getsource(aiortc.rtcdtlstransport)


def test_dtls_register_rtp_receiver() -> None:
    assert params(RTCDtlsTransport._register_rtp_receiver) == ["self", "receiver", "parameters"]


async def test_max_bundle_shares_one_transport_from_the_start() -> None:
    """Peer hooks the transport of its first transceiver before negotiation: every other
    transceiver's RTP must arrive there too."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        first = pc.addTransceiver("audio", direction="recvonly")
        others = [
            pc.addTransceiver("video", direction="recvonly"),
            pc.addTransceiver(wire.SilentTrack("audio"), direction="sendonly"),
            pc.addTransceiver(wire.SilentTrack("video"), direction="sendonly"),
        ]
        for transceiver in others:
            assert transceiver.receiver.transport is first.receiver.transport
            assert transceiver.sender.transport is first.receiver.transport
    finally:
        await pc.close()


async def test_hook_rtp_swallows_handler_errors() -> None:
    """An exception escaping ``_handle_rtp_data`` ends RTCDtlsTransport.__run: one bad packet
    would close the whole connection."""
    run = source(RTCDtlsTransport._RTCDtlsTransport__run)  # type: ignore[attr-defined]
    assert "await self._recv_next()" in run
    assert "raise exc" in run
    assert "self._set_state(State.CLOSED)" in run

    class Transceiver:
        class receiver:
            transport = FakeDtls()

    seen: list[tuple[bytes, int]] = []

    async def handler(data: bytes, arrival_time_ms: int) -> None:
        seen.append((data, arrival_time_ms))
        raise RuntimeError("boom")

    wire.hook_rtp(Transceiver, handler)  # type: ignore[arg-type]
    transport = Transceiver.receiver.transport
    await transport._handle_rtp_data(b"\x80", arrival_time_ms=7)  # type: ignore[attr-defined]
    assert seen == [(b"\x80", 7)]


# --- RTCRtpReceiver ------------------------------------------------------------------------------

RECEIVER_STATE = [
    "_RTCRtpReceiver__started",
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__rtcp_task",
    "_RTCRtpReceiver__remote_streams",
    "_RTCRtpReceiver__rtcp_ssrc",
    "_RTCRtpReceiver__decoder_thread",
]


async def test_receiver_private_state() -> None:
    receiver = RTCRtpReceiver("video", FakeDtls())  # type: ignore[arg-type]
    state = vars(receiver)
    for name in RECEIVER_STATE:
        assert name in state, name
    assert state["_RTCRtpReceiver__started"] is False
    assert state["_RTCRtpReceiver__codecs"] == {}
    assert state["_RTCRtpReceiver__rtcp_task"] is None
    assert state["_RTCRtpReceiver__remote_streams"] == {}
    assert state["_RTCRtpReceiver__rtcp_ssrc"] is None
    assert state["_RTCRtpReceiver__decoder_thread"] is None
    receiver._set_rtcp_ssrc(0xABC)
    assert receiver._RTCRtpReceiver__rtcp_ssrc == 0xABC  # type: ignore[attr-defined]
    assert receiver._enabled is True


def test_receiver_private_methods() -> None:
    for name, expected in [
        ("_run_rtcp", ["self"]),
        ("_send_rtcp", ["self", "packet"]),
        ("_send_rtcp_pli", ["self", "media_ssrc"]),
        ("_send_rtcp_nack", ["self", "media_ssrc", "lost"]),
    ]:
        method = getattr(RTCRtpReceiver, name)
        assert inspect.iscoroutinefunction(method), name
        assert params(method) == expected, name
    # What wire.quiet_receiver replaces: receive() starts the decoder thread, registers the
    # receiver on its transport and starts the RTCP task.
    receive = source(RTCRtpReceiver.receive)
    assert params(RTCRtpReceiver.receive) == ["self", "parameters"]
    assert "threading.Thread(" in receive
    assert "self.__transport._register_rtp_receiver(self, parameters)" in receive
    assert "asyncio.ensure_future(self._run_rtcp())" in receive
    assert "self.__started = True" in receive
    # RRs are built from __remote_streams and need __rtcp_ssrc.
    run_rtcp = source(RTCRtpReceiver._run_rtcp)
    assert "self.__remote_streams.items()" in run_rtcp
    assert "RtcpRrPacket(ssrc=self.__rtcp_ssrc" in run_rtcp


async def test_receiver_feedback_reaches_the_transport() -> None:
    transport = FakeDtls()
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    # Without an RTCP SSRC nothing is sent.
    await wire.send_pli(receiver, 0x2222)
    await wire.send_remb(receiver, 1, [1])
    assert transport.sent == []

    receiver._set_rtcp_ssrc(0x1111)
    await wire.send_pli(receiver, 0x2222)
    await wire.send_nack(receiver, 0x2222, [7, 5, 6])
    await wire.send_remb(receiver, 300_000, [0x2222])
    pli, nack, remb = transport.rtcp()
    assert isinstance(pli, RtcpPsfbPacket)
    assert (pli.fmt, pli.ssrc, pli.media_ssrc) == (RTCP_PSFB_PLI, 0x1111, 0x2222)
    assert isinstance(nack, RtcpRtpfbPacket)
    assert (nack.fmt, nack.ssrc, nack.media_ssrc) == (RTCP_RTPFB_NACK, 0x1111, 0x2222)
    assert nack.lost == [5, 6, 7]
    assert isinstance(remb, RtcpPsfbPacket)
    assert (remb.fmt, remb.ssrc, remb.media_ssrc) == (RTCP_PSFB_APP, 0x1111, 0)
    assert unpack_remb_fci(remb.fci) == (300_000, [0x2222])

    # A closed transport: _send_rtcp swallows the ConnectionError.
    transport.fail = True
    await wire.send_pli(receiver, 0x2222)


async def test_send_nack_tolerates_duplicate_sequence_numbers() -> None:
    """A subscriber's NACK may list a sequence number twice; aiortc's NACK serializer fails
    on a repeated first entry (negative shift), so wire.send_nack must not pass one on."""
    transport = FakeDtls()
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    receiver._set_rtcp_ssrc(1)
    await wire.send_nack(receiver, 2, [9, 9, 10, 9])
    (nack,) = transport.rtcp()
    assert nack.lost == [9, 10]


@pytest.mark.timeout(30)
async def test_quiet_receiver_starts_no_decoder_and_reports_through_the_connection() -> None:
    transport = FakeDtls()
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    receiver._set_rtcp_ssrc(0x1111)
    wire.quiet_receiver(receiver)
    decoders_before = sum(t.name.endswith("-decoder") for t in threading.enumerate())
    parameters = RTCRtpReceiveParameters(codecs=[VP8, RTX], muxId="1")
    await receiver.receive(parameters)
    await receiver.receive(parameters)  # idempotent
    try:
        assert receiver._RTCRtpReceiver__started is True  # type: ignore[attr-defined]
        assert receiver._RTCRtpReceiver__decoder_thread is None  # type: ignore[attr-defined]
        assert receiver._RTCRtpReceiver__codecs == {97: VP8, 98: RTX}  # type: ignore[attr-defined]
        assert transport.receivers == [(receiver, parameters)]
        assert sum(t.name.endswith("-decoder") for t in threading.enumerate()) == decoders_before
        assert wire.receiver_report(receiver) is None  # nothing received yet

        stats = StreamStats(90000)
        wire.register_stats(receiver, 0x2222, stats)
        for seq in (100, 101, 103):
            stats.add(seq, seq * 3000)
        # aiortc's own statistics read ours as they would read theirs.
        (inbound,) = [s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp"]
        assert (inbound.ssrc, inbound.packetsReceived, inbound.packetsLost) == (0x2222, 3, 1)
        # The publisher's sender report, as aiortc's receiver notes it (LSR for the report).
        sr = RtcpSrPacket(
            ssrc=0x2222,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=0x0123456789ABCDEF,
                rtp_timestamp=1,
                packet_count=3,
                octet_count=300,
            ),
        )
        await receiver._handle_rtcp_packet(sr)
        await asyncio.sleep(0.05)

        report = wire.receiver_report(receiver)
        assert report is not None
        assert report.ssrc == 0x1111
        (block,) = report.reports
        assert isinstance(block, RtcpReceiverInfo)
        assert block.ssrc == 0x2222
        assert block.highest_sequence == 103
        assert block.packets_lost == 1
        assert block.lsr == 0x456789AB  # the middle 32 bits of the NTP time
        assert 0 < block.dlsr < 65536  # held for a fraction of a second
        # It round-trips through aiortc's parser, the form it goes out in.
        (parsed,) = RtcpPacket.parse(bytes(report))
        assert isinstance(parsed, RtcpRrPacket)
        assert parsed.reports[0].highest_sequence == 103
        # Across the sequence wrap the report carries the extended number (RFC 3550 6.4.1).
        for seq in (30000, 60000, 65535, 1):  # forward, each less than half the space on
            stats.add(seq, seq * 3000)
        wrapped = wire.receiver_report(receiver)
        assert wrapped is not None
        assert wrapped.reports[0].highest_sequence == (1 << 16) + 1
        # The receiver sends nothing of its own: the connection's compound report carries it.
        await asyncio.sleep(1.6)  # aiortc's own loop would have sent within 0.5-1.5 s
        assert transport.rtcp() == []
    finally:
        await asyncio.wait_for(receiver.stop(), 2)
    assert transport.receivers == []


# --- RTCRtpSender --------------------------------------------------------------------------------

SENDER_STATE = [
    "_RTCRtpSender__started",
    "_RTCRtpSender__rtt",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
    "_RTCRtpSender__encoder",
    "_RTCRtpSender__rtp_header_extensions_map",
]


async def test_sender_private_state() -> None:
    sender = RTCRtpSender(wire.SilentTrack("video"), FakeDtls())  # type: ignore[arg-type]
    assert isinstance(sender._ssrc, int)
    assert isinstance(sender._rtx_ssrc, int)
    assert isinstance(sender._stream_id, str)
    state = vars(sender)
    for name in SENDER_STATE:
        assert name in state, name
    assert state["_RTCRtpSender__started"] is False
    assert state["_RTCRtpSender__rtt"] is None
    assert state["_RTCRtpSender__encoder"] is None
    assert (
        state["_RTCRtpSender__ntp_timestamp"],
        state["_RTCRtpSender__rtp_timestamp"],
        state["_RTCRtpSender__octet_count"],
        state["_RTCRtpSender__packet_count"],
    ) == (0, 0, 0, 0)
    assert inspect.iscoroutinefunction(RTCRtpSender._handle_rtcp_packet)
    assert params(RTCRtpSender._handle_rtcp_packet) == ["self", "packet"]
    assert not wire.sender_ready(sender)


def test_sender_waits_for_a_frame_before_making_an_encoder() -> None:
    """The SilentTrack guarantee: _run_rtp awaits track.recv() before get_encoder."""
    run_rtp = source(RTCRtpSender._run_rtp)
    assert "await self._next_encoded_frame(codec)" in run_rtp
    assert "get_encoder" not in run_rtp
    next_frame = source(RTCRtpSender._next_encoded_frame)
    recv_at = next_frame.index("await self.__track.recv()")
    encoder_at = next_frame.index("get_encoder(codec)")
    assert recv_at < encoder_at
    # Nothing else in the sender makes an encoder.
    makers = [
        name
        for name, member in vars(RTCRtpSender).items()
        if inspect.isfunction(member) and "get_encoder(" in source(member)
    ]
    assert makers == ["_next_encoded_frame"]


def test_sender_starts_its_report_task_through_the_instance() -> None:
    """wire.quiet_sender_reports replaces _run_rtcp on the instance: send() must call it
    through self, and stop() waits on the two events the stand-in keeps."""
    send = source(RTCRtpSender.send)
    assert "self.__transport._register_rtp_sender(self, parameters)" in send
    assert "self._run_rtp(parameters.codecs[0])" in send
    assert "self._run_rtcp()" in send
    assert "self.__cname = parameters.rtcp.cname" in send
    stop = source(RTCRtpSender.stop)
    assert "self.__rtcp_started.wait()" in stop
    assert "self.__rtcp_exited.wait()" in stop
    # The round-trip time comes from the LSR we note in wire.sender_report.
    handle = source(RTCRtpSender._handle_rtcp_packet)
    assert "self.__lsr == report.lsr" in handle
    assert "self.__lsr_time" in handle


@pytest.mark.timeout(30)
async def test_silent_sender_never_encodes_and_reports_through_the_connection() -> None:
    transport = FakeDtls()
    track = wire.SilentTrack("video")
    sender = RTCRtpSender(track, transport)  # type: ignore[arg-type]
    wire.quiet_sender_reports(sender)
    parameters = RTCRtpSendParameters(
        codecs=[VP8, RTX],
        headerExtensions=HEADER_EXTENSIONS["video"],
        muxId="3",
        rtcp=RTCRtcpParameters(cname="courtlink"),
    )
    await sender.send(parameters)
    try:
        assert transport.senders == [sender]
        assert wire.sender_ready(sender)
        assert wire.sender_cname(sender) == "courtlink"
        report = wire.sender_report(sender, 0x01020304, 3, 300)
        assert report.ssrc == sender._ssrc
        assert report.sender_info.packet_count == 3
        assert report.sender_info.octet_count == 300
        assert report.sender_info.rtp_timestamp == 0x01020304
        assert report.sender_info.ntp_timestamp > 0
        lsr = sender._RTCRtpSender__lsr  # type: ignore[attr-defined]
        assert lsr == (report.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
        sdes = wire.source_description("courtlink", [sender._ssrc])
        (parsed_sr, parsed_sdes) = RtcpPacket.parse(bytes(report) + bytes(sdes))
        assert isinstance(parsed_sr, RtcpSrPacket)
        assert parsed_sdes.chunks[0].items == [(1, b"courtlink")]
        assert sender._RTCRtpSender__encoder is None  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(track.recv(), 0.05)
        await asyncio.sleep(1.6)  # aiortc's own loop would have sent within 0.5-1.5 s
        assert transport.rtcp() == []
    finally:
        await asyncio.wait_for(sender.stop(), 2)
    assert sender._RTCRtpSender__encoder is None  # type: ignore[attr-defined]
    assert transport.senders == []


async def test_sender_feedback_hook_and_round_trip_time() -> None:
    sender = RTCRtpSender(wire.SilentTrack("video"), FakeDtls())  # type: ignore[arg-type]
    passed_on: list[Any] = []
    original = sender._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        passed_on.append(packet)
        await original(packet)

    sender._handle_rtcp_packet = spy  # type: ignore[method-assign]
    got: list[tuple[str, Any]] = []

    async def handler(kind: str, value: Any) -> None:
        got.append((kind, value))
        if kind == "remb" and value[0] == 666:
            raise RuntimeError("a broken handler must not reach aiortc")

    wire.hook_sender_feedback(sender, handler)
    ssrc = sender._ssrc
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=ssrc))
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_FIR, ssrc=1, media_ssrc=ssrc))
    # aiortc's parser does not wrap: pid 65535 with the next bit set reads as 65536.
    nack_bytes = bytes(RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ssrc, lost=[65535]))
    nack_bytes = nack_bytes[:-2] + b"\x00\x01"  # BLP: the packet after 65535
    (nack,) = RtcpPacket.parse(nack_bytes)
    assert nack.lost == [65535, 65536]
    await sender._handle_rtcp_packet(nack)
    remb = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(250_000, [ssrc])
    )
    await sender._handle_rtcp_packet(remb)
    not_remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=b"ABCDxxxx")
    await sender._handle_rtcp_packet(not_remb)
    broken = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(666, [1]))
    await sender._handle_rtcp_packet(broken)
    assert got == [
        ("keyframe", None),
        ("keyframe", None),
        ("nack", [65535, 0]),
        ("remb", (250_000, [ssrc])),
        ("remb", (666, [1])),
    ]
    assert passed_on == []

    # Receiver reports go on to aiortc, which derives the round-trip time from LSR/DLSR.
    sent_at = time.time() - 0.25
    sender._RTCRtpSender__lsr = 0x12345678  # type: ignore[attr-defined]
    sender._RTCRtpSender__lsr_time = sent_at  # type: ignore[attr-defined]
    report = RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=64,  # a quarter
        packets_lost=0,
        highest_sequence=1,
        jitter=0,
        lsr=0x12345678,
        dlsr=65536 // 10,  # the subscriber held it 0.1 s
    )
    other = RtcpReceiverInfo(
        ssrc=ssrc + 1,
        fraction_lost=255,
        packets_lost=0,
        highest_sequence=1,
        jitter=0,
        lsr=0,
        dlsr=0,
    )
    rr = RtcpRrPacket(ssrc=1, reports=[report, other])
    await sender._handle_rtcp_packet(rr)
    assert passed_on == [rr]
    # The loss the subscriber reports on this sender (and not on another) reaches the handler.
    assert got[-1] == ("loss", (0.25, 1, 0))
    rtt = wire.sender_rtt(sender)
    assert rtt is not None
    assert 0.1 < rtt < 1.0


def test_random_sequence_numbers_are_srtp_safe() -> None:
    values = [random_sequence_number() for _ in range(2000)]
    assert all(0 <= v < 32768 for v in values)
    assert all(0 <= random32() < 2**32 for _ in range(100))


# --- RTCRtpTransceiver / RTCPeerConnection -------------------------------------------------------


async def test_transceiver_codecs_and_offer_details() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        own = pc.addTransceiver("video", direction="recvonly")
        slot = pc.addTransceiver(wire.SilentTrack("video"), direction="sendonly")
        slot.sender._stream_id = "seat-creditor"  # read when the offer is made
        audio = pc.addTransceiver(wire.SilentTrack("audio"), direction="sendonly")
        assert own._codecs == []
        assert own.receiver._RTCRtpReceiver__rtcp_ssrc == own.sender._ssrc  # type: ignore[attr-defined]
        for transceiver in (own, slot):
            transceiver.setCodecPreferences(wire.codec_preferences("video", "vp8"))
        audio.setCodecPreferences(wire.codec_preferences("audio", "vp8"))
        own.setCodecPreferences(wire.codec_preferences("video", "h264"))
        own.setCodecPreferences(wire.codec_preferences("video", "vp8"))
        offer = await pc.createOffer()
    finally:
        await pc.close()
    sdp = offer.sdp
    assert "a=msid:seat-creditor " in sdp
    assert "a=rtpmap:97 VP8/90000" in sdp
    assert "a=rtpmap:98 rtx/90000" in sdp
    assert "a=fmtp:98 apt=97" in sdp
    assert "a=rtpmap:96 opus/48000/2" in sdp
    assert f"a=ssrc-group:FID {slot.sender._ssrc} {slot.sender._rtx_ssrc}" in sdp
    assert "H264" not in sdp
    assert hasattr(own, "_headerExtensions")


def test_connect_starts_senders_and_receivers_by_direction() -> None:
    connect = source(PeerConnectionClass._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    send_at = connect.index('if transceiver.currentDirection in ["sendonly", "sendrecv"]:')
    receive_at = connect.index('if transceiver.currentDirection in ["recvonly", "sendrecv"]:')
    assert connect.index("transceiver.sender.send(", send_at) < receive_at
    assert connect.index("transceiver.receiver.receive(", receive_at) > receive_at


def test_codec_catalogue_and_header_extension_ids() -> None:
    """media.rtp hard-codes the extension ids; Producer/Consumer rely on unique PTs."""
    ids = {ext.uri: ext.id for kind in ("audio", "video") for ext in HEADER_EXTENSIONS[kind]}
    assert ids == {
        "urn:ietf:params:rtp-hdrext:sdes:mid": EXT_MID,
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level": EXT_AUDIO_LEVEL,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": EXT_ABS_SEND_TIME,
    }
    audio = {c.mimeType: c.payloadType for c in CODECS["audio"]}
    assert audio["audio/opus"] == 96
    video = [(c.mimeType, c.payloadType, dict(c.parameters)) for c in CODECS["video"]]
    assert video[0] == ("video/VP8", 97, {})
    assert video[1] == ("video/rtx", 98, {"apt": 97})
    payload_types = [c.payloadType for kind in ("audio", "video") for c in CODECS[kind]]
    assert len(payload_types) == len(set(payload_types))


# --- our receiver statistics and NACK gaps against aiortc's ----------------------------------


# Reordered, duplicated, lost and across the sequence wrap; (seq, timestamp, arrival seconds).
TRAFFIC = [
    (65530, 0, 0.000),
    (65531, 3000, 0.031),
    (65533, 6000, 0.070),
    (65532, 6000, 0.071),  # late
    (65534, 9000, 0.105),
    (65534, 9000, 0.106),  # duplicate
    (0, 12000, 0.140),
    (3, 18000, 0.199),  # 1 and 2 lost
    (4, 21000, 0.260),
    (2, 15000, 0.261),  # late
    (5, 21000, 0.262),  # same frame
    (9, 30000, 0.330),
]


def test_stream_stats_count_what_aiortcs_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """media._forward.StreamStats (C) stands in for aiortc's StreamStatistics in the receiver's
    ``__remote_streams``: fed the same packets at the same times, it reads the same."""
    assert set(re.findall(r"packet\.(\w+)", source(StreamStatistics.add))) == {
        "sequence_number",
        "timestamp",
    }
    now = [0.0]
    monkeypatch.setattr(aiortc.rtcrtpreceiver, "time", SimpleNamespace(time=lambda: now[0]))
    theirs, ours = StreamStatistics(90000), StreamStats(90000)
    base = 1_800_000_000.0  # a wall-clock time, as aiortc's would be
    assert (ours.base_seq, ours.max_seq, ours.packets_received) == (None, None, 0)
    for seq, timestamp, arrival in TRAFFIC:
        now[0] = base + arrival
        theirs.add(header(seq, ts=timestamp))  # type: ignore[arg-type]
        ours.add(seq, timestamp, int((base + arrival) * 90000))
        for name in ("packets_received", "base_seq", "max_seq", "cycles"):
            assert getattr(ours, name) == getattr(theirs, name), name
        assert (ours.packets_expected, ours.packets_lost) == (
            theirs.packets_expected,
            theirs.packets_lost,
        )
        assert ours.jitter == theirs.jitter
    assert ours.cycles == 1 << 16
    assert ours.packets_lost == 4  # 65535, 1, 6, 7 and 8 lost, less the duplicate (RFC 3550)
    assert ours.jitter > 0
    # fraction_lost starts a new interval each time it is read, in both.
    assert ours.fraction_lost == theirs.fraction_lost > 0
    assert ours.fraction_lost == theirs.fraction_lost == 0
    with pytest.raises(ValueError, match="16-bit sequence number"):
        ours.add(70000, 0)
    with pytest.raises(ValueError, match="clock rate"):
        StreamStats(0)


def test_video_receivers_hold_frames_behind_a_hole_for_a_receiver_window() -> None:
    """courtlink.media.consumer.RECEIVER_WINDOW is the capacity of an aiortc video receiver's jitter
    buffer (our headless participant's), and a jump of a whole window past the newest packet
    makes it drop everything older at once."""
    assert "JitterBuffer(capacity=512, is_video=True)" in source(RTCRtpReceiver.__init__)
    jitter = JitterBuffer(capacity=RECEIVER_WINDOW, is_video=True)

    def packet(seq: int, ts: int) -> RtpPacket:
        made = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, payload=b"\x10")
        made._data = b"\x10"  # type: ignore[attr-defined]  # what the receiver sets: the depacketized payload
        return made

    for seq in range(100, 110):
        jitter.add(packet(seq, seq))
    # 110 and 111 never come: frames after the hole are held back ...
    for seq in range(112, 140):
        assert jitter.add(packet(seq, seq))[1] is None
    # ... until a packet a whole window ahead of the newest sent arrives: then the next
    # complete frame is the one that starts there.
    start = 139 + 1 + RECEIVER_WINDOW
    jitter.add(packet(start, 5000))
    _pli, frame = jitter.add(packet(start + 1, 5001))
    assert frame is not None
    assert frame.timestamp == 5000


def test_gaps_find_the_packets_aiortcs_nack_generator_would() -> None:
    """media.nack.Gaps (C) does the job of aiortc's NackGenerator with less work: on the same
    stream, the same packets are missing and the same packets open a gap."""
    assert set(re.findall(r"packet\.(\w+)", source(NackGenerator.add))) == {"sequence_number"}
    theirs, ours = NackGenerator(), Gaps()
    seqs = [65530, 65531, 65533, 65532, 65534, 65534, 0, 3, 4, 2, 5, 9, 7, 20, 10, 11]
    for seq in seqs:
        opened = ours.add(seq)
        assert opened == theirs.add(header(seq)), seq  # type: ignore[arg-type]
        assert ours.missing == theirs.missing, seq
    assert ours.missing == {65535, 1, 6, 8} | set(range(12, 20))


def test_remote_bitrate_estimator_signature() -> None:
    assert params(RemoteBitrateEstimator.add) == [
        "self",
        "arrival_time_ms",
        "abs_send_time",
        "payload_size",
        "ssrc",
    ]
    estimator = RemoteBitrateEstimator()
    results = [
        estimator.add(
            abs_send_time=(i * 33 * 262) & 0xFFFFFF,
            arrival_time_ms=1000 + i * 33,
            payload_size=1200,
            ssrc=5,
        )
        for i in range(100)
    ]
    estimates = [r for r in results if r is not None]
    assert estimates
    bitrate, ssrcs = estimates[-1]
    assert bitrate > 0
    assert ssrcs == [5]


def test_remb_fci_round_trip() -> None:
    assert unpack_remb_fci(pack_remb_fci(1_000_000, [1, 2])) == (1_000_000, [1, 2])
    with pytest.raises(ValueError, match="REMB"):
        unpack_remb_fci(b"ABCD\x00\x00\x00\x00")


# --- codec contexts ------------------------------------------------------------------------------


def test_codec_contexts_are_only_made_through_get_decoder_and_get_encoder() -> None:
    """The end-to-end test below spies on these two module globals."""
    assert aiortc.rtcrtpreceiver.get_decoder is get_decoder
    assert aiortc.rtcrtpsender.get_encoder is get_encoder
    worker = source(aiortc.rtcrtpreceiver.decoder_worker)
    assert params(aiortc.rtcrtpreceiver.decoder_worker)[1] == "input_q"
    assert "decoder = get_decoder(codec)" in worker
    assert "self.__encoder = get_encoder(codec)" in source(RTCRtpSender._next_encoded_frame)


# --- aioice (media/network.py) -------------------------------------------------------------------


def test_aioice_host_addresses_are_looked_up_at_gathering() -> None:
    assert params(aioice.ice.get_host_addresses) == ["use_ipv4", "use_ipv6"]
    gather = source(aioice.ice.Connection.gather_candidates)
    assert "get_host_addresses(" in gather
    assert "use_ipv4=self._use_ipv4" in gather
    assert "use_ipv6=self._use_ipv6" in gather
    text = source(aioice.ice.Connection.get_component_candidates)
    assert "loop.create_datagram_endpoint(" in text
    assert "lambda: StunProtocol(self), local_addr=(address, 0)" in text


async def test_aioice_binds_host_sockets_through_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[str, Any]] = []
    original = loop.create_datagram_endpoint

    async def spy(factory: Any, local_addr: Any = None, **kwargs: Any) -> Any:
        calls.append((getattr(factory, "__module__", ""), local_addr))
        return await original(factory, local_addr=local_addr, **kwargs)

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    monkeypatch.setattr(loop, "create_datagram_endpoint", spy)
    connection = aioice.ice.Connection(ice_controlling=False, components=1)
    try:
        await connection.gather_candidates()
        assert [c.host for c in connection.local_candidates] == ["127.0.0.1"]
    finally:
        await connection.close()
    assert calls == [("aioice.ice", ("127.0.0.1", 0))]


async def test_network_policy_binds_in_range_and_restores() -> None:
    loop = asyncio.get_running_loop()
    saved_hosts = aioice.ice.get_host_addresses
    saved_endpoint = loop.create_datagram_endpoint
    policy = NetworkPolicy(host_address="127.0.0.1", port_min=41020, port_max=41021)
    policy.install()
    connections = [aioice.ice.Connection(ice_controlling=False, components=1) for _ in range(3)]
    other = None
    try:
        for connection in connections:
            await connection.gather_candidates()
        bound = [[(c.host, c.port) for c in conn.local_candidates] for conn in connections]
        assert sorted(bound[:2]) == [[("127.0.0.1", 41020)], [("127.0.0.1", 41021)]]
        assert bound[2] == []  # the range is exhausted: no candidate rather than a stray port
        # Sockets that are not aioice's host sockets are left alone.
        other, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        assert other.get_extra_info("sockname")[1] not in (41020, 41021)
    finally:
        if other is not None:
            other.close()
        for connection in connections:
            await connection.close()
        policy.uninstall()
    assert aioice.ice.get_host_addresses is saved_hosts
    assert loop.create_datagram_endpoint == saved_endpoint


@pytest.mark.parametrize(("low", "high"), [(80, 90), (50000, 40000), (0, 41000), (60000, 70000)])
def test_network_policy_rejects_bad_ranges(low: int, high: int) -> None:
    with pytest.raises(ConfigError):
        NetworkPolicy(port_min=low, port_max=high)


def test_network_policy_without_settings_changes_nothing() -> None:
    saved = aioice.ice.get_host_addresses
    policy = NetworkPolicy()
    policy.install()
    assert aioice.ice.get_host_addresses is saved
    policy.uninstall()
    assert aioice.ice.get_host_addresses is saved


# =================================================================================================
# End to end: media.Sfu between two aiortc clients
# =================================================================================================

SESSION = "s-contract"
PORTS = range(41000, 41011)
FPS = 20
RED = (200, 30, 30)
YELLOW = (200, 200, 30)
_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", re.MULTILINE)


class ColorTrack(MediaStreamTrack):
    """A camera filming a wall of one colour."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int]) -> None:
        super().__init__()
        self.rgb = bytes(rgb)
        self.count = 0
        self.start: float | None = None

    async def recv(self) -> VideoFrame:
        if self.start is None:
            self.start = time.monotonic()
        self.count += 1
        await asyncio.sleep(max(0.0, self.start + self.count / FPS - time.monotonic()))
        frame = VideoFrame(160, 120, "rgb24")
        frame.planes[0].update(self.rgb * (frame.planes[0].buffer_size // 3))
        frame.pts = self.count * (90000 // FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


def near(rgb: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 30) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, expected, strict=True))


@dataclass
class Client:
    """A participant's browser, played by aiortc with real encoders and decoders."""

    pid: str
    seat: Seat
    pc: RTCPeerConnection
    offer: dict[str, Any]
    frames: dict[str, list[tuple[float, tuple[int, int, int]]]] = field(default_factory=dict)
    audio_frames: dict[str, int] = field(default_factory=dict)
    keyframe_requests: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def slot(self, seat: Seat, kind: str) -> str:
        return next(
            s["mid"] for s in self.offer["slots"] if s["seat"] == seat and s["kind"] == kind
        )

    def transceiver(self, mid: str) -> Any:
        return next(t for t in self.pc.getTransceivers() if t.mid == mid)

    def seen(self, seat: Seat, since: float = 0.0) -> list[tuple[int, int, int]]:
        return [rgb for at, rgb in self.frames.get(self.slot(seat, "video"), []) if at >= since]

    async def consume(self, mid: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    small = frame.reformat(width=4, height=4, format="rgb24")
                    pixel = bytes(small.planes[0])[:3]
                    self.frames.setdefault(mid, []).append(
                        (time.monotonic(), (pixel[0], pixel[1], pixel[2]))
                    )
                else:
                    self.audio_frames[mid] = self.audio_frames.get(mid, 0) + 1

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        await self.pc.close()


async def join(
    sfu: Sfu, pid: str, seat: Seat, rgb: tuple[int, int, int], video_codec: str = "vp8"
) -> Client:
    offer = await sfu.attach(SESSION, pid, (seat,), video_codec=video_codec)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    client = Client(pid, seat, pc, offer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
    own = offer["own"]
    for transceiver in pc.getTransceivers():
        if transceiver.mid == own["video"]:
            transceiver.sender.replaceTrack(ColorTrack(rgb))
            transceiver.direction = "sendonly"
            keyframe = transceiver.sender._send_keyframe

            def counted(keyframe: Callable[[], None] = keyframe) -> None:
                client.keyframe_requests += 1
                keyframe()

            transceiver.sender._send_keyframe = counted
        elif transceiver.mid == own["audio"]:
            transceiver.sender.replaceTrack(AudioStreamTrack())
            transceiver.direction = "sendonly"
        else:
            track = transceiver.receiver.track
            client.tasks.append(asyncio.ensure_future(client.consume(transceiver.mid, track)))
    await pc.setLocalDescription(await pc.createAnswer())
    await sfu.answer(SESSION, pid, pc.localDescription.sdp)
    route_rtx(pc, offer["sdp"])
    return client


def route_rtx(pc: RTCPeerConnection, offer_sdp: str) -> None:
    """Let the aiortc client route the server's RTX the way a browser does.

    aiortc's RtpRouter registers only a receiver's media SSRC and otherwise routes by payload
    type when exactly one receiver has it. With several video slots on one bundled transport,
    every slot has the same RTX payload type, so aiortc drops the SFU's retransmissions and its
    jitter buffer then stalls until it overflows (a browser binds the RTX SSRC from
    ``a=ssrc-group:FID``). Here the FID pairs of the offer are entered in the client's SSRC
    table, so the tests see whether the retransmissions themselves work.
    """
    groups: dict[str, int] = {}
    for section in offer_sdp.split("\r\nm=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.MULTILINE)
        fid = re.search(r"^a=ssrc-group:FID (\d+) (\d+)", section, re.MULTILINE)
        if mid and fid:
            groups[mid.group(1)] = int(fid.group(2))
    for transceiver in pc.getTransceivers():
        rtx_ssrc = groups.get(transceiver.mid)
        if rtx_ssrc is not None and transceiver.kind == "video":
            router = transceiver.receiver.transport._rtp_router
            router.ssrc_table[rtx_ssrc] = transceiver.receiver


class CodecSpy:
    """Wraps aiortc's get_decoder/get_encoder and notes who asked: the decoder thread's input
    queue, the sender. Client-side calls go through; server-side calls are failures."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decoder_queues: list[Any] = []
        self.encoder_senders: list[Any] = []
        real_decoder = aiortc.rtcrtpreceiver.get_decoder
        real_encoder = aiortc.rtcrtpsender.get_encoder

        def spy_decoder(codec: Any) -> Any:
            self.decoder_queues.append(sys._getframe(1).f_locals.get("input_q"))
            return real_decoder(codec)

        def spy_encoder(codec: Any) -> Any:
            self.encoder_senders.append(sys._getframe(1).f_locals.get("self"))
            return real_encoder(codec)

        monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", spy_decoder)
        monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", spy_encoder)


@dataclass
class Call:
    sfu: Sfu
    judge: Client
    creditor: Client
    codecs: CodecSpy
    holders: dict[Seat, str]

    @property
    def router(self) -> Any:
        return self.sfu.routers[SESSION]

    def peer(self, pid: str) -> Peer:
        peer: Peer = self.router.peers[pid]
        return peer

    def consumer(self, pid: str, seat: Seat, kind: str) -> Consumer:
        return self.peer(pid).consumers[(seat, kind)]

    def producer(self, pid: str, kind: str) -> Producer:
        return self.peer(pid).producers[kind]

    async def flowing(self) -> None:
        """Both see each other in the right colour."""
        await wait_for(
            lambda: (
                any(near(c, YELLOW) for c in self.judge.seen(Seat.CREDITOR))
                and any(near(c, RED) for c in self.creditor.seen(Seat.JUDGE))
            ),
            "each client to decode the other's video",
        )

    async def route(self, moderation: Moderation) -> None:
        await self.sfu.route(SESSION, self.holders, moderation)


@pytest.fixture
async def call(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Call]:
    """Judge and creditor in a session, VP8 unless the test asks for H.264 (indirect param)."""
    video_codec = getattr(request, "param", "vp8")
    codecs = CodecSpy(monkeypatch)
    sfu = Sfu(
        MediaSettings(
            host_address="127.0.0.1",
            port_min=PORTS.start,
            port_max=PORTS.stop - 1,
            feedback_interval=0.5,
            # The clients in this process decode; the spy above checks the server side instead.
            guard_codecs=False,
        )
    )
    clients: list[Client] = []
    try:
        clients.append(await join(sfu, "pa", Seat.JUDGE, RED, video_codec))
        clients.append(await join(sfu, "pb", Seat.CREDITOR, YELLOW, video_codec))
        holders = {Seat.JUDGE: "pa", Seat.CREDITOR: "pb"}
        await sfu.route(SESSION, holders, Moderation(lobby=False))
        yield Call(sfu, clients[0], clients[1], codecs, holders)
    finally:
        for client in clients:
            await client.close()
        await sfu.close()


def server_objects(call: Call) -> tuple[list[Any], list[Any]]:
    receivers, senders = [], []
    for peer in call.router.peers.values():
        for transceiver in peer.pc.getTransceivers():
            receivers.append(transceiver.receiver)
            senders.append(transceiver.sender)
    return receivers, senders


BOTH_CODECS = pytest.mark.parametrize("call", ["vp8", "h264"], indirect=True)
NEGOTIATED = {
    "vp8": [("video/VP8", 97), ("video/rtx", 98)],
    "h264": [("video/H264", 101), ("video/rtx", 102)],
}


@pytest.mark.timeout(60)
@BOTH_CODECS
async def test_e2e_forwarding_without_server_codecs(call: Call) -> None:
    await call.flowing()
    judge, creditor = call.judge, call.creditor

    # transceiver._codecs holds what was negotiated, with the offer's payload types.
    expected = NEGOTIATED[call.router.video_codec]
    for peer in call.router.peers.values():
        for (_, kind), consumer in peer.consumers.items():
            got = [
                (c.mimeType, c.payloadType) for c in wire.negotiated_codecs(consumer.transceiver)
            ]
            if kind == "video":
                assert got == expected
                assert consumer.rtx_pt == {expected[0][1]: expected[1][1]}
            else:
                assert got == [("audio/opus", 96)]

    # Only the slot of the seat that is held carries media.
    for client, other in ((judge, Seat.CREDITOR), (creditor, Seat.JUDGE)):
        for seat in (Seat.OFFICER, Seat.DEBTOR):
            assert client.seen(seat) == []
        assert client.seen(other)
    # The colours are right throughout, not just once.
    assert all(near(c, YELLOW) for c in judge.seen(Seat.CREDITOR))
    assert all(near(c, RED) for c in creditor.seen(Seat.JUDGE))

    video_to_judge = call.consumer("pa", Seat.CREDITOR, "video")
    audio_to_creditor = call.consumer("pb", Seat.JUDGE, "audio")
    before = video_to_judge.forwarded
    assert before > 0
    await wait_for(lambda: video_to_judge.forwarded > before + 5, "forwarding to go on")
    await wait_for(
        lambda: (
            audio_to_creditor.forwarded > 10
            and creditor.audio_frames.get(creditor.slot(Seat.JUDGE, "audio"), 0) > 10
        ),
        "audio to be forwarded and decoded",
    )
    assert call.producer("pa", "video").packets > 0
    assert call.producer("pa", "audio").packets > 0

    # The connection's compound report carries a sender report for what we forwarded; the
    # subscriber's aiortc receiver takes it (it notes the LSR to answer with), and receiver
    # reports reach aiortc both ways.
    sender = video_to_judge.sender
    compound = RtcpPacket.parse(call.peer("pa").reports())
    reports = {p.ssrc: p for p in compound if isinstance(p, RtcpSrPacket)}
    assert reports[sender._ssrc].sender_info.packet_count == video_to_judge.forwarded
    assert reports[sender._ssrc].sender_info.octet_count == video_to_judge.octets > 0
    assert any(isinstance(p, RtcpRrPacket) for p in compound)  # its own tracks' reports
    slot_receiver = judge.transceiver(judge.slot(Seat.CREDITOR, "video")).receiver
    await wait_for(
        lambda: sender._ssrc in slot_receiver._RTCRtpReceiver__lsr,  # type: ignore[attr-defined]
        "the subscriber to take a sender report from the server",
    )
    await wait_for(
        lambda: call.peer("pa").quality()["rtt_ms"] is not None,
        "a round-trip time from the subscriber's receiver reports",
    )
    publisher_sender = judge.transceiver(judge.offer["own"]["video"]).sender
    await wait_for(
        lambda: publisher_sender._RTCRtpSender__rtt is not None,
        "the publisher to get receiver reports from the server",
    )
    # Bandwidth feedback: the subscriber's REMB (driven by our abs-send-time) reaches the
    # consumer, and the producer passes the lowest rate on to the publisher.
    await wait_for(lambda: video_to_judge.remb_bps is not None, "the subscriber's REMB")
    assert await call.producer("pb", "video").send_remb() is not None

    # No codec anywhere on the server: no decoder thread, no encoder, no get_*coder call.
    receivers, senders = server_objects(call)
    assert len(receivers) == len(senders) == 16
    for receiver in receivers:
        assert receiver._RTCRtpReceiver__decoder_thread is None
    for server_sender in senders:
        assert server_sender._RTCRtpSender__encoder is None
    server_queues = {id(r._RTCRtpReceiver__decoder_queue) for r in receivers}
    assert call.codecs.decoder_queues, "the spy saw no client decoders"
    assert call.codecs.encoder_senders, "the spy saw no client encoders"
    assert not [q for q in call.codecs.decoder_queues if id(q) in server_queues]
    server_senders = {id(s) for s in senders}
    assert not [s for s in call.codecs.encoder_senders if id(s) in server_senders]
    client_decoders = sum(
        t.receiver._RTCRtpReceiver__decoder_thread is not None
        for c in (judge, creditor)
        for t in c.pc.getTransceivers()
    )
    decoder_threads = [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    assert len(decoder_threads) == client_decoders

    # The network policy: the server's candidates are on 127.0.0.1 in the port range, and the
    # slots are announced as one stream per seat.
    for client, other in ((judge, "creditor"), (creditor, "judge")):
        candidates = _CANDIDATE.findall(client.offer["sdp"])
        assert candidates
        for host, port in candidates:
            assert host == "127.0.0.1"
            assert int(port) in PORTS
        assert f"a=msid:seat-{other} " in client.offer["sdp"]


@pytest.mark.timeout(60)
async def test_e2e_subscriber_nack_is_answered_from_history(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    await call.flowing()
    # The history ring is held by the video slots a publisher feeds, not by empty seats'.
    video = [c for (_, kind), c in call.peer("pb").consumers.items() if kind == "video"]
    assert {c.reserved for c in video} == {True, False}
    assert all(c.reserved == (c.source is not None) for c in video)
    consumer = call.consumer("pb", Seat.JUDGE, "video")
    sender = consumer.sender
    egress = consumer.egress
    assert egress is not None
    dropped: list[int] = []
    repaired: list[int] = []
    seen = 0

    class Lossy:
        """The consumer's egress, losing one packet in six (plaintext RTP goes in)."""

        def send(self, data: bytes) -> bool:
            nonlocal seen
            packet = parse_header(data)
            if packet.ssrc == sender._rtx_ssrc:
                start = packet.payload_start
                repaired.append(int.from_bytes(data[start : start + 2], "big"))
            elif packet.ssrc == sender._ssrc:
                seen += 1
                if seen % 6 == 0 and len(dropped) < 4:
                    dropped.append(packet.sequence_number)
                    return True  # "sent", but lost on the way
            return bool(egress.send(data))

    consumer.egress = Lossy()  # type: ignore[assignment]
    await wait_for(lambda: len(dropped) == 4, "four packets to be dropped")
    await wait_for(lambda: set(dropped) <= set(repaired), "the dropped packets to be resent")
    assert consumer.retransmitted >= 4
    since = time.monotonic()
    await wait_for(lambda: len(call.creditor.seen(Seat.JUDGE, since)) > 5, "decoding to go on")
    assert all(near(c, RED) for c in call.creditor.seen(Seat.JUDGE))


@pytest.mark.timeout(60)
async def test_e2e_publisher_loss_is_recovered_with_nack_and_rtx(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    await call.flowing()
    producer = call.producer("pa", "video")
    peer = call.peer("pa")
    dtls = peer.pc.getTransceivers()[0].receiver.transport
    media_pt, rtx_pt = 97, 98
    dropped: list[int] = []
    recovered: dict[int, int] = {}  # seq -> number of NACKs sent so far when it came back
    nacks: list[list[int]] = []
    seen = 0

    def lossy(data: bytes, arrived_ns: int) -> None:
        nonlocal seen
        packet = parse_header(data)
        if packet.payload_type == rtx_pt and packet.payload_end - packet.payload_start > 2:
            start = packet.payload_start
            recovered.setdefault(int.from_bytes(data[start : start + 2], "big"), len(nacks))
        elif packet.payload_type == media_pt:
            seen += 1
            if seen % 7 == 0 and len(dropped) < 3:
                dropped.append(packet.sequence_number)
                return
        peer._ingress(data, arrived_ns)

    send_nack = wire.send_nack

    def spy_nack(receiver: Any, media_ssrc: int, lost: list[int]) -> Awaitable[None]:
        # Recorded when the NACK is decided (the producer sends it in a task, a moment later).
        nacks.append(sorted(lost))
        return send_nack(receiver, media_ssrc, lost)

    monkeypatch.setattr(wire, "send_nack", spy_nack)
    # Loss on the way in: the fast path's ingress of the publisher's peer, dropping some.
    assert peer._undo_ingress is not None
    peer._undo_ingress()
    undo = fastpath.install_ingress(dtls, lossy)
    assert undo is not None
    try:
        await wait_for(lambda: len(dropped) == 3, "three packets to be dropped")
        await wait_for(lambda: set(dropped) <= set(recovered), "the publisher to resend them")
        # Keep going long enough for later gaps to be reported.
        more = len(nacks)
        await wait_for(lambda: len(nacks) > more or seen > 60, "traffic after recovery")
    finally:
        undo()
        peer._undo_ingress = fastpath.install_ingress(dtls, peer._ingress)
    for seq in dropped:
        assert any(seq in lost for lost in nacks), f"{seq} was never NACKed"
    # A packet that came back is not asked for again.
    for seq, nacks_before in recovered.items():
        for lost in nacks[nacks_before:]:
            assert seq not in lost, f"{seq} NACKed again after it was recovered: {nacks}"
    assert producer.ssrc is not None
    since = time.monotonic()
    await wait_for(lambda: len(call.creditor.seen(Seat.JUDGE, since)) > 5, "decoding to go on")


@pytest.mark.timeout(60)
@BOTH_CODECS
async def test_e2e_keyframe_requests_reach_the_publisher(call: Call) -> None:
    await call.flowing()
    judge, creditor = call.judge, call.creditor
    to_judge = call.consumer("pa", Seat.CREDITOR, "video")
    to_creditor = call.consumer("pb", Seat.JUDGE, "video")
    from_judge = call.producer("pa", "video")
    from_creditor = call.producer("pb", "video")

    # Caucus with the detention side: the creditor is on hold both ways.
    await call.route(Moderation(lobby=False, caucus=Caucus.DETENTION))
    assert to_judge.source is None
    assert to_creditor.source is None
    await asyncio.sleep(0.3)
    frozen = (to_judge.forwarded, to_creditor.forwarded)
    held_at = time.monotonic()
    await asyncio.sleep(0.7)
    assert (to_judge.forwarded, to_creditor.forwarded) == frozen
    assert judge.seen(Seat.CREDITOR, held_at + 0.2) == []
    assert creditor.seen(Seat.JUDGE, held_at + 0.2) == []

    # Back together: the slots are re-fed, wait for a key frame and ask the publishers for one.
    plis = (from_judge.plis_sent, from_creditor.plis_sent)
    requests = (judge.keyframe_requests, creditor.keyframe_requests)
    resumed_at = time.monotonic()
    await call.route(Moderation(lobby=False))
    assert to_judge.source is from_creditor
    assert to_creditor.source is from_judge
    assert from_judge.plis_sent > plis[0]
    assert from_creditor.plis_sent > plis[1]
    await wait_for(
        lambda: judge.keyframe_requests > requests[0] and creditor.keyframe_requests > requests[1],
        "the PLIs to reach both publishing clients",
    )
    await wait_for(
        lambda: (
            len(judge.seen(Seat.CREDITOR, resumed_at)) > 3
            and len(creditor.seen(Seat.JUDGE, resumed_at)) > 3
        ),
        "video to resume after the caucus",
    )
    assert all(near(c, YELLOW) for c in judge.seen(Seat.CREDITOR, resumed_at))
    assert all(near(c, RED) for c in creditor.seen(Seat.JUDGE, resumed_at))

    # A subscriber's own PLI goes to the publisher of that slot (rate-limited server-side).
    await asyncio.sleep(from_judge.pli_interval + 0.1)
    plis_judge, requests_judge = from_judge.plis_sent, judge.keyframe_requests
    slot = creditor.transceiver(creditor.slot(Seat.JUDGE, "video"))
    await slot.receiver._send_rtcp_pli(to_creditor.sender._ssrc)
    await wait_for(lambda: from_judge.plis_sent > plis_judge, "the subscriber's PLI at the SFU")
    await wait_for(lambda: judge.keyframe_requests > requests_judge, "the PLI at the publisher")

    # Muting the creditor stops only the creditor's audio.
    await call.route(Moderation(lobby=False, muted=frozenset({Seat.CREDITOR})))
    assert call.consumer("pa", Seat.CREDITOR, "audio").source is None
    assert to_judge.source is from_creditor
    assert call.consumer("pb", Seat.JUDGE, "audio").source is call.producer("pa", "audio")


@pytest.mark.timeout(60)
async def test_e2e_detach_leaves_nothing_running(call: Call) -> None:
    await call.flowing()
    loop = asyncio.get_running_loop()
    router = call.router
    peers = list(router.peers.values())
    assert len(peers) == 2
    # While the SFU runs, its network policy is in place.
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]

    await call.sfu.detach(SESSION, "pa")
    assert SESSION in call.sfu.routers
    assert "pa" not in router.peers
    assert call.consumer("pb", Seat.JUDGE, "video").source is None
    await call.sfu.detach(SESSION, "pb")
    assert call.sfu.routers == {}
    assert router.closed
    assert router._task is not None
    assert router._task.done()
    for peer in peers:
        assert peer.state == "closed"
        assert peer.pc.connectionState == "closed"
        assert not peer._tasks
        for producer in peer.producers.values():
            assert producer.closed
            assert producer.consumers == []
        for consumer in peer.consumers.values():
            assert consumer.source is None
    await call.sfu.detach(SESSION, "pa")  # nothing left: a no-op

    await call.judge.close()
    await call.creditor.close()
    await call.sfu.close()
    # The network policy is gone with the SFU.
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)
    assert getattr(loop.create_datagram_endpoint, "__self__", None) is loop

    def leftovers() -> list[asyncio.Task[Any]]:
        current = asyncio.current_task()
        return [t for t in asyncio.all_tasks() if t is not current and not t.done()]

    await wait_for(lambda: not leftovers(), "every task to end", 5.0)
