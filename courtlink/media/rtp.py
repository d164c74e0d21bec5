"""RTP on bytes: read the few header fields forwarding needs and write a rewritten packet.

The forwarding path never builds aiortc ``RtpPacket`` objects: it reads fixed offsets (in C,
media/_receive.c) and writes a new header in front of the untouched payload. Header extension ids
are the ones Courtlink offers (the server is always the offerer, so every peer uses them):
mid = 1, ssrc-audio-level = 2, abs-send-time = 3 (aiortc's HEADER_EXTENSIONS).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from courtlink.media import _forward

__all__ = [
    "EXT_ABS_SEND_TIME",
    "EXT_AUDIO_LEVEL",
    "EXT_MID",
    "RtpError",
    "RtpHeader",
    "build_extensions",
    "h264_keyframe",
    "parse_header",
    "vp8_keyframe",
    "write_packet",
]

EXT_MID = 1
EXT_AUDIO_LEVEL = 2
EXT_ABS_SEND_TIME = 3

_FIXED = struct.Struct("!BBHII")
_ONE_BYTE_PROFILE = 0xBEDE


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet."""


@dataclass(slots=True)
class RtpHeader:
    """What forwarding needs of an incoming packet. ``payload_start``/``payload_end`` index the
    payload in the original datagram (CSRCs, extensions and padding excluded)."""

    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload_start: int
    payload_end: int
    audio_level: int | None = None  # the raw extension byte (V flag + level)
    abs_send_time: int | None = None


def parse_header(data: bytes, *, scan: bool = True) -> RtpHeader:
    """Parse the fixed header and the one-byte extensions we use. Raises RtpError.

    ``scan=False`` skips reading the extension elements (their block is still bounded): the
    forwarding path needs the audio level of audio packets only. The parser is the forwarding
    core's (media/_receive.c), the one every received packet goes through."""
    try:
        fields = _forward.parse_rtp(data, scan)
    except ValueError as error:
        raise RtpError(str(error)) from None
    return RtpHeader(*fields)


def build_extensions(
    mid: bytes, *, audio_level: int | None = None, abs_send_time: int | None = None
) -> bytes:
    """A one-byte-header extension block: mid, then audio level or abs-send-time."""
    body = bytes([(EXT_MID << 4) | (len(mid) - 1)]) + mid
    if audio_level is not None:
        body += bytes([(EXT_AUDIO_LEVEL << 4), audio_level & 0xFF])
    if abs_send_time is not None:
        body += bytes([(EXT_ABS_SEND_TIME << 4) | 2]) + (abs_send_time & 0xFFFFFF).to_bytes(
            3, "big"
        )
    pad = -len(body) % 4
    body += b"\x00" * pad
    return struct.pack("!HH", _ONE_BYTE_PROFILE, len(body) // 4) + body


def write_packet(
    *,
    marker: bool,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    extensions: bytes,
    payload: bytes | memoryview,
) -> bytes:
    """An RTP packet: fixed header (no CSRC, no padding), extension block, payload."""
    first = 0x90 if extensions else 0x80
    second = (0x80 if marker else 0) | payload_type
    return _FIXED.pack(first, second, sequence_number, timestamp, ssrc) + extensions + payload


# Whether a payload starts a key frame: VP8 (RFC 7741 payload descriptor, then the frame
# header's P bit) and H.264 (RFC 6184: an IDR slice or an SPS, alone, in a STAP-A or the first
# FU-A fragment). In C (media/_receive.c), as the receive path uses them.
vp8_keyframe = _forward.vp8_keyframe
h264_keyframe = _forward.h264_keyframe
