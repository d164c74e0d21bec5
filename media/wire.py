"""Everything Courtlink takes from aiortc's insides, in one place.

aiortc gives ICE, DTLS, SRTP and SDP; it has no public API for relaying RTP, so the SFU hooks a
few private points. Each is listed here and covered by tests/media/test_aiortc_contract.py, which
fails loudly when an aiortc upgrade moves one (aiortc is pinned to 1.16.*):

1. ``RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)``: called with each decrypted RTP
   datagram; we replace it on the instance, so aiortc never parses, depacketizes or buffers.
2. ``RTCRtpReceiver.receive``: replaced so no decoder thread starts; the receiver still registers
   and runs its RTCP task (receiver reports to the publisher), fed by ``__remote_streams``.
3. ``RTCRtpReceiver._send_rtcp_pli/_send_rtcp_nack/_send_rtcp`` and ``__rtcp_ssrc``: feedback
   to the publisher.
4. ``RTCRtpSender._handle_rtcp_packet``: wrapped on the instance to take PLI, FIR, NACK and REMB
   from subscribers; receiver reports still reach aiortc (round-trip time).
5. ``RTCRtpSender.transport._send_rtp``, ``_ssrc``, ``_rtx_ssrc``, ``_stream_id``,
   ``__rtt``, ``__started`` and the sender report counters ``__ntp_timestamp``,
   ``__rtp_timestamp``, ``__octet_count``, ``__packet_count`` (so sender reports stay
   truthful for lip sync).
6. ``RTCRtpTransceiver._codecs``: the negotiated codecs and payload types.

A sender is given a ``SilentTrack`` whose ``recv`` never returns: aiortc's sending task then waits
forever before it would create an encoder, and no codec context is ever made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, clock
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
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
    "note_sent",
    "quiet_receiver",
    "receiver_stats",
    "send_nack",
    "send_pli",
    "send_remb",
    "send_rtp",
    "sender_rtt",
    "set_sent",
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


def quiet_receiver(receiver: RTCRtpReceiver) -> None:
    """Stop ``receiver`` from ever starting its decoder thread; keep its RTCP reports."""

    async def receive(parameters: Any) -> None:
        if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
            return
        for codec in parameters.codecs:
            receiver._RTCRtpReceiver__codecs[codec.payloadType] = codec  # type: ignore[attr-defined]
        receiver.transport._register_rtp_receiver(receiver, parameters)
        receiver._RTCRtpReceiver__rtcp_task = asyncio.ensure_future(receiver._run_rtcp())  # type: ignore[attr-defined]
        receiver._RTCRtpReceiver__started = True  # type: ignore[attr-defined]

    receiver.receive = receive  # type: ignore[method-assign]


def receiver_stats(receiver: RTCRtpReceiver, ssrc: int, clock_rate: int) -> StreamStatistics:
    """The statistics object aiortc's receiver reports are built from, for ``ssrc``."""
    streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    stats = streams.get(ssrc)
    if stats is None:
        stats = streams[ssrc] = StreamStatistics(clock_rate)
    return stats


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
    ``("keyframe", None)``, ``("nack", [seq, ...])``, ``("remb", (bitrate, ssrcs))``.
    Receiver reports still go to aiortc, which keeps the round-trip time."""
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


async def send_rtp(sender: RTCRtpSender, data: bytes) -> bool:
    """Send one plaintext RTP packet on ``sender``'s transport (SRTP-protected there)."""
    try:
        await sender.transport._send_rtp(data)
    except ConnectionError:
        return False
    return True


def sender_rtt(sender: RTCRtpSender) -> float | None:
    """Round-trip time in seconds that aiortc derived from the subscriber's receiver reports."""
    rtt = sender._RTCRtpSender__rtt  # type: ignore[attr-defined]
    return None if rtt is None else float(rtt)


def set_sent(sender: RTCRtpSender, rtp_timestamp: int, packets: int, octets: int) -> None:
    """Set the counters aiortc's sender reports are built from (totals, not increments)."""
    sender._RTCRtpSender__ntp_timestamp = clock.current_ntp_time()  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count = octets  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count = packets  # type: ignore[attr-defined]


def note_sent(sender: RTCRtpSender, rtp_timestamp: int, payload_bytes: int) -> None:
    """Keep the counters aiortc's sender reports are built from in step with what we sent."""
    sender._RTCRtpSender__ntp_timestamp = clock.current_ntp_time()  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count += payload_bytes  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]


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
