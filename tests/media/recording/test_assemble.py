"""The C assembler (media/_assemble.c) against the Python depacketizer it replaced
(reference.py): the same packets through both, in the same batches, must give the same
frames, in the same order, and the same counts. Real packets (aiortc's own packetizers) with
reordering, loss, duplicates, late arrivals, wrapping sequence numbers and new sources; then
random packets shaped to reach every branch of each codec's parser."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from courtlink.media._forward import Tap
from courtlink.media.recording.depacketize import Assembler, Frame, tapped
from tests.media.recording import reference
from tests.media.test_recording import h264_payloads, opus_payloads, vp8_payloads

Packets = list[reference.Packet]

REFERENCE: dict[str, Callable[[], reference.Assembler]] = {
    "opus": reference.OpusAssembler,
    "vp8": reference.Vp8Assembler,
    "h264": reference.H264Assembler,
}
T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def compare(codec: str, items: Packets, rng: random.Random, **hold: int) -> list[Frame]:
    """Both assemblers over ``items`` in random batches (a drain now and then, as the recorder
    does when a source is replaced); asserts they agree, returns the frames. Each batch goes
    in as a list of entries or, as the recorder hands it, a Tap, one Tap reused for every
    batch (cleared after each, as the recorder does): a packet held behind a hole must not
    point into it."""
    ours = Assembler(codec, **hold)
    tap = Tap()
    theirs = REFERENCE[codec]()
    if hold:
        theirs.reorder = reference.Reorder(hold["hold_ns"], hold["hold_packets"])
    got: list[Frame] = []
    want: list[reference.Frame] = []
    i = 0
    while i < len(items):
        batch = items[i : i + rng.randint(1, 40)]
        i += len(batch)
        entries = [tapped(*astuple(p)) for p in batch]
        if rng.random() < 0.5:
            got += ours.push(entries)
        else:
            for entry in entries:
                tap.append(entry)
            got += ours.push(tap)
            tap.clear()
        want += [f for p in batch for f in theirs.push(p)]
        if rng.random() < 0.05:
            got += ours.drain()
            want += theirs.drain()
    got += ours.drain()
    want += theirs.drain()
    assert [tuple(f) for f in got] == [
        (f.timestamp, f.ssrc, f.arrived_ns, f.data, f.keyframe) for f in want
    ]
    assert ours.lost == theirs.reorder.lost
    assert ours.held == len(theirs.reorder._held) == 0
    if codec != "opus":
        assert isinstance(theirs, reference._VideoAssembler)
        assert ours.frames_dropped == theirs.frames_dropped
        assert ours.waiting_keyframe == theirs.waiting_keyframe
    return got


def astuple(p: reference.Packet) -> tuple[int, int, int, int, bool, bytes]:
    return (p.arrived_ns, p.sequence_number, p.timestamp, p.ssrc, p.marker, p.payload)


def rtp(
    frames: list[list[bytes]], *, step: int, rng: random.Random, ssrc: int = 1, seq: int = 65000
) -> Packets:
    """Packets of frames in order, sequence numbers wrapping, about 33 ms apart."""
    out = []
    timestamp = rng.randrange(1 << 32)
    at = T0
    for frame in frames:
        for j, payload in enumerate(frame):
            out.append(
                reference.Packet(
                    at + j * 100_000, seq & 0xFFFF, timestamp, ssrc, j == len(frame) - 1, payload
                )
            )
            seq += 1
        timestamp = (timestamp + step) & 0xFFFFFFFF
        at += 33 * MS
    return out


def disturb(items: Packets, rng: random.Random) -> Packets:
    """What a network and the SFU's NACKs do: reorder within a window, lose, duplicate, and
    bring some packets back late (after the hold time, or just within it)."""
    out = list(items)
    for _ in range(len(out) // 10):
        i = rng.randrange(len(out))
        j = min(len(out) - 1, i + rng.randint(1, 12))
        out[i], out[j] = out[j], out[i]
    out = [p for p in out if rng.random() > 0.03]
    for _ in range(len(out) // 30):
        out.insert(rng.randrange(len(out)), rng.choice(out))
    for _ in range(len(out) // 25):  # a retransmission arrives later
        i = rng.randrange(len(out))
        p = out.pop(i)
        delay = rng.choice([50, 200, 290, 310, 600])
        late = reference.Packet(
            p.arrived_ns + delay * MS, p.sequence_number, p.timestamp, p.ssrc, p.marker, p.payload
        )
        out.insert(min(len(out), i + delay // 20), late)
    # Arrivals as the tap stamps them: never before a packet tapped earlier.
    last = 0
    for k, p in enumerate(out):
        last = max(last, p.arrived_ns)
        out[k] = reference.Packet(last, p.sequence_number, p.timestamp, p.ssrc, p.marker, p.payload)
    return out


def reconnects(parts: list[Packets], rng: random.Random) -> Packets:
    """Several sources one after the other (a publisher reconnecting), each with an SSRC and
    sequence numbers of its own."""
    out: Packets = []
    for n, part in enumerate(parts):
        offset = rng.randrange(1 << 16)
        shift = n * 5_000 * MS
        out += [
            reference.Packet(
                p.arrived_ns + shift,
                (p.sequence_number + offset) & 0xFFFF,
                p.timestamp,
                100 + n,
                p.marker,
                p.payload,
            )
            for p in part
        ]
    return out


PAYLOADS: dict[str, tuple[Callable[[], list[list[bytes]]], int]] = {
    "vp8": (lambda: vp8_payloads(45), 3000),
    "h264": (lambda: h264_payloads(30), 3000),
    "opus": (lambda: opus_payloads(60), 960),
}


@pytest.mark.parametrize("codec", ["vp8", "h264", "opus"])
def test_real_packets_give_the_same_frames(codec: str) -> None:
    make, step = PAYLOADS[codec]
    frames = make()
    rng = random.Random(codec)
    clean = rtp(frames, step=step, rng=rng)
    assert len(compare(codec, clean, rng)) == len(frames)  # in order, nothing lost: all
    for _ in range(25):
        compare(codec, disturb(clean, rng), rng)
        compare(codec, reconnects([disturb(clean, rng), clean, disturb(clean, rng)], rng), rng)
        compare(codec, disturb(clean, rng), rng, hold_ns=40 * MS, hold_packets=4)


def vp8_payload(rng: random.Random, start: bool) -> bytes:
    head = rng.randrange(256) if rng.random() < 0.3 else (0x90 if start else 0x80)
    descriptor = [head]
    if head & 0x80 or rng.random() < 0.1:
        descriptor.append(rng.randrange(256))
        descriptor += [rng.randrange(256) for _ in range(rng.randint(0, 4))]
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
    if start and rng.random() < 0.5:
        body = bytes([rng.choice([0x00, 0x01, 0x10])]) + body  # key frame or not
    return bytes(descriptor)[: rng.randint(0, len(descriptor))] + body


def h264_payload(rng: random.Random) -> bytes:
    kind = rng.choice([1, 5, 7, 8, 24, 24, 28, 28, 28, 0, 25, 29, 31])
    nri = rng.choice([0x00, 0x60])
    if kind == 24:
        units = b""
        for _ in range(rng.randint(0, 3)):
            unit = bytes([nri | rng.choice([1, 5, 7, 8])]) + rng.randbytes(rng.randint(0, 6))
            size = len(unit) + rng.choice([0, 0, 0, 1, -1, -len(unit)])
            units += max(size, 0).to_bytes(2, "big") + unit
        return bytes([nri | 24]) + units + rng.randbytes(rng.choice([0, 0, 1]))
    if kind == 28:
        fu = rng.choice([0x80, 0x00, 0x40, 0xC0]) | rng.choice([1, 5])
        return bytes([nri | 28, fu])[: rng.choice([1, 2, 2, 2])] + rng.randbytes(rng.randint(0, 6))
    body = rng.randbytes(rng.randint(0, 8))
    if rng.random() < 0.1:
        body += b"\x00\x00\x00\x01" + bytes([rng.choice([5, 1, 0x65])])  # a start code inside
    return bytes([nri | kind]) + body


def random_packets(codec: str, rng: random.Random) -> Packets:
    """Frames of random parts, then sequence numbers, arrivals and sources tampered with."""
    out = []
    seq = rng.randrange(1 << 16)
    timestamp = rng.randrange(1 << 32)
    at = T0
    ssrc = 1
    for _ in range(rng.randint(1, 80)):
        parts = rng.randint(1, 5)
        if rng.random() < 0.05:
            ssrc = rng.randint(1, 3)
        for j in range(parts):
            if codec == "vp8":
                payload = vp8_payload(rng, j == 0)
            elif codec == "h264":
                payload = h264_payload(rng)
            else:
                payload = rng.randbytes(rng.choice([0, 1, 3, 40]))
            marker = j == parts - 1 if rng.random() < 0.9 else rng.random() < 0.5
            out.append(reference.Packet(at, seq & 0xFFFF, timestamp, ssrc, marker, payload))
            seq += 1 if rng.random() < 0.95 else rng.choice([2, 100, 0x7FFF, 0x8000, 0x9000])
            at += rng.choice([0, 1, 5 * MS, 30 * MS, 400 * MS])
        if rng.random() < 0.9:
            timestamp = (timestamp + rng.choice([0, 1, 3000, 0xFFFFFF00])) & 0xFFFFFFFF
    if rng.random() < 0.5:
        out = disturb(out, rng)
    if rng.random() < 0.2:  # arrivals out of order too
        out = [
            reference.Packet(
                p.arrived_ns - rng.randrange(500 * MS),
                p.sequence_number,
                p.timestamp,
                p.ssrc,
                p.marker,
                p.payload,
            )
            for p in out
        ]
    return out


@pytest.mark.parametrize("codec", ["vp8", "h264", "opus"])
def test_random_packets_give_the_same_frames(codec: str) -> None:
    rng = random.Random(f"random-{codec}")
    frames = 0
    for _ in range(1500):
        items = random_packets(codec, rng)
        if rng.random() < 0.3:
            frames += len(
                compare(
                    codec,
                    items,
                    rng,
                    hold_ns=rng.choice([0, 10 * MS]),
                    hold_packets=rng.randint(0, 8),
                )
            )
        else:
            frames += len(compare(codec, items, rng))
    assert frames > 500  # the random streams do reach whole frames


def test_the_assembler_checks_what_it_is_given() -> None:
    with pytest.raises(ValueError, match="no assembler"):
        Assembler("vp9")
    with pytest.raises(ValueError, match="negative"):
        Assembler("vp8", hold_ns=-1)
    assembler = Assembler("h264")
    assert assembler.video
    assert assembler.codec == "h264"
    assert assembler.waiting_keyframe
    assert not Assembler("opus").waiting_keyframe
    with pytest.raises(ValueError, match="tap entry"):
        assembler.push([b"\x00" * 19])
    with pytest.raises(ValueError, match="tap entry"):
        assembler.push([bytearray(30)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        assembler.push(5)  # type: ignore[arg-type]
    assert assembler.push([]) == []
    assert assembler.push(()) == []


def test_a_tap_buffer_is_checked_whole_before_any_entry_is_taken() -> None:
    """The buffer's layout (a 4-byte little-endian length, then the entry) is checked end to
    end first: a bad entry anywhere takes none."""
    good = tapped(T0, 1, 960, 5, True, b"opus")
    framed = len(good).to_bytes(4, "little") + good
    assembler = Assembler("opus")
    assert assembler.push(Tap()) == []
    assert [f.data for f in assembler.push(framed)] == [b"opus"]  # any buffer in the layout
    for bad in (
        b"\x01",  # too short for a length
        (19).to_bytes(4, "little") + bytes(19),  # an entry shorter than its header
        (len(good) + 1).to_bytes(4, "little") + good,  # a length past the end
    ):
        with pytest.raises(ValueError, match="tap buffer"):
            assembler.push(bad)
        with pytest.raises(ValueError, match="tap buffer"):
            assembler.push(framed.replace(b"opus", b"more") + bad)
    # Nothing of the refused buffers was taken: sequence number 2 is still the next.
    two = tapped(T0, 2, 1920, 5, True, b"two")
    assert [f.data for f in assembler.push([two])] == [b"two"]
    assert assembler.held == 0
