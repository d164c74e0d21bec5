"""The parts of a recorded WebM file around its clusters (Matroska's EBML, RFC 8794 and the
Matroska specification): the header written when the file opens, and what the end of the file
fills in. The clusters themselves, a frame at a time, are the ``Muxer``'s (media/_assemble.c).

The layout is libavformat's: the EBML header; a Segment whose size is "unknown" until the file
is finished; room for a SeekHead; Info (its Duration's room kept until the end); Tracks; the
clusters, each written whole; Cues. A file cut short by a kill is what a live WebM stream is,
and players (and ``journal.read_duration``) read it to its last whole cluster.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

__all__ = [
    "OPUS_CODEC_DELAY_NS",
    "OPUS_TS_OFFSET_MS",
    "Header",
    "duration",
    "header",
    "seek_head",
    "segment_size",
]

# The OpusHead's pre-skip (track.opus_head) as Matroska's CodecDelay. libavformat stamps Opus
# blocks this much late (rounded to the millisecond) and its demuxer takes it off again.
OPUS_PRE_SKIP = 312
OPUS_CODEC_DELAY_NS = OPUS_PRE_SKIP * 1_000_000_000 // 48000
OPUS_TS_OFFSET_MS = (OPUS_CODEC_DELAY_NS + 500_000) // 1_000_000
OPUS_SEEK_PRE_ROLL_NS = 80_000_000

EBML = 0x1A45DFA3
SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
INFO = 0x1549A966
TRACKS = 0x1654AE6B
CUES = 0x1C53BB6B
VOID = 0xEC

SEEK_HEAD_ROOM = 96  # three entries (Info, Tracks, Cues) and a Void
DURATION_ROOM = 11  # Duration: a 2-byte ID, a 1-byte size, an 8-byte float


def _id(element: int) -> bytes:
    return element.to_bytes((element.bit_length() + 7) // 8, "big")


def _size(n: int) -> bytes:
    length = 1
    while length < 8 and (n + 1) >> (7 * length):
        length += 1
    return (n | 1 << (7 * length)).to_bytes(length, "big")


def _element(element: int, payload: bytes) -> bytes:
    return _id(element) + _size(len(payload)) + payload


def _uint(element: int, value: int) -> bytes:
    return _element(element, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _float(element: int, value: float) -> bytes:
    return _element(element, struct.pack(">d", value))


def _void(length: int) -> bytes:
    """A Void element of exactly ``length`` bytes (2 to 128)."""
    assert 2 <= length <= 128
    return bytes([VOID, 0x80 | (length - 2)]) + bytes(length - 2)


@dataclass(frozen=True)
class Header:
    """A file's header and where the end of the file fills it in (offsets in the file)."""

    data: bytes
    segment_data: int  # where the Segment's data starts (its 8-byte size just before)
    seek_head: int  # SEEK_HEAD_ROOM bytes, a Void until the end
    duration: int  # DURATION_ROOM bytes in Info, a Void until the end
    info: int
    tracks: int


def header(
    kind: str, codec: str, *, size: tuple[int, int] | None = None, codec_private: bytes = b""
) -> Header:
    """The header of a WebM file of one track (``codec``: vp8 or opus; ``size``: the picture's,
    for video)."""
    ebml = _element(
        EBML,
        _uint(0x4286, 1)  # EBMLVersion
        + _uint(0x42F7, 1)  # EBMLReadVersion
        + _uint(0x42F2, 4)  # EBMLMaxIDLength
        + _uint(0x42F3, 8)  # EBMLMaxSizeLength
        + _element(0x4282, b"webm")  # DocType
        + _uint(0x4287, 4)  # DocTypeVersion
        + _uint(0x4285, 2),  # DocTypeReadVersion
    )
    segment = _id(SEGMENT) + b"\x01\xff\xff\xff\xff\xff\xff\xff"  # size unknown until the end
    info = _element(
        INFO,
        _uint(0x2AD7B1, 1_000_000)  # TimestampScale: milliseconds
        + _element(0x4D80, b"courtlink")  # MuxingApp
        + _element(0x5741, b"courtlink")  # WritingApp
        + _void(DURATION_ROOM),
    )
    entry = (
        _uint(0xD7, 1)  # TrackNumber
        + _uint(0x73C5, secrets.randbits(63) | 1)  # TrackUID
        + _uint(0x9C, 0)  # FlagLacing
        + _element(0x22B59C, b"und")  # Language
    )
    if kind == "audio":
        entry += (
            _element(0x86, b"A_OPUS")  # CodecID
            + _uint(0x56AA, OPUS_CODEC_DELAY_NS)  # CodecDelay
            + _uint(0x56BB, OPUS_SEEK_PRE_ROLL_NS)  # SeekPreRoll
            + _uint(0x83, 2)  # TrackType: audio
            + _element(0xE1, _uint(0x9F, 2) + _float(0xB5, 48000.0))  # Channels, SamplingFrequency
            + _element(0x63A2, codec_private)  # CodecPrivate: the OpusHead
        )
    else:
        width, height = size or (640, 480)
        entry += (
            _element(0x86, b"V_VP8")
            + _uint(0x83, 1)  # TrackType: video
            + _element(0xE0, _uint(0xB0, width) + _uint(0xBA, height))  # PixelWidth, PixelHeight
        )
    tracks = _element(TRACKS, _element(0xAE, entry))
    segment_data = len(ebml) + len(segment)
    info_at = segment_data + SEEK_HEAD_ROOM
    data = ebml + segment + _void(SEEK_HEAD_ROOM) + info + tracks
    return Header(
        data=data,
        segment_data=segment_data,
        seek_head=segment_data,
        duration=info_at + len(info) - DURATION_ROOM,
        info=info_at,
        tracks=info_at + len(info),
    )


def seek_head(head: Header, cues: int) -> bytes:
    """The SeekHead (Info, Tracks, Cues at ``cues`` in the file), filling its room exactly."""
    entries = b"".join(
        _element(
            0x4DBB,  # Seek
            _element(0x53AB, _id(element))  # SeekID
            + _uint(0x53AC, position - head.segment_data),  # SeekPosition
        )
        for element, position in ((INFO, head.info), (TRACKS, head.tracks), (CUES, cues))
    )
    element = _element(SEEK_HEAD, entries)
    return element + _void(SEEK_HEAD_ROOM - len(element))


def duration(ms: float) -> bytes:
    """Info's Duration (milliseconds), filling its room exactly."""
    return _float(0x4489, ms)


def segment_size(head: Header, end: int) -> bytes:
    """The Segment's 8-byte size once the file ends at ``end``."""
    return (1 << 56 | (end - head.segment_data)).to_bytes(8, "big")
