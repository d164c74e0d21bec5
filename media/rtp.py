"""RTP on bytes: read the few header fields forwarding needs and write a rewritten packet.

The forwarding path never builds aiortc ``RtpPacket`` objects: it reads fixed offsets with
``struct`` and writes a new header in front of the untouched payload. Header extension ids are
the ones Courtlink offers (the server is always the offerer, so every peer uses them):
mid = 1, ssrc-audio-level = 2, abs-send-time = 3 (aiortc's HEADER_EXTENSIONS).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "EXT_ABS_SEND_TIME",
    "EXT_AUDIO_LEVEL",
    "EXT_MID",
    "RtpHeader",
    "build_extensions",
    "parse_header",
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
    forwarding path needs the audio level of audio packets only."""
    size = len(data)
    if size < 12:
        raise RtpError("shorter than an RTP header")
    first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
    if first >> 6 != 2:
        raise RtpError("not RTP version 2")
    pos = 12 + 4 * (first & 0x0F)
    if pos > size:
        raise RtpError("truncated CSRC list")
    audio_level = abs_send_time = None
    if first & 0x10:
        if pos + 4 > size:
            raise RtpError("truncated extension header")
        profile, words = struct.unpack_from("!HH", data, pos)
        start = pos + 4
        pos = start + 4 * words
        if pos > size:
            raise RtpError("truncated extensions")
        if scan and profile == _ONE_BYTE_PROFILE:
            i = start
            while i < pos:
                byte = data[i]
                if byte == 0:  # padding between elements
                    i += 1
                    continue
                ext_id, length = byte >> 4, (byte & 0x0F) + 1
                if ext_id == 15:
                    break
                if i + 1 + length > pos:
                    raise RtpError("truncated extension element")
                value = data[i + 1 : i + 1 + length]
                if ext_id == EXT_AUDIO_LEVEL and length == 1:
                    audio_level = value[0]
                elif ext_id == EXT_ABS_SEND_TIME and length == 3:
                    abs_send_time = int.from_bytes(value, "big")
                i += 1 + length
    end = size
    if first & 0x20:
        if size == 0 or data[-1] == 0 or data[-1] > size - pos:
            raise RtpError("bad padding")
        end = size - data[-1]
    return RtpHeader(
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload_start=pos,
        payload_end=end,
        audio_level=audio_level,
        abs_send_time=abs_send_time,
    )


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


def vp8_keyframe(payload: bytes | memoryview) -> bool:
    """Whether a VP8 RTP payload starts a key frame (RFC 7741 payload descriptor)."""
    if not payload:
        return False
    first = payload[0]
    pos = 1
    if first & 0x80:  # X: extension byte
        if len(payload) < 2:
            return False
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id
            if len(payload) <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K
            pos += 1
    start_of_partition = bool(first & 0x10)
    partition_id = first & 0x07
    if not start_of_partition or partition_id != 0 or len(payload) <= pos:
        return False
    return not payload[pos] & 0x01  # P bit of the VP8 frame header: 0 = key frame


def h264_keyframe(payload: bytes | memoryview) -> bool:
    """Whether an H.264 RTP payload (RFC 6184) carries an IDR slice or SPS at its start."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: walk the aggregated units
        pos = 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos : pos + 2], "big")
            if size and payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal == 28 and len(payload) > 1:  # FU-A: the first fragment of an IDR
        return bool(payload[1] & 0x80) and payload[1] & 0x1F == 5
    return False
