"""media.rtp: the byte-level RTP reader/writer of the forwarding path, checked against aiortc's
own RtpPacket (what the SFU's peers parse and serialize) and against real VP8/H.264 payloads.

Header extension ids are Courtlink's: mid = 1, ssrc-audio-level = 2, abs-send-time = 3.
"""

from __future__ import annotations

import fractions
import random
import struct

import av
import pytest
from aiortc.codecs import h264 as aiortc_h264
from aiortc.codecs import vpx as aiortc_vpx
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from av import VideoFrame

from courtlink.media.rtp import (
    EXT_ABS_SEND_TIME,
    EXT_AUDIO_LEVEL,
    EXT_MID,
    RtpError,
    RtpHeader,
    build_extensions,
    h264_keyframe,
    parse_header,
    vp8_keyframe,
    write_packet,
)

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def extensions_map() -> HeaderExtensionsMap:
    """The map a Courtlink peer's DTLS transport ends up with after negotiation."""
    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
                RTCRtpHeaderExtensionParameters(id=2, uri=AUDIO_LEVEL_URI),
                RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI),
            ]
        )
    )
    return ext_map


EXT_MAP = extensions_map()


def aiortc_packet(
    *,
    payload: bytes = b"payload bytes",
    marker: int = 0,
    payload_type: int = 97,
    sequence_number: int = 4321,
    timestamp: int = 123_456_789,
    ssrc: int = 0x11223344,
    mid: str | None = "1",
    audio_level: tuple[bool, int] | None = None,
    abs_send_time: int | None = None,
    csrc: list[int] | None = None,
    padding_size: int = 0,
) -> RtpPacket:
    packet = RtpPacket(
        payload_type=payload_type,
        marker=marker,
        sequence_number=sequence_number,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=payload,
    )
    packet.extensions.mid = mid
    packet.extensions.audio_level = audio_level
    packet.extensions.abs_send_time = abs_send_time
    packet.csrc = list(csrc or [])
    packet.padding_size = padding_size
    return packet


def payload_of(data: bytes, header: RtpHeader) -> bytes:
    return data[header.payload_start : header.payload_end]


def test_extension_ids_are_courtlinks() -> None:
    assert (EXT_MID, EXT_AUDIO_LEVEL, EXT_ABS_SEND_TIME) == (1, 2, 3)


# --- parse_header on packets aiortc serialized -------------------------------------------------


def test_parse_video_packet_serialized_by_aiortc() -> None:
    packet = aiortc_packet(
        marker=1,
        payload_type=97,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0xDEADBEEF,
        mid="3",
        abs_send_time=0xABCDEF,
        payload=b"\x90\x80\x81\x23vp8 data",
    )
    data = packet.serialize(EXT_MAP)
    header = parse_header(data)
    assert header.marker is True
    assert header.payload_type == 97
    assert header.sequence_number == 65535
    assert header.timestamp == 0xFFFFFFFF
    assert header.ssrc == 0xDEADBEEF
    assert header.abs_send_time == 0xABCDEF
    assert header.audio_level is None
    assert payload_of(data, header) == packet.payload
    assert header.payload_end == len(data)


def test_parse_audio_packet_serialized_by_aiortc() -> None:
    packet = aiortc_packet(
        marker=0, payload_type=96, mid="0", audio_level=(True, 42), payload=b"\xfc opus"
    )
    data = packet.serialize(EXT_MAP)
    header = parse_header(data)
    assert header.marker is False
    assert header.payload_type == 96
    assert header.audio_level == 0x80 | 42  # the raw byte: V flag and level
    assert header.abs_send_time is None
    assert payload_of(data, header) == b"\xfc opus"


def test_parse_audio_level_without_voice_flag() -> None:
    data = aiortc_packet(audio_level=(False, 127)).serialize(EXT_MAP)
    assert parse_header(data).audio_level == 127


def test_parse_packet_without_extensions() -> None:
    data = aiortc_packet(mid=None, payload=b"plain").serialize(EXT_MAP)
    assert data[0] & 0x10 == 0  # no X bit
    header = parse_header(data)
    assert header.payload_start == 12
    assert payload_of(data, header) == b"plain"
    assert header.audio_level is None
    assert header.abs_send_time is None


def test_parse_empty_payload() -> None:
    data = aiortc_packet(payload=b"", abs_send_time=5).serialize(EXT_MAP)
    header = parse_header(data)
    assert header.payload_start == header.payload_end == len(data)
    assert header.abs_send_time == 5


@pytest.mark.parametrize("count", [1, 2, 15])
def test_parse_with_csrcs(count: int) -> None:
    csrc = [0x01010101 * (i + 1) & 0xFFFFFFFF for i in range(count)]
    packet = aiortc_packet(csrc=csrc, abs_send_time=0x000102, payload=b"after csrc")
    data = packet.serialize(EXT_MAP)
    assert data[0] & 0x0F == count
    header = parse_header(data)
    assert header.abs_send_time == 0x000102
    assert payload_of(data, header) == b"after csrc"
    assert RtpPacket.parse(data, EXT_MAP).csrc == csrc


@pytest.mark.parametrize("padding_size", [1, 4, 255])
@pytest.mark.parametrize("with_extensions", [True, False])
def test_parse_with_padding(padding_size: int, with_extensions: bool) -> None:
    packet = aiortc_packet(
        mid="1" if with_extensions else None,
        abs_send_time=77 if with_extensions else None,
        padding_size=padding_size,
        payload=b"padded payload",
    )
    data = packet.serialize(EXT_MAP)
    assert data[0] & 0x20
    header = parse_header(data)
    assert header.payload_end == len(data) - padding_size
    assert payload_of(data, header) == b"padded payload"
    assert header.abs_send_time == (77 if with_extensions else None)


def test_parse_padding_only_packet() -> None:
    """A bandwidth probe: padding and nothing else."""
    data = aiortc_packet(mid=None, payload=b"", padding_size=32).serialize(EXT_MAP)
    header = parse_header(data)
    assert header.payload_start == header.payload_end == 12


def test_parse_skips_two_byte_profile_extensions() -> None:
    # aiortc switches to the two-byte form (profile 0x1000) when a value exceeds 16 bytes.
    long_mid = "m" * 17
    packet = aiortc_packet(
        mid=long_mid,
        abs_send_time=0x123456,
        audio_level=(True, 10),
        csrc=[7],
        payload=b"two-byte payload",
    )
    data = packet.serialize(EXT_MAP)
    assert struct.unpack_from("!H", data, 16)[0] == 0x1000
    assert RtpPacket.parse(data, EXT_MAP).extensions.mid == long_mid
    header = parse_header(data)
    # Ignored (only the one-byte form is read), but skipped correctly.
    assert header.abs_send_time is None
    assert header.audio_level is None
    assert payload_of(data, header) == b"two-byte payload"


def test_parse_skips_unknown_profile() -> None:
    body = b"\x12\x34\x56\x78" * 2
    data = (
        struct.pack("!BBHII", 0x90, 97, 1, 2, 3)
        + struct.pack("!HH", 0xABCD, len(body) // 4)
        + body
        + b"data"
    )
    header = parse_header(data)
    assert header.payload_start == 12 + 4 + 8
    assert payload_of(data, header) == b"data"
    assert header.abs_send_time is None


def test_parse_one_byte_elements_with_padding_unknown_ids_and_stop_id() -> None:
    elements = (
        b"\x00\x00"  # padding between elements
        + bytes([0x51]) + b"zz"  # id 5, two bytes: unknown, skipped
        + bytes([0x22]) + b"\x01\x02\x03"  # id 2 with the wrong length: not an audio level
        + bytes([0x32]) + b"\x0a\x0b\x0c"  # abs-send-time
        + bytes([0x20, 0x99])  # audio level
        + b"\x00"
    )  # fmt: skip
    pad = -len(elements) % 4
    block = elements + b"\x00" * pad
    data = (
        struct.pack("!BBHII", 0x90, 96, 1, 2, 3)
        + struct.pack("!HH", 0xBEDE, len(block) // 4)
        + block
        + b"opus"
    )
    header = parse_header(data)
    assert header.abs_send_time == 0x0A0B0C
    assert header.audio_level == 0x99
    assert payload_of(data, header) == b"opus"
    # (aiortc would reject this block: it unpacks the 3-byte id-2 element as an audio level.)

    # id 15 is reserved: parsing of the block stops there (RFC 8285), the payload is unaffected.
    block = bytes([0xF0, 0x00, 0x32]) + b"\x0a\x0b\x0c" + b"\x00\x00"
    data = (
        struct.pack("!BBHII", 0x90, 96, 1, 2, 3)
        + struct.pack("!HH", 0xBEDE, len(block) // 4)
        + block
        + b"opus"
    )
    header = parse_header(data)
    assert header.abs_send_time is None
    assert payload_of(data, header) == b"opus"


def test_parse_agrees_with_aiortc_on_random_packets() -> None:
    rng = random.Random(20240601)
    for _ in range(300):
        packet = aiortc_packet(
            marker=rng.randint(0, 1),
            payload_type=rng.randint(0, 127),
            sequence_number=rng.randint(0, 0xFFFF),
            timestamp=rng.randint(0, 0xFFFFFFFF),
            ssrc=rng.randint(0, 0xFFFFFFFF),
            mid=rng.choice([None, "0", "7", "12", "a" * 16]),
            audio_level=rng.choice([None, (True, rng.randint(0, 127)), (False, 3)]),
            abs_send_time=rng.choice([None, rng.randint(0, 0xFFFFFF)]),
            csrc=[rng.randint(0, 0xFFFFFFFF) for _ in range(rng.randint(0, 3))],
            padding_size=rng.choice([0, 0, 1, rng.randint(1, 255)]),
            payload=rng.randbytes(rng.randint(0, 1200)),
        )
        data = packet.serialize(EXT_MAP)
        ours = parse_header(data)
        theirs = RtpPacket.parse(data, EXT_MAP)
        assert ours.marker == bool(theirs.marker)
        assert ours.payload_type == theirs.payload_type
        assert ours.sequence_number == theirs.sequence_number
        assert ours.timestamp == theirs.timestamp
        assert ours.ssrc == theirs.ssrc
        assert payload_of(data, ours) == theirs.payload
        assert ours.abs_send_time == theirs.extensions.abs_send_time
        level = theirs.extensions.audio_level
        assert ours.audio_level == (None if level is None else (0x80 if level[0] else 0) | level[1])


# --- malformed input ----------------------------------------------------------------------------

GOOD = aiortc_packet(abs_send_time=1, payload=b"x" * 20).serialize(EXT_MAP)


def _with_first_byte(data: bytes, first: int) -> bytes:
    return bytes([first]) + data[1:]


MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "one byte": b"\x80",
    "eleven bytes": GOOD[:11],
    "version 0": _with_first_byte(GOOD, GOOD[0] & 0x3F),
    "version 1": _with_first_byte(GOOD, (GOOD[0] & 0x3F) | 0x40),
    "version 3": _with_first_byte(GOOD, GOOD[0] | 0xC0),
    "extension header cut": struct.pack("!BBHII", 0x90, 97, 1, 2, 3) + b"\xbe\xde",
    "extension header missing": struct.pack("!BBHII", 0x90, 97, 1, 2, 3),
    "extension longer than packet": struct.pack("!BBHII", 0x90, 97, 1, 2, 3)
    + struct.pack("!HH", 0xBEDE, 4)
    + b"\x10\x31\x00\x00",
    "extension cut by packet end": GOOD[:18],
    "one-byte element overruns its block": struct.pack("!BBHII", 0x90, 97, 1, 2, 3)
    + struct.pack("!HH", 0xBEDE, 1)
    + b"\x00\x00\x00\x20",  # an audio level element whose value byte is missing
    "abs-send-time overruns its block": struct.pack("!BBHII", 0x90, 97, 1, 2, 3)
    + struct.pack("!HH", 0xBEDE, 1)
    + b"\x00\x00\x32\xaa"
    + b"payload",
    "csrc list cut": struct.pack("!BBHII", 0x82, 97, 1, 2, 3) + b"\x00\x00\x00\x01",
    "csrc list missing": struct.pack("!BBHII", 0x8F, 97, 1, 2, 3),
    "padding count zero": _with_first_byte(GOOD, GOOD[0] | 0x20)[:-1] + b"\x00",
    "padding longer than payload": _with_first_byte(GOOD, GOOD[0] | 0x20)[:-1] + b"\xff",
    "padding into the header": struct.pack("!BBHII", 0xA0, 97, 1, 2, 3) + b"\x05",
    "padding flag, header only": struct.pack("!BBHII", 0xA0, 97, 1, 2, 3),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_packets_raise_rtp_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_header(data)
    # aiortc rejects them too: the reader is no more lenient than the library.
    with pytest.raises(ValueError):  # noqa: PT011
        RtpPacket.parse(data, EXT_MAP)


def test_rtp_error_is_a_value_error() -> None:
    assert issubclass(RtpError, ValueError)


def test_padding_exactly_the_payload_is_accepted() -> None:
    data = struct.pack("!BBHII", 0xA0, 97, 1, 2, 3) + b"\x00\x00\x03"
    header = parse_header(data)
    assert header.payload_start == header.payload_end == 12


# --- write_packet + build_extensions, read back by aiortc --------------------------------------


@pytest.mark.parametrize("mid", [b"0", b"7", b"12", b"abc", b"x" * 16])
def test_written_video_packet_parsed_by_aiortc(mid: bytes) -> None:
    ext = build_extensions(mid, abs_send_time=0x89ABCD)
    assert len(ext) % 4 == 0
    assert struct.unpack_from("!HH", ext) == (0xBEDE, len(ext) // 4 - 1)
    payload = b"\x10" + bytes(range(200))
    data = write_packet(
        marker=True,
        payload_type=97,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0xCAFEBABE,
        extensions=ext,
        payload=payload,
    )
    packet = RtpPacket.parse(data, EXT_MAP)
    assert packet.version == 2
    assert packet.marker == 1
    assert packet.payload_type == 97
    assert packet.sequence_number == 65535
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.ssrc == 0xCAFEBABE
    assert packet.csrc == []
    assert packet.padding_size == 0
    assert packet.payload == payload
    assert packet.extensions.mid == mid.decode()
    assert packet.extensions.abs_send_time == 0x89ABCD
    assert packet.extensions.audio_level is None

    header = parse_header(data)
    assert header.abs_send_time == 0x89ABCD
    assert payload_of(data, header) == payload


@pytest.mark.parametrize(
    ("raw", "expected"), [(0x80 | 30, (True, 30)), (30, (False, 30)), (0xFF, (True, 127))]
)
def test_written_audio_packet_parsed_by_aiortc(raw: int, expected: tuple[bool, int]) -> None:
    data = write_packet(
        marker=False,
        payload_type=96,
        sequence_number=0,
        timestamp=0,
        ssrc=1,
        extensions=build_extensions(b"4", audio_level=raw),
        payload=memoryview(b"opus frame"),
    )
    packet = RtpPacket.parse(data, EXT_MAP)
    assert packet.marker == 0
    assert packet.payload_type == 96
    assert packet.sequence_number == 0
    assert packet.timestamp == 0
    assert packet.ssrc == 1
    assert packet.extensions.mid == "4"
    assert packet.extensions.audio_level == expected
    assert packet.extensions.abs_send_time is None
    assert packet.payload == b"opus frame"
    assert parse_header(data).audio_level == raw


def test_written_packet_with_every_extension() -> None:
    ext = build_extensions(b"5", audio_level=0x85, abs_send_time=0x1000001)  # masked to 24 bits
    data = write_packet(
        marker=False,
        payload_type=111,
        sequence_number=1,
        timestamp=2,
        ssrc=3,
        extensions=ext,
        payload=b"",
    )
    packet = RtpPacket.parse(data, EXT_MAP)
    assert packet.extensions.mid == "5"
    assert packet.extensions.audio_level == (True, 5)
    assert packet.extensions.abs_send_time == 1
    assert packet.payload == b""


def test_written_packet_without_extensions() -> None:
    data = write_packet(
        marker=True,
        payload_type=0,
        sequence_number=9,
        timestamp=10,
        ssrc=11,
        extensions=b"",
        payload=b"abc",
    )
    assert data[0] == 0x80
    assert len(data) == 15
    packet = RtpPacket.parse(data, EXT_MAP)
    assert packet.extensions.mid is None
    assert (packet.marker, packet.sequence_number, packet.payload) == (1, 9, b"abc")


def test_rewrite_round_trip_keeps_payload_untouched() -> None:
    """What a Consumer does: read a browser's packet, write it again with new ids."""
    original = aiortc_packet(
        csrc=[1, 2],
        mid="0",
        abs_send_time=123,
        padding_size=3,
        payload=b"\x90\x80\x80\x01" + bytes(100),
    ).serialize(EXT_MAP)
    header = parse_header(original)
    rewritten = write_packet(
        marker=header.marker,
        payload_type=header.payload_type,
        sequence_number=(header.sequence_number + 1000) & 0xFFFF,
        timestamp=(header.timestamp + 90000) & 0xFFFFFFFF,
        ssrc=42,
        extensions=build_extensions(b"7", abs_send_time=456),
        payload=memoryview(original)[header.payload_start : header.payload_end],
    )
    packet = RtpPacket.parse(rewritten, EXT_MAP)
    assert packet.payload == b"\x90\x80\x80\x01" + bytes(100)
    assert packet.ssrc == 42
    assert packet.extensions.mid == "7"
    assert packet.extensions.abs_send_time == 456
    assert packet.sequence_number == (4321 + 1000) & 0xFFFF


# --- VP8 key frames on real libvpx output -------------------------------------------------------


def encode_vp8(count: int) -> list[tuple[bool, bytes]]:
    """``count`` VP8 frames of a 64x48 noise picture; only the first is a key frame."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = 64, 48
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, 30)
    codec.framerate = fractions.Fraction(30, 1)
    codec.gop_size = 1000
    codec.bit_rate = 1_000_000
    codec.options = {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8"}
    rng = random.Random(7)
    frames: list[tuple[bool, bytes]] = []
    for i in range(count):
        frame = VideoFrame(64, 48, "yuv420p")
        for plane in frame.planes:
            plane.update(rng.randbytes(plane.buffer_size))
        frame.pts = i
        frame.time_base = codec.time_base
        if i == 0:
            frame.pict_type = av.video.frame.PictureType.I
        frames.extend((packet.is_keyframe, bytes(packet)) for packet in codec.encode(frame))
    frames.extend((packet.is_keyframe, bytes(packet)) for packet in codec.encode(None))
    return frames


@pytest.fixture(scope="module")
def vp8_frames() -> list[tuple[bool, bytes]]:
    frames = encode_vp8(5)
    assert len(frames) == 5
    assert [key for key, _ in frames] == [True, False, False, False, False]
    return frames


def aiortc_says_keyframe(payload: bytes) -> bool:
    descriptor, rest = VpxPayloadDescriptor.parse(payload)
    return bool(
        descriptor.partition_start and descriptor.partition_id == 0 and rest and not rest[0] & 1
    )


@pytest.mark.parametrize("picture_id", [0, 127, 128, 32767])
def test_vp8_keyframe_on_libvpx_frames(
    vp8_frames: list[tuple[bool, bytes]], picture_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small packets, so that every frame spans several RTP packets.
    monkeypatch.setattr(aiortc_vpx, "PACKET_MAX", 100)
    key_payloads = Vp8Encoder._packetize(vp8_frames[0][1], picture_id)
    assert len(key_payloads) > 2
    assert [vp8_keyframe(p) for p in key_payloads] == [True] + [False] * (len(key_payloads) - 1)
    assert vp8_keyframe(memoryview(key_payloads[0]))
    for _, data in vp8_frames[1:]:
        for payload in Vp8Encoder._packetize(data, picture_id):
            assert not vp8_keyframe(payload)
            assert not aiortc_says_keyframe(payload)
    for payload in key_payloads:
        assert vp8_keyframe(payload) == aiortc_says_keyframe(payload)


def test_vp8_keyframe_single_packet_frames(vp8_frames: list[tuple[bool, bytes]]) -> None:
    results = [vp8_keyframe(p) for _, data in vp8_frames for p in Vp8Encoder._packetize(data, 5)]
    assert results[0] is True
    assert not any(results[1:])


# Payload descriptors (RFC 7741 section 4.2) in front of a key frame's VP8 data.
DESCRIPTORS: dict[str, bytes] = {
    "no X": b"\x10",
    "no X, N bit": b"\x30",
    "I, 7-bit picture id": b"\x90\x80\x05",
    "I, 15-bit picture id": b"\x90\x80\x81\x23",
    "L": b"\x90\x40\x07",
    "T": b"\x90\x20\x40",
    "K": b"\x90\x10\x01",
    "T and K": b"\x90\x30\x41",
    "I 7-bit, L, T": b"\x90\xe0\x7f\x07\x40",
    "I 15-bit, L, T, K": b"\x90\xf0\xff\xff\x07\x41",
    "X, no optional fields": b"\x90\x00",
}


@pytest.mark.parametrize("descriptor", DESCRIPTORS.values(), ids=DESCRIPTORS.keys())
def test_vp8_descriptor_variants(vp8_frames: list[tuple[bool, bytes]], descriptor: bytes) -> None:
    key, inter = vp8_frames[0][1], vp8_frames[1][1]
    assert vp8_keyframe(descriptor + key)
    assert aiortc_says_keyframe(descriptor + key)
    assert not vp8_keyframe(descriptor + inter)
    # Not the start of the first partition: never a key frame start.
    not_start = bytes([descriptor[0] & ~0x10]) + descriptor[1:]
    assert not vp8_keyframe(not_start + key)
    other_partition = bytes([descriptor[0] | 0x01]) + descriptor[1:]
    assert not vp8_keyframe(other_partition + key)


TRUNCATED_VP8: dict[str, bytes] = {
    "empty": b"",
    "X without its extension byte": b"\x90",
    "I without a picture id": b"\x90\x80",
    "descriptor only": b"\x10",
    "extended descriptor only": b"\x90\x80\x81\x23",
    "L without TL0PICIDX and data": b"\x90\x40",
}


@pytest.mark.parametrize("payload", TRUNCATED_VP8.values(), ids=TRUNCATED_VP8.keys())
def test_vp8_truncated_payloads_are_not_keyframes(payload: bytes) -> None:
    assert vp8_keyframe(payload) is False


# --- H.264 key frames ----------------------------------------------------------------------------

SPS = bytes([0x67, 0x42, 0xE0, 0x1F, 0xDA, 0x01, 0x40, 0x16, 0xE8])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
SEI = bytes([0x06, 0x05, 0x01, 0xFF, 0x80])
AUD = bytes([0x09, 0xF0])
IDR = bytes([0x65, 0x88, 0x84]) + bytes(range(40))
SLICE = bytes([0x41, 0x9A, 0x02]) + bytes(range(40))


@pytest.mark.parametrize(
    ("nal", "expected"),
    [(IDR, True), (SPS, True), (SLICE, False), (PPS, False), (SEI, False), (AUD, False)],
    ids=["IDR (5)", "SPS (7)", "non-IDR slice (1)", "PPS (8)", "SEI (6)", "AUD (9)"],
)
def test_h264_single_nal(nal: bytes, expected: bool) -> None:
    assert h264_keyframe(nal) is expected
    assert h264_keyframe(memoryview(nal)) is expected


def test_h264_stap_a_with_parameter_sets_and_idr() -> None:
    payloads = H264Encoder._packetize([SPS, PPS, IDR])
    assert len(payloads) == 1
    assert payloads[0][0] & 0x1F == 24  # STAP-A
    assert h264_keyframe(payloads[0])


def test_h264_stap_a_idr_after_other_units() -> None:
    payloads = H264Encoder._packetize([AUD, SEI, IDR])
    assert len(payloads) == 1
    assert payloads[0][0] & 0x1F == 24
    assert h264_keyframe(payloads[0])


def test_h264_stap_a_without_idr() -> None:
    payloads = H264Encoder._packetize([AUD, SEI, SLICE])
    assert len(payloads) == 1
    assert payloads[0][0] & 0x1F == 24
    assert not h264_keyframe(payloads[0])


def test_h264_fu_a_start_and_continuation(monkeypatch: pytest.MonkeyPatch) -> None:
    big_idr = bytes([0x65]) + random.Random(1).randbytes(3000)
    payloads = H264Encoder._packetize([big_idr])
    assert len(payloads) >= 3
    assert all(p[0] & 0x1F == 28 for p in payloads)  # FU-A
    assert payloads[0][1] & 0x80  # start bit
    assert [h264_keyframe(p) for p in payloads] == [True] + [False] * (len(payloads) - 1)

    big_slice = bytes([0x41]) + random.Random(2).randbytes(3000)
    assert not any(h264_keyframe(p) for p in H264Encoder._packetize([big_slice]))

    # Parameter sets aggregated, then a fragmented IDR: as a browser sends a key frame.
    monkeypatch.setattr(aiortc_h264, "PACKET_MAX", 30)
    frame = H264Encoder._packetize([SPS, PPS, IDR])
    assert frame[0][0] & 0x1F == 24
    assert h264_keyframe(frame[0])
    assert frame[1][0] & 0x1F == 28
    assert h264_keyframe(frame[1])  # the IDR's first fragment
    assert not any(h264_keyframe(p) for p in frame[2:])


TRUNCATED_H264: dict[str, bytes] = {
    "empty": b"",
    "STAP-A header only": b"\x18",
    "STAP-A, half a size": b"\x18\x00",
    "STAP-A, size without unit": b"\x18\x00\x05",
    "STAP-A, zero-size unit": b"\x18\x00\x00",
    "FU-A indicator only": b"\x7c",
    "FU-A start of a non-IDR": b"\x7c\x81",
    "FU-A end of an IDR": b"\x7c\x45",
}


@pytest.mark.parametrize("payload", TRUNCATED_H264.values(), ids=TRUNCATED_H264.keys())
def test_h264_truncated_or_non_key_payloads(payload: bytes) -> None:
    assert h264_keyframe(payload) is False
