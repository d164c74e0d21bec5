"""A Consumer: one outgoing slot (a seat's audio or video toward one participant)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpTransceiver, clock
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.utils import random32

from media import wire
from media.rtp import RtpHeader, build_extensions, write_packet

if TYPE_CHECKING:
    from media.producer import Producer

__all__ = ["Consumer"]

# More packets missing in a row than NACK can bring back: aiortc's senders keep 128 packets for
# retransmission and its receivers ask for at most as many.
MAX_GAP = 128


def _seq_newer(a: int, b: int) -> bool:
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class Consumer:
    """Forwards the packets of its current source Producer to one subscriber: SSRC, sequence
    number, timestamp, payload type and header extensions rewritten, payload untouched.

    When the source changes (a seat changes hands, forwarding resumes after a caucus), the output
    continues the same sequence and timeline, and video waits for a key frame, which it asks for.
    """

    def __init__(
        self,
        seat: str,
        kind: str,
        transceiver: RTCRtpTransceiver,
        *,
        history: int = 600,
        clock_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seat = seat
        self.kind = kind
        self.transceiver = transceiver
        self.sender = transceiver.sender
        self.clock_rate = 48000 if kind == "audio" else 90000
        self.clock = clock_fn
        self.source: Producer | None = None
        self.ready = False
        self.mid = b"0"
        self.pt_map: dict[int, int] = {}
        self.rtx_pt: dict[int, int] = {}
        self.history_size = history
        self.history: OrderedDict[int, tuple[bool, int, int, bytes]] = OrderedDict()
        self.next_seq = random_sequence_number()
        self.rtx_seq = random_sequence_number()
        self.seq_offset: int | None = None
        self.ts_offset: int | None = None
        self.last_ts: int | None = None
        self.last_sent_at: float | None = None
        self.waiting_keyframe = kind == "video"
        self.remb_bps: int | None = None
        self.forwarded = 0
        self.retransmitted = 0

    def configure(self) -> None:
        """After negotiation: payload types and the subscriber's MID."""
        codecs = wire.negotiated_codecs(self.transceiver)
        # Every peer of a session negotiates the server's own payload types (the server offers),
        # so a payload type maps to itself; mapping keeps a differing answer correct anyway.
        self.pt_map = {c.payloadType: c.payloadType for c in codecs if c.payloadType is not None}
        self.rtx_pt = wire.rtx_payload_types(self.transceiver)
        self.mid = (self.transceiver.mid or "0").encode()
        self.ready = True

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
        return True

    async def forward(self, data: bytes, header: RtpHeader, keyframe: bool) -> None:
        if not self.ready or not wire.sender_ready(self.sender):
            return
        if self.kind == "video" and self.seq_offset is not None:
            gap = (header.sequence_number + self.seq_offset - self.next_seq) & 0xFFFF
            if MAX_GAP < gap < 0x8000:
                # The publisher's network dropped and came back: what was lost can not be
                # retransmitted, and a subscriber would wait for it (aiortc's jitter buffer for
                # hundreds of packets). Start again on a key frame, continuing the sequence, as
                # after a switch.
                self.seq_offset = None
                self.waiting_keyframe = True
        if self.waiting_keyframe:
            if not keyframe:
                if self.source is not None:
                    await self.source.request_keyframe()
                return
            self.waiting_keyframe = False
        now = self.clock()
        if self.seq_offset is None:
            self.seq_offset = (self.next_seq - header.sequence_number) & 0xFFFF
            if self.last_ts is None or self.last_sent_at is None:
                self.ts_offset = (random32() - header.timestamp) & 0xFFFFFFFF
            else:
                # Continue the subscriber's timeline across the switch.
                elapsed = max(1, int((now - self.last_sent_at) * self.clock_rate))
                self.ts_offset = (self.last_ts + elapsed - header.timestamp) & 0xFFFFFFFF
        assert self.ts_offset is not None
        seq = (header.sequence_number + self.seq_offset) & 0xFFFF
        ts = (header.timestamp + self.ts_offset) & 0xFFFFFFFF
        payload = data[header.payload_start : header.payload_end]
        pt = self.pt_map.get(header.payload_type, header.payload_type)
        packet = self._packet(
            header.marker, pt, seq, ts, self.sender._ssrc, header.audio_level, payload
        )
        if _seq_newer(seq, (self.next_seq - 1) & 0xFFFF) or seq == self.next_seq:
            self.next_seq = (seq + 1) & 0xFFFF
            self.last_ts, self.last_sent_at = ts, now
        self._remember(seq, header.marker, pt, ts, payload)
        if await wire.send_rtp(self.sender, packet):
            self.forwarded += 1
            wire.note_sent(self.sender, ts, len(payload))

    def _packet(
        self,
        marker: bool,
        pt: int,
        seq: int,
        ts: int,
        ssrc: int,
        audio_level: int | None,
        payload: bytes,
    ) -> bytes:
        if self.kind == "audio":
            ext = build_extensions(self.mid, audio_level=audio_level)
        else:
            ext = build_extensions(
                self.mid, abs_send_time=(clock.current_ntp_time() >> 14) & 0xFFFFFF
            )
        return write_packet(
            marker=marker,
            payload_type=pt,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            extensions=ext,
            payload=payload,
        )

    def _remember(self, seq: int, marker: bool, pt: int, ts: int, payload: bytes) -> None:
        if self.kind != "video":
            return
        self.history[seq] = (marker, pt, ts, payload)
        if len(self.history) > self.history_size:
            self.history.popitem(last=False)

    async def on_feedback(self, kind: str, value: Any) -> None:
        """Subscriber feedback on this slot: key frame requests, NACKs, REMB."""
        if kind == "keyframe":
            if self.source is not None:
                await self.source.request_keyframe()
        elif kind == "nack":
            await self._retransmit(value)
        elif kind == "remb":
            bitrate, ssrcs = value
            if self.sender._ssrc in ssrcs:
                # A browser's REMB covers everything it receives on the connection.
                self.remb_bps = int(bitrate / max(1, len(ssrcs)))

    async def _retransmit(self, sequence_numbers: list[int]) -> None:
        missing_upstream = []
        for seq in sequence_numbers:
            kept = self.history.get(seq)
            if kept is None:
                if self.seq_offset is not None:
                    missing_upstream.append((seq - self.seq_offset) & 0xFFFF)
                continue
            marker, pt, ts, payload = kept
            rtx_pt = self.rtx_pt.get(pt)
            if rtx_pt is not None and self.sender._rtx_ssrc is not None:
                packet = self._packet(
                    marker,
                    rtx_pt,
                    self.rtx_seq,
                    ts,
                    self.sender._rtx_ssrc,
                    None,
                    seq.to_bytes(2, "big") + payload,
                )
                self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
            else:
                packet = self._packet(marker, pt, seq, ts, self.sender._ssrc, None, payload)
            if await wire.send_rtp(self.sender, packet):
                self.retransmitted += 1
        if missing_upstream and self.source is not None:
            await self.source.relay_nack(missing_upstream)
