"""A Producer: one incoming track (a participant's microphone or camera) and its fan-out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpReceiver

from media import wire
from media.nack import Gaps
from media.rtp import RtpHeader, h264_keyframe, vp8_keyframe

if TYPE_CHECKING:
    from media.consumer import Consumer

__all__ = ["Producer"]

log = logging.getLogger("courtlink.media")

MAX_BITRATE = 2_500_000


class Producer:
    """Receives one track's RTP (decrypted, never decoded) and hands each packet to the
    Consumers currently subscribed, synchronously (media/fastpath.py). Asks the publisher for
    key frames (rate-limited), for lost packets (NACK), and tells it the lowest bitrate its
    subscribers can take (REMB); those RTCP messages go out in tasks, off the packet path."""

    def __init__(
        self,
        participant_id: str,
        kind: str,
        receiver: RTCRtpReceiver,
        *,
        pli_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.participant_id = participant_id
        self.kind = kind
        self.receiver = receiver
        self.pli_interval = pli_interval
        self.clock = clock
        self.consumers: list[Consumer] = []
        self.clock_rate = 48000 if kind == "audio" else 90000
        self.ssrc: int | None = None
        self.rtx: dict[int, int] = {}  # rtx payload type -> media payload type
        self.is_keyframe: Callable[[bytes], bool] = vp8_keyframe
        self._nacks = Gaps() if kind == "video" else None
        self._stats: Any = None  # aiortc's StreamStatistics of the media SSRC (receiver reports)
        self._last_pli = -1e9
        self.plis_sent = 0
        self.packets = 0
        self.bytes = 0
        self.last_packet_at: float | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def configure(self, video_codec: str, rtx: dict[int, int]) -> None:
        """Called once negotiation settled."""
        self.is_keyframe = h264_keyframe if video_codec == "h264" else vp8_keyframe
        self.rtx = rtx

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("RTCP to the publisher failed: %r", task.exception())

    def receive(self, data: bytes, header: RtpHeader, send_time: int) -> int:
        """One packet from the publisher; returns how many subscribers it was sent to.
        ``send_time`` is the abs-send-time to stamp (shared by every copy of this packet)."""
        if self.closed:
            return 0
        media_pt = self.rtx.get(header.payload_type)
        if media_pt is not None:
            # The publisher's retransmission (answer to our NACK): the original sequence number
            # is the first two payload bytes; padding-only probes carry none.
            if header.payload_end - header.payload_start < 3 or self.ssrc is None:
                return 0
            start = header.payload_start
            header.sequence_number = (data[start] << 8) | data[start + 1]
            header.payload_start = start + 2
            header.payload_type = media_pt
            header.ssrc = self.ssrc
        elif self.ssrc != header.ssrc:
            self.ssrc = header.ssrc
            self._stats = wire.receiver_stats(self.receiver, header.ssrc, self.clock_rate)
        self.packets += 1
        self.bytes += header.payload_end - header.payload_start
        self.last_packet_at = self.clock()
        self._stats.add(header)
        payload = data[header.payload_start : header.payload_end]
        if self.kind == "video":
            keyframe = self.is_keyframe(payload)
            value = send_time.to_bytes(3, "big")
        else:
            keyframe = False
            value = bytes((header.audio_level or 0,))
        sent = 0
        for consumer in self.consumers:
            sent += consumer.forward(header, payload, value, keyframe)
        # Recovered (RTX) packets go in too: that takes them off the missing list.
        if self._nacks is not None and self._nacks.add(header.sequence_number):
            self._spawn(wire.send_nack(self.receiver, header.ssrc, list(self._nacks.missing)))
        return sent

    def want_keyframe(self) -> bool:
        """Ask the publisher for a key frame, at most once per ``pli_interval`` (from the
        packet path: the PLI itself goes out in a task)."""
        if self.kind != "video" or self.ssrc is None or self.closed:
            return False
        now = self.clock()
        if now - self._last_pli < self.pli_interval:
            return False
        self._last_pli = now
        self.plis_sent += 1
        self._spawn(wire.send_pli(self.receiver, self.ssrc))
        return True

    def relay_nack(self, sequence_numbers: list[int]) -> None:
        """A subscriber misses packets the consumer no longer holds: ask the publisher for those
        still missing here too (one that came back has been forwarded already)."""
        if self.ssrc is None or self._nacks is None:
            return
        still = [seq for seq in sequence_numbers if seq in self._nacks.missing]
        if still:
            self._spawn(wire.send_nack(self.receiver, self.ssrc, still))

    async def send_remb(self) -> int | None:
        """Tell the publisher the lowest rate among its subscribers."""
        if self.kind != "video" or self.ssrc is None or self.closed:
            return None
        rates = [c.remb_bps for c in self.consumers if c.remb_bps is not None]
        if not rates:
            return None
        bitrate = min(min(rates), MAX_BITRATE)
        await wire.send_remb(self.receiver, int(bitrate), [self.ssrc])
        return int(bitrate)

    def loss_since_last(self) -> float | None:
        """Fraction of packets lost on the publisher's uplink since the previous call."""
        if self.ssrc is None:
            return None
        stats = wire.receiver_stats(self.receiver, self.ssrc, self.clock_rate)
        if stats.max_seq is None or stats.base_seq is None:
            return None
        expected = stats.cycles + stats.max_seq - stats.base_seq + 1
        received = stats.packets_received
        interval = expected - self._expected_prior
        got = received - self._received_prior
        self._expected_prior, self._received_prior = expected, received
        if interval <= 0:
            return 0.0
        return max(0.0, min(1.0, (interval - got) / interval))

    def close(self) -> None:
        self.closed = True
        for consumer in tuple(self.consumers):
            consumer.switch(None)
        self.consumers.clear()
        for task in list(self._tasks):
            task.cancel()
