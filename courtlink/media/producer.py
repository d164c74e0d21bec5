"""A Producer: one incoming track (a participant's microphone or camera) and its fan-out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpReceiver

from courtlink.media import _forward, wire
from courtlink.media._forward import StreamStats
from courtlink.media.layers import LayerRates, LayerSettings
from courtlink.media.nack import Gaps, Repeats

if TYPE_CHECKING:
    from courtlink.media.consumer import Consumer

__all__ = ["Producer"]

log = logging.getLogger("courtlink.media")

MAX_BITRATE = 2_500_000
MIN_BITRATE = 50_000  # the least a publisher is asked for (libwebrtc's own floor is 30k)
# A missing packet is asked for again (NACK) only after 1.2 round trips to its publisher, or
# NACK_HOLD while none is known.
NACK_HOLD = 0.25


class Producer(_forward.Source):
    """Receives one track's RTP (decrypted, never decoded) and hands each packet to the
    Consumers currently subscribed, synchronously (media/fastpath.py). Asks the publisher for
    key frames (rate-limited), for lost packets (NACK), and tells it the lowest bitrate its
    subscribers can take (REMB); those RTCP messages go out in tasks, off the packet path.

    ``receive(data)``, the per-packet work, is the C base's (media/_receive.c: ``Source``): it
    parses the header, unwraps the publisher's retransmissions (``rtx``), counts (``packets``,
    ``bytes``, the receiver statistics in ``stats``, the NACK gaps in ``nacks``), finds key
    frames and hands the packet to each Consumer's C ``forward``. It calls ``_new_ssrc`` here
    when the publisher's SSRC changes and ``_gap_opened`` when packets go missing."""

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
        self.video = kind == "video"
        self.receiver = receiver
        self.pli_interval = pli_interval
        self.clock = clock
        self.consumers: list[Consumer] = []
        self.clock_rate = 48000 if kind == "audio" else 90000
        self.ssrc = None
        self.rtx = {}  # rtx payload type -> media payload type
        self.nacks = Gaps() if self.video else None
        self.stats = None
        self._last_pli = -1e9
        self.plis_sent = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        # Its video rate per temporal layer (media/layers.py), updated once a second.
        self.rates = LayerRates()
        # Loss on the publisher's own uplink in the last second (after NACK repairs), and the
        # cap that loss puts on what it is asked to send (None: no cap), see ``measure``.
        self.uplink_loss: float | None = None
        self.uplink_cap: float | None = None
        # What the publisher was last asked to send (send_remb): as REMB for senders that follow
        # it (aiortc), and in media.quality's send_kbps for browsers, whose pages set it as
        # their encoding's maxBitrate (Chromium's sender does not follow REMB).
        self.asked_bps: int | None = None
        # When each missing packet was last asked for (NACK), and the round trip to the
        # publisher (its Peer sets it once a second): see ``_ask_for``.
        self._asked = Repeats()
        self.rtt: float | None = None

    def configure(self, video_codec: str, rtx: dict[int, int]) -> None:
        """Called once negotiation settled."""
        self.h264 = video_codec == "h264"
        self.rtx = rtx

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("RTCP to the publisher failed: %r", task.exception())

    def _new_ssrc(self) -> None:
        """The publisher's media SSRC changed (its first packet, or it restarted its stream):
        the statistics of that SSRC (fresh, or the ones kept from when it last sent), which
        aiortc's receiver reports and getStats read, and fresh NACK gaps: the new stream's
        sequence numbers have nothing to do with the old one's."""
        assert self.ssrc is not None
        stats = wire.registered_stats(self.receiver, self.ssrc)
        if not isinstance(stats, StreamStats):
            stats = StreamStats(self.clock_rate)
            wire.register_stats(self.receiver, self.ssrc, stats)
        self.stats = stats
        self._expected_prior = self._received_prior = 0
        if self.video:
            self.nacks = Gaps()

    def _gap_opened(self) -> None:
        """Packets went missing: ask the publisher for every one still missing (from the
        packet path: the NACK goes out in a task)."""
        if self.nacks is not None and self.ssrc is not None:
            self._ask_for(self.nacks.missing)

    def _ask_for(self, sequence_numbers: Iterable[int]) -> None:
        """NACK the packets not asked for within 1.2 round trips to the publisher (NACK_HOLD
        while none is known). Every new gap used to ask again for all still missing, and every
        subscriber's NACK for a packet lost upstream was relayed as it came: three browsers
        asking every 100 ms made a weak publisher's downlink carry 80 NACKs a second."""
        if self.ssrc is None:
            return
        now = self.clock()
        hold = max(NACK_HOLD, 1.2 * self.rtt) if self.rtt else NACK_HOLD
        due = sorted(s for s in sequence_numbers if self._asked.due(s, now, hold))
        for seq in due:
            self._asked.note(seq, now)
        if due:
            self._spawn(wire.send_nack(self.receiver, self.ssrc, due))

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
        if self.ssrc is None or self.nacks is None:
            return
        self._ask_for(seq for seq in sequence_numbers if self.nacks.is_missing(seq))

    def measure(self, interval: float, settings: LayerSettings | None = None) -> None:
        """Once a second: ``rates`` from the byte counters, the uplink's loss, and from it the
        cap on what the publisher is asked for. A phone on a weak uplink is told to send less
        when more than ``loss_high`` of its packets stay lost (to 90 % of what got through),
        and more again, 5 % a second, once less than ``loss_low`` are: its browser's own
        control reacts to REMB at once, to loss only slowly."""
        self.rates.update(self.layer_octets, self.bytes, interval)
        self.uplink_loss = self.loss_since_last()
        if settings is None or not settings.adapt or self.kind != "video":
            return
        loss = self.uplink_loss
        if loss is not None and loss > settings.loss_high and self.rates.total > 0:
            through = self.rates.total * (1 - loss) * 0.9
            if self.uplink_cap is None:
                log.info(
                    "%s's uplink loses %.0f %% of its video: asking for at most %d kbit/s",
                    self.participant_id,
                    loss * 100,
                    through / 1000,
                )
            self.uplink_cap = max(MIN_BITRATE, min(self.uplink_cap or through, through))
        elif self.uplink_cap is not None and (loss is None or loss < settings.loss_low):
            self.uplink_cap *= 1.05
            if self.uplink_cap >= settings.max_video_bps:
                log.info("%s's uplink carries its video again", self.participant_id)
                self.uplink_cap = None

    async def send_remb(self, settings: LayerSettings | None = None) -> int | None:
        """Tell the publisher what to send: with per-viewer layers (``settings.adapt``) the best
        of its subscribers' estimates, since a weaker one gets fewer layers, but no less than
        ``min_video_bps`` (exactly that while a viewer is squeezed); without, the lowest, since
        every subscriber gets everything. Never more than the cap, nor than the publisher's
        own uplink carries."""
        if self.kind != "video" or self.ssrc is None or self.closed:
            return None
        rates = [c.remb_bps for c in self.consumers if c.remb_bps is not None]
        if not rates and self.uplink_cap is None:
            return None
        if not rates:
            bitrate = self.uplink_cap or MAX_BITRATE
        elif settings is not None and settings.adapt:
            # Viewers' estimates never take a publisher below min_video_bps (a weak viewer gets
            # fewer layers instead); a squeezed viewer asks for exactly that; only the
            # publisher's own uplink may ask for less.
            best = max(max(rates), settings.min_video_bps)
            if any(c.squeezed for c in self.consumers):  # a weak viewer's last picture
                best = settings.min_video_bps
            bitrate = min(best, settings.max_video_bps, self.uplink_cap or MAX_BITRATE)
        else:
            bitrate = min(min(rates), MAX_BITRATE)
        self.asked_bps = int(bitrate)
        await wire.send_remb(self.receiver, int(bitrate), [self.ssrc])
        return int(bitrate)

    def loss_since_last(self) -> float | None:
        """Fraction of packets lost on the publisher's uplink since the previous call."""
        stats = self.stats
        if stats is None or stats.max_seq is None or stats.base_seq is None:
            return None
        expected = stats.packets_expected
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
