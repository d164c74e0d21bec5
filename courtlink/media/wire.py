"""Everything Courtlink takes from aiortc's insides, in one place.

aiortc gives ICE, DTLS, SRTP and SDP; it has no public API for relaying RTP, so the SFU hooks a
few private points. Each is listed here and covered by tests/media/test_aiortc_contract.py, which
fails loudly when an aiortc upgrade moves one (aiortc is pinned to 1.16.*):

1. ``RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)``: called with each decrypted RTP
   datagram; we replace it on the instance, so aiortc never parses, depacketizes or buffers.
2. ``RTCRtpReceiver.receive``: replaced so no decoder thread starts; the receiver still registers.
   Its statistics (``__remote_streams``) hold our own per-source counters (``register_stats``),
   which feed its ``getStats`` and our receiver reports (item 7).
3. ``RTCRtpReceiver._send_rtcp_pli/_send_rtcp_nack/_send_rtcp`` and ``__rtcp_ssrc``: feedback
   to the publisher.
4. ``RTCRtpSender._handle_rtcp_packet``: wrapped on the instance to take PLI, FIR, NACK and REMB
   from subscribers; receiver reports still reach aiortc (round-trip time).
5. ``RTCDtlsTransport._send_rtp`` (RTCP out), ``RTCRtpSender._ssrc``, ``_rtx_ssrc``,
   ``_stream_id``, ``__rtt`` and ``__started``.
6. ``RTCRtpTransceiver._codecs``: the negotiated codecs and payload types.
7. RTCP reports: ``RTCRtpSender._run_rtcp`` and the receiver's RTCP task are replaced by a
   stand-in that only keeps aiortc's ``__rtcp_started``/``__rtcp_exited`` events (``stop``
   waits on them); the Peer sends one compound report for the whole connection instead
   (media/peer.py), built from ``__cname``, the receiver's ``__remote_streams``, ``__lsr``,
   ``__lsr_time`` and ``__rtcp_ssrc``, and setting the sender's ``__lsr``/``__lsr_time`` so
   aiortc still derives the round-trip time from the subscriber's receiver reports.

A sender is given a ``SilentTrack`` whose ``recv`` never returns: aiortc's sending task then waits
forever before it would create an encoder, and no codec context is ever made.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, clock
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

__all__ = [
    "FeedbackHandler",
    "SilentTrack",
    "codec_preferences",
    "hook_rtp",
    "hook_sender_feedback",
    "negotiated_codecs",
    "quiet_receiver",
    "quiet_sender_reports",
    "receiver_report",
    "register_stats",
    "registered_stats",
    "send_nack",
    "send_pli",
    "send_remb",
    "send_rtcp",
    "sender_cname",
    "sender_report",
    "sender_rtt",
    "source_description",
]

log = logging.getLogger("courtlink.media")

RtpHandler = Callable[[bytes, int], Awaitable[None]]


class SilentTrack(MediaStreamTrack):
    """A track that never yields a frame: the sender stays negotiated but never encodes."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        await asyncio.Future()  # never resolves; cancelled when the sender stops


def codec_preferences(kind: str, video_codec: str) -> list[RTCRtpCodecCapability]:
    """Opus for audio; VP8 (default) or H.264 constrained baseline (42e01f) for video, with RTX."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    if kind == "audio":
        return [c for c in caps if c.mimeType.lower() == "audio/opus"]
    if video_codec == "h264":
        main = [
            c
            for c in caps
            if c.mimeType.lower() == "video/h264"
            and c.parameters.get("profile-level-id") == "42e01f"
        ]
    else:
        main = [c for c in caps if c.mimeType.lower() == "video/vp8"]
    return main + [c for c in caps if c.mimeType.lower() == "video/rtx"]


async def _reports_elsewhere(started: asyncio.Event, exited: asyncio.Event) -> None:
    """Stands in for aiortc's RTCP task of one sender or receiver: the connection's reports go
    out together (media/peer.py). It keeps the two events aiortc's ``stop`` waits on."""
    started.set()
    try:
        await asyncio.Future()
    except asyncio.CancelledError:
        pass
    finally:
        exited.set()


def quiet_receiver(receiver: RTCRtpReceiver) -> None:
    """Stop ``receiver`` from ever starting its decoder thread or its own RTCP task; its
    receiver reports go out in the connection's compound report (``receiver_report``)."""

    async def receive(parameters: Any) -> None:
        if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
            return
        for codec in parameters.codecs:
            receiver._RTCRtpReceiver__codecs[codec.payloadType] = codec  # type: ignore[attr-defined]
        receiver.transport._register_rtp_receiver(receiver, parameters)
        receiver._RTCRtpReceiver__rtcp_task = asyncio.ensure_future(  # type: ignore[attr-defined]
            _reports_elsewhere(
                receiver._RTCRtpReceiver__rtcp_started,  # type: ignore[attr-defined]
                receiver._RTCRtpReceiver__rtcp_exited,  # type: ignore[attr-defined]
            )
        )
        receiver._RTCRtpReceiver__started = True  # type: ignore[attr-defined]

    receiver.receive = receive  # type: ignore[method-assign]


def quiet_sender_reports(sender: RTCRtpSender) -> None:
    """Stop ``sender`` from sending its own sender reports (one task and one datagram each a
    second, per sender); the connection's compound report carries them (``sender_report``)."""

    def run_rtcp() -> Coroutine[Any, Any, None]:
        return _reports_elsewhere(
            sender._RTCRtpSender__rtcp_started,  # type: ignore[attr-defined]
            sender._RTCRtpSender__rtcp_exited,  # type: ignore[attr-defined]
        )

    sender._run_rtcp = run_rtcp  # type: ignore[method-assign]


def sender_report(
    sender: RTCRtpSender, rtp_timestamp: int, packets: int, octets: int
) -> RtcpSrPacket:
    """A sender report for ``sender``: now in NTP time and ``rtp_timestamp`` (the same instant
    on the media clock, for lip sync), and the packet and payload octet counts. Notes when it
    was sent, so aiortc derives the round-trip time from the receiver's report of it."""
    ntp = clock.current_ntp_time()
    sender._RTCRtpSender__lsr = (ntp >> 16) & 0xFFFFFFFF  # type: ignore[attr-defined]
    sender._RTCRtpSender__lsr_time = time.time()  # type: ignore[attr-defined]
    return RtcpSrPacket(
        ssrc=sender._ssrc,
        sender_info=RtcpSenderInfo(
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_timestamp & 0xFFFFFFFF,
            packet_count=packets & 0xFFFFFFFF,
            octet_count=octets & 0xFFFFFFFF,
        ),
    )


def sender_cname(sender: RTCRtpSender) -> str | None:
    """The connection's CNAME (set when the sender starts)."""
    cname: str | None = sender._RTCRtpSender__cname  # type: ignore[attr-defined]
    return cname


def source_description(cname: str, ssrcs: list[int]) -> RtcpSdesPacket:
    """One SDES packet naming ``ssrcs`` with the connection's CNAME."""
    item = [(1, cname.encode("utf8"))]
    return RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=ssrc, items=item) for ssrc in ssrcs])


def receiver_report(receiver: RTCRtpReceiver) -> RtcpRrPacket | None:
    """What aiortc's receiver would report now (one block per source SSRC it receives), or
    None before anything was received."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    streams: dict[int, Any] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    lsrs: dict[int, int] = receiver._RTCRtpReceiver__lsr  # type: ignore[attr-defined]
    lsr_times: dict[int, float] = receiver._RTCRtpReceiver__lsr_time  # type: ignore[attr-defined]
    if rtcp_ssrc is None or not streams:
        return None
    now = time.time()
    reports = []
    for ssrc, stream in streams.items():
        if stream.max_seq is None:
            continue
        lsr = dlsr = 0
        if ssrc in lsrs:
            lsr = lsrs[ssrc]
            delay = now - lsr_times[ssrc]
            if 0 < delay < 65536:
                dlsr = int(delay * 65536)
        reports.append(
            RtcpReceiverInfo(
                ssrc=ssrc,
                fraction_lost=stream.fraction_lost,
                packets_lost=stream.packets_lost,
                # RFC 3550 6.4.1: the extended highest sequence number (cycles included);
                # aiortc's own reports send the 16-bit one, which goes backwards at each wrap.
                highest_sequence=(stream.cycles + stream.max_seq) & 0xFFFFFFFF,
                jitter=stream.jitter,
                lsr=lsr,
                dlsr=dlsr,
            )
        )
    return RtcpRrPacket(ssrc=rtcp_ssrc, reports=reports) if reports else None


async def send_rtcp(transport: Any, payload: bytes) -> bool:
    """Send a (compound) RTCP packet on the connection's DTLS transport (SRTCP-protected
    there)."""
    try:
        await transport._send_rtp(payload)
    except ConnectionError:
        return False
    return True


def registered_stats(receiver: RTCRtpReceiver, ssrc: int) -> Any:
    """The statistics aiortc's receiver keeps for ``ssrc``, or None."""
    streams: dict[int, Any] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    return streams.get(ssrc)


def register_stats(receiver: RTCRtpReceiver, ssrc: int, stats: Any) -> None:
    """Make ``stats`` (media._forward.StreamStats: the attributes of aiortc's StreamStatistics)
    the statistics aiortc's receiver keeps for ``ssrc``: its ``getStats`` and our receiver
    reports (``receiver_report``) read them. The SFU counts packets in C (media/_receive.c);
    aiortc, which never sees them, would count nothing."""
    streams: dict[int, Any] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    streams[ssrc] = stats


def hook_rtp(transceiver: RTCRtpTransceiver, handler: RtpHandler) -> None:
    """Send every decrypted RTP datagram of the peer connection to ``handler``.

    An exception escaping to aiortc would close the whole connection, so it is logged here.
    """
    transport = transceiver.receiver.transport

    async def handle(data: bytes, arrival_time_ms: int) -> None:
        try:
            await handler(data, arrival_time_ms)
        except Exception:
            log.exception("dropping an RTP packet that could not be forwarded")

    transport._handle_rtp_data = handle  # type: ignore[method-assign]


FeedbackHandler = Callable[[str, Any], Awaitable[None]]


def hook_sender_feedback(sender: RTCRtpSender, handler: FeedbackHandler) -> None:
    """Route subscriber feedback on ``sender`` to ``handler(kind, value)``:
    ``("keyframe", None)``, ``("nack", [seq, ...])``, ``("remb", (bitrate, ssrcs))``, and
    from each receiver report on it ``("loss", (fraction lost since the previous report,
    extended highest sequence number received, cumulative packets lost))``.
    Receiver reports still go to aiortc too, which keeps the round-trip time."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        try:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                await handler("keyframe", None)
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                await handler("nack", [seq & 0xFFFF for seq in packet.lost])
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    remb = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                await handler("remb", remb)
            else:
                if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                    for report in packet.reports:
                        if report.ssrc == sender._ssrc:
                            await handler(
                                "loss",
                                (
                                    report.fraction_lost / 256,
                                    report.highest_sequence,
                                    report.packets_lost,
                                ),
                            )
                await original(packet)
        except Exception:
            log.exception("dropping RTCP feedback that could not be handled")

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    return list(transceiver._codecs)


def rtx_payload_types(transceiver: RTCRtpTransceiver) -> dict[int, int]:
    """{media payload type: its RTX payload type} as negotiated."""
    found: dict[int, int] = {}
    for codec in transceiver._codecs:
        apt = codec.parameters.get("apt")
        if is_rtx(codec) and apt is not None and codec.payloadType is not None:
            found[int(apt)] = codec.payloadType
    return found


def sender_ready(sender: RTCRtpSender) -> bool:
    return bool(sender._RTCRtpSender__started) and sender.transport.state == "connected"  # type: ignore[attr-defined]


def sender_rtt(sender: RTCRtpSender) -> float | None:
    """Round-trip time in seconds that aiortc derived from the subscriber's receiver reports."""
    rtt = sender._RTCRtpSender__rtt  # type: ignore[attr-defined]
    return None if rtt is None else float(rtt)


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    await receiver._send_rtcp_pli(media_ssrc)


async def send_nack(receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]) -> None:
    # aiortc's NACK serializer needs ascending, distinct sequence numbers.
    await receiver._send_rtcp_nack(media_ssrc, sorted(set(lost)))


async def send_remb(receiver: RTCRtpReceiver, bitrate: int, ssrcs: list[int]) -> None:
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    if rtcp_ssrc is None:
        return
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
    )
    await receiver._send_rtcp(packet)
