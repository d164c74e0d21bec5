"""The recorder's depacketizer as it was in Python (until media/_assemble.c replaced it): the
reference the C one is compared with (test_assemble.py). Unchanged but for one fix the C
shares: a video frame that assembles to no bytes is dropped (the VP8 key-frame check raised
IndexError on it, and H.264 yielded an empty frame).

RTP payloads to whole frames, without decoding. ``Reorder`` puts the packets back in sequence
order (the SFU's NACKs bring lost ones back late, as RTX) and says where a packet is lost for
good; each codec's assembler then makes frames:

- VP8 (RFC 7741): the payload descriptor stripped, the partitions of one RTP timestamp joined
  until the marker bit; a key frame is flagged from the VP8 frame header.
- H.264 (RFC 6184): single NAL units, STAP-A and FU-A to one Annex-B access unit per RTP
  timestamp; a key frame is one holding an IDR slice.
- Opus (RFC 7587): one frame per RTP payload.

A video frame with a hole is dropped, and video then waits for the next key frame.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "Assembler",
    "Frame",
    "H264Assembler",
    "OpusAssembler",
    "Packet",
    "Reorder",
    "Vp8Assembler",
    "assembler_for",
    "parse_tapped",
]

# How long a hole in the sequence is waited for before it counts as lost (the SFU's NACK and
# the publisher's retransmission take about a round trip).
HOLD_NS = 300_000_000
# The most packets held behind a hole, whatever their age.
HOLD_PACKETS = 1024
ANNEX_B = b"\x00\x00\x00\x01"
# A tap entry's head: arrival (ns), the RTP header's second byte, sequence, timestamp, SSRC.
TAPPED = struct.Struct("!QxBHII")


@dataclass(frozen=True, slots=True)
class Packet:
    """One tapped RTP packet: what the assemblers need of it."""

    arrived_ns: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole frame of a track: its RTP timestamp and source, when its first packet came."""

    timestamp: int
    ssrc: int
    arrived_ns: int
    data: bytes
    keyframe: bool


def parse_tapped(item: bytes) -> Packet:
    """A tap entry (media/_receive.c, ``tap_packet``): 8 bytes of arrival time, a 12-byte RTP
    header, the payload."""
    arrived, second, seq, timestamp, ssrc = TAPPED.unpack_from(item)
    return Packet(arrived, seq, timestamp, ssrc, second >= 0x80, item[20:])


class Reorder:
    """Packets of one stream back in sequence order. ``push`` yields ``(packet, lost_before)``
    in order: ``lost_before`` is true when packets before it never came. A duplicate, or a
    packet older than one already yielded, is dropped. A new SSRC starts afresh."""

    def __init__(self, hold_ns: int = HOLD_NS, hold_packets: int = HOLD_PACKETS) -> None:
        self.hold_ns = hold_ns
        self.hold_packets = hold_packets
        self._ssrc: int | None = None
        self._next: int | None = None  # the sequence number expected next
        self._held: dict[int, Packet] = {}
        self.lost = 0  # packets given up on

    def push(self, packet: Packet) -> Iterator[tuple[Packet, bool]]:
        if packet.ssrc != self._ssrc:
            yield from self.drain()
            self._ssrc = packet.ssrc
            self._next = None
        if self._next is None:
            self._next = packet.sequence_number
        if packet.sequence_number == self._next and not self._held:  # the usual case
            self._next = (self._next + 1) & 0xFFFF
            yield packet, False
            return
        behind = (self._next - packet.sequence_number) & 0xFFFF
        if 0 < behind < 0x8000 or packet.sequence_number in self._held:
            return  # too late, or a duplicate
        self._held[packet.sequence_number] = packet
        yield from self._release(packet.arrived_ns)

    def _release(self, now_ns: int) -> Iterator[tuple[Packet, bool]]:
        lost = False
        while self._held and self._next is not None:
            packet = self._held.pop(self._next, None)
            if packet is not None:
                self._next = (self._next + 1) & 0xFFFF
                yield packet, lost
                lost = False
                continue
            # A hole: wait for it, unless what is held is old or too much.
            oldest = min(self._held.values(), key=lambda p: p.arrived_ns)
            if now_ns - oldest.arrived_ns < self.hold_ns and len(self._held) < self.hold_packets:
                return
            first = min(self._held, key=lambda s: (s - self._next) & 0xFFFF)  # type: ignore[operator]
            self.lost += (first - self._next) & 0xFFFF
            self._next = first
            lost = True

    def drain(self) -> Iterator[tuple[Packet, bool]]:
        """Everything held, in order, as though every hole were lost (the stream ended)."""
        while self._held:
            yield from self._release(1 << 62)


class Assembler:
    """Packets of one track (in any order) to whole frames."""

    video = False

    def __init__(self) -> None:
        self.reorder = Reorder()
        self.frames_dropped = 0

    def push(self, packet: Packet) -> Iterator[Frame]:
        for ordered, lost in self.reorder.push(packet):
            yield from self._take(ordered, lost)

    def drain(self) -> Iterator[Frame]:
        for ordered, lost in self.reorder.drain():
            yield from self._take(ordered, lost)

    def _take(self, packet: Packet, lost_before: bool) -> Iterator[Frame]:
        raise NotImplementedError


class OpusAssembler(Assembler):
    """Opus: every RTP payload is one frame (a loss is a gap in time, nothing to repair)."""

    def _take(self, packet: Packet, lost_before: bool) -> Iterator[Frame]:
        if packet.payload:
            yield Frame(packet.timestamp, packet.ssrc, packet.arrived_ns, packet.payload, True)


class _VideoAssembler(Assembler):
    """The frame bookkeeping both video codecs share: the parts of one RTP timestamp until the
    marker bit; a frame with a hole is dropped and the next key frame awaited."""

    video = True

    def __init__(self) -> None:
        super().__init__()
        self._timestamp: int | None = None
        self._first: Packet | None = None
        self._parts: list[bytes] = []
        self._broken = False
        self.waiting_keyframe = True

    def _take(self, packet: Packet, lost_before: bool) -> Iterator[Frame]:
        if packet.timestamp != self._timestamp or packet.ssrc != getattr(self._first, "ssrc", None):
            if self._parts:  # the previous frame never saw its marker
                self._drop()
            self._timestamp, self._first, self._parts, self._broken = (
                packet.timestamp,
                packet,
                [],
                lost_before,
            )
        elif lost_before:
            self._broken = True
        if not self._broken:
            part = self._part(packet, starts=not self._parts)
            if part is None:
                self._broken = True
            else:
                self._parts.append(part)
        if not packet.marker:
            return
        first, parts, broken = self._first, self._parts, self._broken
        self._timestamp, self._first, self._parts, self._broken = None, None, [], False
        data = b"".join(parts)
        if broken or not data or first is None:
            self._drop()
            return
        keyframe = self._keyframe(data)
        if self.waiting_keyframe and not keyframe:
            self.frames_dropped += 1
            return
        self.waiting_keyframe = False
        yield Frame(first.timestamp, first.ssrc, first.arrived_ns, data, keyframe)

    def _drop(self) -> None:
        self.frames_dropped += 1
        self.waiting_keyframe = True
        self._parts = []

    def _part(self, packet: Packet, *, starts: bool) -> bytes | None:
        """The frame bytes this packet carries; None when it cannot be used (a frame that
        does not start where it should)."""
        raise NotImplementedError

    def _keyframe(self, data: bytes) -> bool:
        raise NotImplementedError


class Vp8Assembler(_VideoAssembler):
    """VP8 (RFC 7741)."""

    def _part(self, packet: Packet, *, starts: bool) -> bytes | None:
        p = packet.payload
        if not p:
            return None
        size = 1
        if p[0] & 0x80:  # X: extension bits follow
            if len(p) < 2:
                return None
            x = p[1]
            size = 2
            if x & 0x80:  # I: picture id, 7 or 15 bits
                if len(p) < 3:
                    return None
                size += 2 if p[2] & 0x80 else 1
            if x & 0x40:  # L: TL0PICIDX
                size += 1
            if x & 0x30:  # T or K: TID/KEYIDX
                size += 1
        if len(p) < size:
            return None
        # A frame starts with S set on partition 0; a continuation must not claim to start.
        start = bool(p[0] & 0x10) and (p[0] & 0x07) == 0
        if start != starts:
            return None
        return p[size:]

    def _keyframe(self, data: bytes) -> bool:
        return not data[0] & 0x01


class H264Assembler(_VideoAssembler):
    """H.264 (RFC 6184, packetization mode 0 and 1): Annex-B access units."""

    def __init__(self) -> None:
        super().__init__()
        self._fu = False  # inside a fragmented NAL unit

    def _part(self, packet: Packet, *, starts: bool) -> bytes | None:
        p = packet.payload
        if not p:
            return None
        if starts:
            self._fu = False
        kind = p[0] & 0x1F
        if 1 <= kind <= 23:  # a single NAL unit
            if self._fu:
                return None
            return ANNEX_B + p
        if kind == 24:  # STAP-A: 16-bit sizes, each followed by a NAL unit
            if self._fu:
                return None
            out = []
            i = 1
            while i + 2 <= len(p):
                size = (p[i] << 8) | p[i + 1]
                i += 2
                if size == 0 or i + size > len(p):
                    return None
                out.append(ANNEX_B + p[i : i + size])
                i += size
            return b"".join(out)
        if kind == 28 and len(p) >= 2:  # FU-A
            head = p[1]
            if head & 0x80:  # start: the NAL header is rebuilt from indicator and FU header
                if self._fu:
                    return None
                self._fu = not head & 0x40
                return ANNEX_B + bytes([(p[0] & 0xE0) | (head & 0x1F)]) + p[2:]
            if not self._fu:
                return None
            if head & 0x40:  # end
                self._fu = False
            return p[2:]
        return None

    def _keyframe(self, data: bytes) -> bool:
        return any(unit and unit[0] & 0x1F == 5 for unit in data.split(ANNEX_B))


def assembler_for(codec: str) -> Assembler:
    """The assembler of a track's codec ("opus", "vp8", "h264")."""
    if codec == "opus":
        return OpusAssembler()
    if codec == "vp8":
        return Vp8Assembler()
    if codec == "h264":
        return H264Assembler()
    raise ValueError(f"no assembler for {codec!r}")
