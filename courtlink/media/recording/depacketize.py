"""RTP payloads to whole frames, without decoding: what a container needs of each codec.

The recorder's thread hands each batch a Producer's tap took (a ``Tap``, media/_receive.c: per
packet, arrival time, a plain RTP header, the payload, in one buffer) to one ``Assembler`` per
track, in one call; the work per packet is in C (media/_assemble.c), so Python sees no object
per packet, and one per frame only when it asks for the frames (H.264):

- the packets back in sequence order (the SFU's NACKs bring lost ones back late, as RTX): a
  hole waits ``HOLD_NS`` (or until ``HOLD_PACKETS`` are held behind it), then counts as lost;
- VP8 (RFC 7741): the payload descriptor stripped, the partitions of one RTP timestamp joined
  until the marker bit; a key frame is flagged from the VP8 frame header;
- H.264 (RFC 6184): single NAL units, STAP-A and FU-A to one Annex-B access unit per RTP
  timestamp; a key frame is one holding an IDR slice;
- Opus (RFC 7587): one frame per RTP payload.

A video frame with a hole is dropped, and video then waits for the next key frame (a decoder
could not use what follows); nothing here decodes.
"""

from __future__ import annotations

from courtlink.media._assemble import HOLD_NS, HOLD_PACKETS, Assembler, Frame

__all__ = ["HOLD_NS", "HOLD_PACKETS", "Assembler", "Frame", "tapped", "vp8_size"]


def tapped(
    arrived_ns: int, sequence_number: int, timestamp: int, ssrc: int, marker: bool, payload: bytes
) -> bytes:
    """A tap entry as media/_receive.c's ``tap_packet`` makes it (for tests and tools, and
    ``Tap.append``): 8 bytes of arrival time, a plain 12-byte RTP header (payload type 96),
    the payload."""
    return (
        arrived_ns.to_bytes(8, "big")
        + bytes([0x80, (0x80 if marker else 0) | 96])
        + sequence_number.to_bytes(2, "big")
        + timestamp.to_bytes(4, "big")
        + ssrc.to_bytes(4, "big")
        + payload
    )


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 key frame's header (RFC 6386, 9.1); None for others."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return (
        int.from_bytes(frame[6:8], "little") & 0x3FFF,
        int.from_bytes(frame[8:10], "little") & 0x3FFF,
    )
