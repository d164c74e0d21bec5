"""A Consumer: one outgoing slot (a seat's audio or video toward one participant)."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RtcpSrPacket
from aiortc.utils import random32

from courtlink.media import _forward, wire
from courtlink.media.fastpath import Egress, Sender
from courtlink.media.nack import Repeats
from courtlink.media.rtp import EXT_ABS_SEND_TIME, EXT_AUDIO_LEVEL, EXT_MID, parse_header

if TYPE_CHECKING:
    from courtlink.media.producer import Producer

__all__ = ["Consumer", "abs_send_time"]

# More packets missing in a row than NACK can bring back: aiortc's senders keep 128 packets for
# retransmission and its receivers ask for at most as many. (The forwarding core in C uses it.)
MAX_GAP = _forward.MAX_GAP

_HEADER = struct.Struct("!BBHII")
# Video packets kept for retransmission (about 5 s at 500 kbit/s), in the C base's ring of
# fixed slots: keeping a packet is a copy, never an allocation. Which sequence numbers were
# sent at all is known for SENT_WINDOW of them (``was_sent``), which covers RECEIVER_WINDOW.
HISTORY_SIZE = _forward.HISTORY_SIZE
SENT_WINDOW = _forward.SENT_WINDOW
# aiortc's video receiver (our headless participant) holds every frame behind a missing packet
# until a packet this far ahead of it arrives (its jitter buffer's capacity in aiortc 1.16: at
# 15 to 45 packets a second, 10 to 30 s); browsers decode a key frame whatever came before.
RECEIVER_WINDOW = 512
SKIPS_KEPT = 8  # skips remembered until a receiver report reaches past them
# A packet resent is not resent again within about a round trip (1.2 times the one measured
# from the subscriber's receiver reports; RESEND_HOLD while none is known): a receiver that does
# not know the round trip yet (Chromium assumes 100 ms) asks for a lost packet again and again,
# and on a slow, congested link (a phone's: a round trip of a second) those copies fill the
# link that the media needed. At most RESEND_MAX copies of one packet.
RESEND_HOLD = 0.3
RESEND_MAX = 4
# Retransmissions in one second at most this share of the packets the slot forwarded in the
# second before (and at least RESEND_FLOOR): on a congested link, resending whatever is asked
# for fed the congestion it came from (measured: three to five resent packets for every one
# forwarded to the weak viewer). libwebrtc's senders cap retransmissions by their rate too.
RESEND_SHARE = 0.5
RESEND_FLOOR = 2
if SENT_WINDOW < RECEIVER_WINDOW:  # a new epoch must see the whole receiver window
    raise ImportError("media._forward was built with SENT_WINDOW below RECEIVER_WINDOW")


def abs_send_time() -> int:
    """Now as abs-send-time: seconds in 6.18 fixed point, modulo 64 s (receivers use deltas)."""
    return int(time.time() * 262144) & 0xFFFFFF


def _extension_prefix(mid: bytes, element: int, length: int) -> tuple[bytes, bytes]:
    """(bytes before the per-packet value, padding after it) of a one-byte-header extension
    block holding the MID and one ``length``-byte element (audio level or abs-send-time)."""
    body = bytes([(EXT_MID << 4) | (len(mid) - 1)]) + mid + bytes([(element << 4) | (length - 1)])
    pad = -(len(body) + length) % 4
    words = (len(body) + length + pad) // 4
    return struct.pack("!HH", 0xBEDE, words) + body, b"\x00" * pad


class Consumer(_forward.Slot):
    """Forwards the packets of its current source Producer to one subscriber: SSRC, sequence
    number, timestamp, payload type and header extensions rewritten, payload untouched.

    When the source changes (a seat changes hands, forwarding resumes after a caucus), the output
    continues the same sequence and timeline, and video waits for a key frame, which it asks for.
    Forwarding is synchronous: the packet is encrypted and written to the subscriber's socket
    before ``forward`` returns (media/fastpath.py).

    ``forward``, the per-packet work, is the C base's (media/_forward.c: ``Slot.forward``); it
    keeps its state in the base's fields (``next_seq``, ``seq_offset``, ``ts_offset``, ...),
    which this class reads and sets like any attributes, and the video it sent in a ring
    (``kept(seq)``: the packet sent with that sequence number, while held; ``was_sent(seq)``:
    whether one was, for longer), and calls
    ``_new_epoch`` here when an epoch starts and ``Producer.want_keyframe`` while video waits
    for a key frame.
    """

    def __init__(
        self,
        seat: str,
        kind: str,
        transceiver: RTCRtpTransceiver,
        *,
        clock_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seat = seat
        self.kind = kind
        self.video = kind == "video"
        self.transceiver = transceiver
        self.sender = transceiver.sender
        self.clock_rate = 48000 if kind == "audio" else 90000
        self.clock = clock_fn
        self.source: Producer | None = None
        self.ready = False
        self.egress: Sender | Egress | None = None
        self.mid = b"0"
        self.pt_map: dict[int, int] = {}
        self.same_pt = True
        self.rtx_pt: dict[int, int] = {}
        self.next_seq = random_sequence_number()
        self.rtx_seq = random_sequence_number()
        self.seq_offset: int | None = None
        self.fresh_seq: int | None = None  # see _skip_past_holes
        self._fresh_forwarded = 0
        self.ts_offset = 0
        self.last_ts: int | None = None
        self.last_sent_at: float | None = None
        self.waiting_keyframe = kind == "video"
        self.remb_bps: int | None = None  # the subscriber's estimate, its share for this slot
        self.receiving = "full"  # what the subscriber gets: full, reduced or audio_only
        # The subscriber asks this seat's publisher for at most LayerSettings.min_video_bps
        # (its last picture does not fit otherwise; media/layers.py).
        self.squeezed = False
        self.loss: float | None = None  # fraction lost, from the subscriber's newest report
        self.loss_at: float | None = None  # when that report came (``clock``)
        # Packets the subscriber expected and lost on this slot, summed over its reports since
        # ``take_loss_counts`` last took them (from each report's highest sequence number and
        # cumulative loss, against the report before).
        self.expected_count = 0
        self.lost_count = 0
        self._last_report: tuple[int, int] | None = None  # (highest sequence, cumulative lost)
        # Sequence numbers skipped on purpose (``_skip_past_holes``), not yet in a report:
        # (the first number after the skip, how many). The receiver counts them lost.
        self._skips: list[tuple[int, int]] = []
        self.keyframe_asks = 0  # key frame requests (PLI, FIR) of the subscriber, counted
        self.forwarded = 0
        self.retransmitted = 0
        self.resend_held = 0  # NACKed packets not sent again: sent within a round trip
        self._resent = Repeats(most=RESEND_MAX)
        self._resend_second = int(clock_fn())  # the second the budget is for, what is left
        self._resend_budget = RESEND_FLOOR
        self._resend_mark = 0  # ``forwarded`` when that second began
        self.octets = 0
        self._ssrc = self.sender._ssrc
        self._prefix, self._pad = _extension_prefix(self.mid, EXT_AUDIO_LEVEL, 1)

    def configure(self) -> None:
        """After negotiation: payload types and the subscriber's MID."""
        codecs = wire.negotiated_codecs(self.transceiver)
        # Every peer of a session negotiates the server's own payload types (the server offers),
        # so a payload type maps to itself; mapping keeps a differing answer correct anyway.
        self.pt_map = {c.payloadType: c.payloadType for c in codecs if c.payloadType is not None}
        self.same_pt = all(k == v for k, v in self.pt_map.items())
        self.rtx_pt = wire.rtx_payload_types(self.transceiver)
        self.mid = (self.transceiver.mid or "0").encode()
        if self.kind == "audio":
            self._prefix, self._pad = _extension_prefix(self.mid, EXT_AUDIO_LEVEL, 1)
        else:
            self._prefix, self._pad = _extension_prefix(self.mid, EXT_ABS_SEND_TIME, 3)
        self.ready = True
        self._reserve_history()

    def switch(self, producer: Producer | None) -> bool:
        """Feed this slot from ``producer`` (None: stop). Returns whether anything changed."""
        if producer is self.source:
            return False
        if self.source is not None and self in self.source.consumers:
            self.source.consumers.remove(self)
        self.source = producer
        self.seq_offset = None  # a new epoch: offsets are computed from its first packet
        self.waiting_keyframe = self.kind == "video"
        if producer is not None:
            producer.consumers.append(self)
            self._reserve_history()
        return True

    def _reserve_history(self) -> None:
        """The history ring (375 KB, populated) for a negotiated video slot once it has a
        source: off the packet path, which then never page-faults on it, and not at all for a
        slot whose seat never sends video (an empty seat)."""
        if self.video and self.ready and self.source is not None:
            self.reserve()

    def _new_epoch(self, sequence_number: int, timestamp: int) -> int:
        """The first packet of an epoch (a new source, or after a hole), by its sequence number
        and timestamp: where the subscriber's sequence and timeline continue from. Called by
        ``forward``."""
        if self.video:
            self._skip_past_holes()
        if self.fresh_seq is None:
            self._fresh_start()
        self.seq_offset = (self.next_seq - sequence_number) & 0xFFFF
        if self.last_ts is None or self.last_sent_at is None:
            self.ts_offset = (random32() - timestamp) & 0xFFFFFFFF
        else:
            # Continue the subscriber's timeline across the switch.
            elapsed = max(1, int((self.clock() - self.last_sent_at) * self.clock_rate))
            self.ts_offset = (self.last_ts + elapsed - timestamp) & 0xFFFFFFFF
        return self.seq_offset

    def _fresh_start(self) -> None:
        """The subscriber's receiver starts afresh at ``next_seq``: nothing before it counts."""
        self.fresh_seq = self.next_seq
        self._fresh_forwarded = self.forwarded

    def _skip_past_holes(self) -> None:
        """Before a new video epoch (which starts on a key frame): when any of the last
        RECEIVER_WINDOW sequence numbers since the receiver last started afresh was never sent
        (lost upstream for good: a publisher whose network dropped), start the new epoch a whole
        window ahead of the newest one sent.

        An aiortc subscriber would otherwise hold the new key frame behind that hole until
        RECEIVER_WINDOW more packets arrived, seconds of frozen video; a jump of a whole window
        makes its jitter buffer drop everything older at once and start at the key frame. A
        browser NACKs the skipped numbers a few times (this slot answers none) and decodes the
        key frame meanwhile. Runs once per epoch, never per packet."""
        if self.fresh_seq is None:
            return
        if self.forwarded - self._fresh_forwarded >= RECEIVER_WINDOW:
            span = RECEIVER_WINDOW
        else:
            # Fewer packets than a window since the fresh start: the sequence cannot have
            # wrapped, and numbers before the fresh start are not holes to the receiver.
            span = min((self.next_seq - self.fresh_seq) & 0xFFFF, RECEIVER_WINDOW)
        for back in range(span, 0, -1):
            seq = (self.next_seq - back) & 0xFFFF
            if not self.was_sent(seq):
                self.next_seq = (self.next_seq + RECEIVER_WINDOW) & 0xFFFF
                self._skips.append((self.next_seq, RECEIVER_WINDOW))
                del self._skips[:-SKIPS_KEPT]  # a subscriber that never reports: bounded
                self._fresh_start()
                return

    def sender_report(self) -> RtcpSrPacket | None:
        """This slot's sender report (the Peer sends all of a connection's at once), or None
        before anything was sent. The RTP timestamp is the subscriber's timeline now: the
        newest sent plus the time since, so the report pairs wall clock and media clock."""
        if self.last_ts is None or self.last_sent_at is None:
            return None
        since = max(0.0, self.clock() - self.last_sent_at)
        now_ts = self.last_ts + int(since * self.clock_rate)
        return wire.sender_report(self.sender, now_ts, self.forwarded, self.octets)

    def _retransmission(self, seq: int, kept: bytes) -> bytes:
        """A packet from the history again: as RTX when negotiated, else as it was."""
        header = parse_header(kept, scan=False)
        rtx_pt = self.rtx_pt.get(header.payload_type)
        if rtx_pt is None or self.sender._rtx_ssrc is None:
            return kept
        payload = seq.to_bytes(2, "big") + kept[header.payload_start : header.payload_end]
        marker = 0x80 if header.marker else 0
        head = _HEADER.pack(
            0x90, marker | rtx_pt, self.rtx_seq, header.timestamp, self.sender._rtx_ssrc
        )
        self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
        value = abs_send_time().to_bytes(3, "big")
        return b"".join((head, self._prefix, value, self._pad, payload))

    async def on_feedback(self, kind: str, value: Any) -> None:
        """Subscriber feedback on this slot: key frame requests, NACKs, REMB, loss."""
        if kind == "keyframe":
            if not self.waiting_keyframe:  # one already on its way after a switch is no news
                self.keyframe_asks += 1
            if self.source is not None:
                self.source.want_keyframe()
        elif kind == "nack":
            self.retransmit(value)
        elif kind == "remb":
            bitrate, ssrcs = value
            if self._ssrc in ssrcs:
                # A browser's REMB covers everything it receives on the connection.
                self.remb_bps = int(bitrate / max(1, len(ssrcs)))
        elif kind == "loss":
            fraction, highest, lost = value
            self.loss = float(fraction)
            self.loss_at = self.clock()
            self._count_loss(int(highest), int(lost))

    def _count_loss(self, highest: int, lost: int) -> None:
        """Add what one receiver report says was expected and lost since the one before;
        numbers this slot skipped on purpose are neither (the network lost none of them)."""
        skipped = 0
        for skip in list(self._skips):
            first, count = skip
            if (highest - first) & 0xFFFF < 0x8000:  # the report has reached past the skip
                skipped += count
                self._skips.remove(skip)
        if self._last_report is not None:
            expected = (highest - self._last_report[0]) & 0xFFFFFFFF
            # More than a wrap of the 16-bit numbers (or a report older than the last, which
            # wraps the difference) is no interval: count from this report on.
            if expected <= 0x10000 + skipped:
                self.expected_count += expected - skipped
                self.lost_count += lost - self._last_report[1] - skipped
        self._last_report = (highest, lost)

    def take_loss_counts(self) -> tuple[int, int]:
        """(expected, lost) since the last call, and start counting again. ``lost`` may be
        negative: duplicates, or late packets first counted lost."""
        counts = self.expected_count, self.lost_count
        self.expected_count = self.lost_count = 0
        return counts

    def apply_level(self, level: int, top: int, layered: bool) -> None:
        """What media/layers.py chose for this video slot: ``level`` < 0 pauses it (the
        subscriber hears the seat only), else the highest temporal layer to forward (for a
        source without layers, everything; ``top``: the highest its source sends). A paused
        slot that resumes starts a new epoch on a key frame, continuing the subscriber's
        sequence and timeline."""
        if level < 0:
            self.receiving = "audio_only"
            self.paused = True
            return
        self.receiving = "reduced" if layered and level < top else "full"
        self.layer_target = min(level, 3) if layered else 3
        if self.paused:
            self.paused = False
            self.seq_offset = None
            self.waiting_keyframe = True
            if self.source is not None:
                self.source.want_keyframe()

    def retransmit(self, sequence_numbers: list[int]) -> None:
        """Answer a NACK from the history (RTX when negotiated, else a plain resend); what is
        no longer kept is asked of the publisher. A packet already resent within a round trip,
        or RESEND_MAX times, is not sent again (RESEND_HOLD), nor any beyond the second's
        budget (RESEND_SHARE). A paused slot resends nothing: its viewer gets no picture from
        it, and the next starts on a key frame (a browser goes on asking for what it missed
        before the pause, hundreds of packets a second on a weak link)."""
        if self.paused:
            self.resend_held += len(sequence_numbers)
            return
        missing_upstream = []
        now = self.clock()
        second = int(now)
        if second != self._resend_second:
            # Packets forwarded a second since the last second with a NACK.
            rate = (self.forwarded - self._resend_mark) / max(1, second - self._resend_second)
            self._resend_second, self._resend_mark = second, self.forwarded
            self._resend_budget = max(RESEND_FLOOR, int(rate * RESEND_SHARE))
        rtt = wire.sender_rtt(self.sender)
        hold = 1.2 * rtt if rtt else RESEND_HOLD
        resent = self._resent
        for seq in sequence_numbers:
            kept = self.kept(seq)
            if kept is None:
                if self.seq_offset is not None:
                    missing_upstream.append((seq - self.seq_offset) & 0xFFFF)
                continue
            if not resent.due(seq, now, hold) or self._resend_budget <= 0:
                self.resend_held += 1
                continue
            if self.egress is not None and self.egress.send(self._retransmission(seq, kept)):
                self.retransmitted += 1
                self._resend_budget -= 1
                resent.note(seq, now)
        if missing_upstream and self.source is not None:
            self.source.relay_nack(missing_upstream)
