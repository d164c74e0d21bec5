"""WebM through libavformat from C (media/_assemble.c's Muxer: the system's FFmpeg, linked)
against PyAV's muxer (its own, newer FFmpeg), which wrote these files before and still writes
H.264's (``TrackFile(pyav=True)``): the same batches through both must read back, with PyAV,
as the same packets (times, key frames, bytes), the same stream and the same duration. (Frame
durations are not compared: libavformat 5.1 writes SimpleBlocks, which hold none; see
``assert_same``.) Both FFmpegs live in this one process. Then what a player and the recorder
need of the file: whole clusters of at most a second, cues, a duration, seeking, a file cut
short that reads to its last whole cluster, a disk that refuses a write."""

from __future__ import annotations

import errno
import random
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any, NamedTuple

import av
import pytest

from courtlink.media._assemble import Muxer
from courtlink.media.recording.depacketize import Assembler, Frame, tapped
from courtlink.media.recording.journal import Journal, read_duration
from courtlink.media.recording.track import CLUSTER_MS, TrackFile
from tests.media.recording import reference
from tests.media.recording.test_assemble import T0, astuple, disturb, reconnects, rtp
from tests.media.test_recording import opus_payloads, vp8_payloads

KINDS = {"vp8": "video", "opus": "audio"}
MS = 1_000_000


def read_back(path: Path) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], float]:
    """What PyAV reads of a file: its stream, its packets, its duration."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        codec: Any = stream.codec_context
        about = (
            stream.type,
            codec.name,
            stream.time_base,
            stream.start_time,
            container.duration,
            codec.extradata,
            (codec.width, codec.height) if stream.type == "video" else codec.sample_rate,
        )
        packets = [
            (p.pts, p.dts, p.duration, p.is_keyframe, bytes(p))
            for p in container.demux(stream)
            if p.size
        ]
    return about, packets, read_duration(path)


def both(
    directory: Path, codec: str, batches: list[list[bytes]], *, drains: Collection[int] = ()
) -> tuple[TrackFile, TrackFile]:
    """The batches through the C muxer and through PyAV's, as the writer thread hands them
    (a drain after the batches in ``drains``, as when a source is replaced); both closed."""
    files = []
    for pyav in (False, True):
        place = directory / ("pyav" if pyav else "c")
        place.mkdir()
        journal = Journal(place)
        file = TrackFile(
            place, "judge", KINDS[codec], codec, started_ns=T0, journal=journal, pyav=pyav
        )
        assembler = Assembler(codec)
        for i, batch in enumerate(batches):
            file.push(assembler, batch)
            if i in drains:
                file.drain(assembler)
        file.drain(assembler)
        file.close()
        journal.close()
        files.append(file)
    return files[0], files[1]


def assert_same(ours: TrackFile, theirs: TrackFile) -> int:
    """Both files read back alike; the frames they hold."""
    assert (ours.frames, ours.first_ms, ours.last_ms) == (
        theirs.frames,
        theirs.first_ms,
        theirs.last_ms,
    )
    assert ours.duration == theirs.duration
    assert ours.opened_entry == theirs.opened_entry
    if not ours.frames:
        assert not ours.path.exists()
        assert not theirs.path.exists()
        return 0
    about, packets, duration = read_back(ours.path)
    their_about, their_packets, their_duration = read_back(theirs.path)
    # The stream, and the file's duration (Info's, where the muxer counts each frame's own
    # duration), are the same.
    assert about == their_about
    # Debian 12's libavformat (5.1, which the C path links) writes every frame as a
    # SimpleBlock, which holds no duration: a reader then takes Opus frames' from the Opus
    # packet (20 ms, where PyAV's newer libavformat writes a BlockDuration of 40 ms after a
    # lost one) and VP8 frames' as unknown. Each frame's time, key flag and bytes are the same.
    assert [p[:2] + p[3:] for p in packets] == [p[:2] + p[3:] for p in their_packets]
    # What the packets alone give (a file cut short, journal.read_duration) can so differ by
    # the last frame's duration (at most 100 ms).
    assert round(abs(duration - their_duration), 3) <= 0.1
    assert len(packets) == ours.frames
    return len(packets)


def batched(items: list[bytes], rng: random.Random) -> list[list[bytes]]:
    out = []
    i = 0
    while i < len(items):
        n = rng.randint(1, 40)
        out.append(items[i : i + n])
        i += n
    return out


def taps(packets: list[reference.Packet]) -> list[bytes]:
    return [tapped(*astuple(p)) for p in packets]


@pytest.mark.parametrize("codec", ["vp8", "opus"])
def test_real_frames_read_back_as_pyav_wrote_them(codec: str, tmp_path: Path) -> None:
    """aiortc's own packets, clean, disturbed (the frames then lost are lost to both), and
    through reconnects (new sources, their own RTP clocks)."""
    payloads = vp8_payloads(90) if codec == "vp8" else opus_payloads(150)
    step = 3000 if codec == "vp8" else 960
    rng = random.Random(f"webm-{codec}")
    clean = rtp(payloads, step=step, rng=rng)
    cases = [
        clean,
        disturb(clean, rng),
        reconnects([clean, disturb(clean, rng), clean], rng),
    ]
    frames = 0
    for n, packets in enumerate(cases):
        batches = batched(taps(packets), rng)
        drains = {i for i in range(len(batches)) if rng.random() < 0.05}
        directory = tmp_path / str(n)
        directory.mkdir()
        ours, theirs = both(directory, codec, batches, drains=drains)
        frames += assert_same(ours, theirs)
        assert round(abs(read_duration(ours.path) - ours.duration), 3) <= 0.1
    assert frames > len(payloads) * 3


def random_frames(codec: str, rng: random.Random) -> list[Frame]:
    """Frames whose times do everything the timeline handles: steady, still, jumping ahead and
    back, wrapping, new sources arriving early and late, bursts."""
    frames = []
    timestamp = rng.randrange(1 << 32)
    arrived = T0 + rng.choice([0, 5 * MS, 3_000 * MS])
    ssrc = 1
    for i in range(rng.randint(1, 200)):
        if rng.random() < 0.04:
            ssrc += 1
            timestamp = rng.randrange(1 << 32)
            arrived += rng.choice([-2_000 * MS, 0, 1 * MS, 700 * MS])
        timestamp = (
            timestamp + rng.choice([960, 960, 3000, 3000, 0, 1, 45, 90_000 * 3, -3000, 1 << 31])
        ) & 0xFFFFFFFF
        arrived += rng.choice([0, 20 * MS, 33 * MS, 33 * MS, 1_500 * MS])
        if codec == "opus":
            data = b"\x78" + rng.randbytes(rng.randint(0, 120))
            keyframe = True
        else:
            keyframe = i == 0 or rng.random() < 0.1
            head = bytes([0x10 if keyframe else 0x11, 0x02, 0x00])
            if keyframe and rng.random() < 0.7:  # the start code and a picture size
                size = (rng.randint(16, 1920), rng.randint(16, 1080))
                head += b"\x9d\x01\x2a" + b"".join(n.to_bytes(2, "little") for n in size)
            data = head + rng.randbytes(rng.choice([0, 20, 1500, 9000]))
        frames.append(Frame((timestamp, ssrc, arrived, data, keyframe)))
    return frames


@pytest.mark.parametrize("codec", ["vp8", "opus"])
def test_random_timelines_read_back_as_pyav_wrote_them(codec: str, tmp_path: Path) -> None:
    rng = random.Random(f"timeline-{codec}")
    for n in range(200):
        frames = random_frames(codec, rng)
        files = []
        for pyav in (False, True):
            place = tmp_path / f"{n}-{pyav}"
            place.mkdir()
            journal = Journal(place)
            file = TrackFile(
                place, "officer", KINDS[codec], codec, started_ns=T0, journal=journal, pyav=pyav
            )
            i = 0
            while i < len(frames):
                k = rng.randint(1, 30)
                file.write_all(frames[i : i + k])
                i += k
            file.close()
            journal.close()
            files.append(file)
        assert_same(files[0], files[1])


class Element(NamedTuple):
    id: int
    at: int  # where the element starts
    data: int  # where its data starts
    end: int


def elements(data: bytes, start: int, end: int) -> list[Element]:
    """The EBML elements between ``start`` and ``end``."""
    out = []
    i = start
    while i < end:
        at = i
        length = 1
        while not data[i] & (0x80 >> (length - 1)):
            length += 1
        element = int.from_bytes(data[i : i + length], "big")
        i += length
        width = 1
        while not data[i] & (0x80 >> (width - 1)):
            width += 1
        size = int.from_bytes(data[i : i + width], "big") & ((1 << (7 * width)) - 1)
        i += width
        if size == (1 << (7 * width)) - 1:  # unknown: to the end
            size = end - i
        out.append(Element(element, at, i, i + size))
        i += size
    return out


def uint(data: bytes, element: Element) -> int:
    return int.from_bytes(data[element.data : element.end], "big")


def block_time(data: bytes, cluster_start: int, block: Element) -> int:
    """A SimpleBlock's (or a BlockGroup's Block's) time: its cluster's and its own, in ms."""
    if block.id == 0xA0:  # a BlockGroup: its Block first
        block = elements(data, block.data, block.end)[0]
    return cluster_start + int.from_bytes(data[block.data + 1 : block.data + 3], "big", signed=True)


@pytest.mark.parametrize("codec", ["vp8", "opus"])
def test_whole_clusters_of_at_most_a_second_and_cues_that_find_them(
    codec: str, tmp_path: Path
) -> None:
    """What a player and a kill need of the file: clusters of at most a second (what a kill
    loses), cues that point at key frames, a duration, and seeking that lands where asked."""
    payloads = vp8_payloads(150) if codec == "vp8" else opus_payloads(250)
    rng = random.Random(1)
    packets = rtp(payloads, step=3000 if codec == "vp8" else 960, rng=rng)
    journal = Journal(tmp_path)
    file = TrackFile(tmp_path, "judge", KINDS[codec], codec, started_ns=T0, journal=journal)
    assembler = Assembler(codec)
    for batch in batched(taps(packets), rng):
        file.push(assembler, batch)
    file.close()
    journal.close()
    data = file.path.read_bytes()
    _, segment = elements(data, 0, len(data))
    assert segment.end == len(data)  # the Segment's size, filled in
    top = elements(data, segment.data, segment.end)
    clusters = {c.at: c for c in top if c.id == 0x1F43B675}
    assert len(clusters) >= 4
    for cluster in clusters.values():
        timestamp, *blocks = elements(data, cluster.data, cluster.end)
        assert timestamp.id == 0xE7  # the cluster's Timestamp first, then its blocks
        assert {b.id for b in blocks} <= {0xA0, 0xA3}
        start = uint(data, timestamp)
        times = [block_time(data, start, b) for b in blocks]
        assert times == sorted(times)
        assert 0 <= times[-1] - start <= CLUSTER_MS
    (cues,) = (e for e in top if e.id == 0x1C53BB6B)
    points = elements(data, cues.data, cues.end)
    assert len(points) >= (len(clusters) if codec == "opus" else 1)  # key frames: video's
    for point in points:
        time_, positions = elements(data, point.data, point.end)
        track, cluster_at, *_ = elements(data, positions.data, positions.end)
        assert uint(data, track) == 1
        cluster = clusters[segment.data + uint(data, cluster_at)]
        timestamp, *blocks = elements(data, cluster.data, cluster.end)
        times = [block_time(data, uint(data, timestamp), b) for b in blocks]
        assert uint(data, time_) in times
    # The SeekHead finds the Cues; Info holds the duration.
    assert top[0].id == 0x114D9B74
    assert any(e.id == 0x1549A966 for e in top)
    with av.open(str(file.path)) as container:
        assert container.duration is not None
        assert abs(container.duration / 1e6 - file.duration) < 0.01
        stream = container.streams[0]
        container.seek(3000, stream=stream)  # ms: the stream's time base
        first = next(p for p in container.demux(stream) if p.size)
        assert first.is_keyframe
        assert first.pts is not None
        assert first.pts <= 3000
        if codec == "opus":  # a cue a cluster; these VP8 frames have one key frame
            assert first.pts >= 2000


def test_a_file_cut_short_reads_to_its_last_whole_cluster(tmp_path: Path) -> None:
    """A kill: the file as it is on disk while recording (whole clusters only), and the same
    torn inside its last cluster, both play to what they hold."""
    journal = Journal(tmp_path)
    file = TrackFile(tmp_path, "judge", "video", "vp8", started_ns=T0, journal=journal)
    assembler = Assembler("vp8")
    rng = random.Random(2)
    for batch in batched(taps(rtp(vp8_payloads(150), step=3000, rng=rng)), rng):
        file.push(assembler, batch)
    on_disk = file.path.read_bytes()
    file.close()
    journal.close()
    whole = tmp_path / "killed.webm"
    whole.write_bytes(on_disk)
    played = read_duration(whole)
    assert 3.9 <= played <= 5.0  # at most the open cluster (a second) is missing
    _, segment = elements(on_disk, 0, len(on_disk))
    last = [e for e in elements(on_disk, segment.data, len(on_disk)) if e.id == 0x1F43B675][-1]
    torn = tmp_path / "torn.webm"
    torn.write_bytes(on_disk[: (last.data + last.end) // 2])
    assert played - 1.0 < read_duration(torn) < played
    with av.open(str(whole)) as container:
        assert len(list(container.decode(video=0))) == round(played * 30)


def test_a_disk_that_refuses_a_write_keeps_what_was_written(tmp_path: Path) -> None:
    """The kernel's own ENOSPC (/dev/full) stops the file at its first write; a disk that fills
    later leaves every cluster written before it whole."""
    journal = Journal(tmp_path)
    full = TrackFile(
        tmp_path,
        "judge",
        "audio",
        "opus",
        started_ns=T0,
        journal=journal,
        opener=lambda _: open("/dev/full", "wb", buffering=0),  # noqa: SIM115
    )
    assembler = Assembler("opus")
    packets = taps(rtp(opus_payloads(250), step=960, rng=random.Random(3)))
    with pytest.raises(OSError, match="No space") as refused:
        full.push(assembler, packets[:10])
    assert refused.value.errno == errno.ENOSPC
    with pytest.raises(OSError, match=r"Errno (28|22)"):  # 22: /dev/full cannot be fsynced
        full.close()
    assert not full.path.exists()

    class Filling:
        """A disk with room for the header and two clusters."""

        def __init__(self, path: Path) -> None:
            self.raw: IO[bytes] = open(path, "xb", buffering=0)  # noqa: SIM115
            self.writes = 0

        def write(self, data: bytes) -> int:
            self.writes += 1
            if self.writes > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.raw.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.raw, name)

    filling = TrackFile(
        tmp_path,
        "officer",
        "audio",
        "opus",
        started_ns=T0,
        journal=journal,
        opener=Filling,  # type: ignore[arg-type]
    )
    assembler = Assembler("opus")

    def record() -> None:
        for start in range(0, len(packets), 5):
            filling.push(assembler, packets[start : start + 5])

    with pytest.raises(OSError, match="No space"):
        record()
    with pytest.raises(OSError, match="No space"):
        filling.close()  # the end cannot be written either; the file is closed all the same
    filling.close()  # and once
    journal.close()
    _, packets_read, duration = read_back(filling.path)
    assert len(packets_read) == 100  # two whole clusters of a second
    assert duration == 2.0


def test_the_muxer_checks_what_it_is_given(tmp_path: Path) -> None:
    opened: list[Path] = []

    def open_file() -> IO[bytes]:
        opened.append(tmp_path / "one.webm")
        return open(opened[-1], "xb", buffering=0)

    with pytest.raises(ValueError, match="audio or video"):
        Muxer("data", open=open_file, started_ns=0)
    with pytest.raises(TypeError, match="started_ns"):
        Muxer("audio")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="cluster_ms"):
        Muxer("video", open=open_file, started_ns=0, cluster_ms=0)
    with pytest.raises(ValueError, match="OpusHead"):
        Muxer("audio", open=open_file, started_ns=0)
    muxer = Muxer("video", open=open_file, started_ns=T0)
    assert (muxer.frames, muxer.first_ms, muxer.last_ms, muxer.size) == (0, None, None, None)
    with pytest.raises(TypeError, match="five fields"):
        muxer.write([(1, 2)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Muxer or None"):
        Assembler("vp8").push([], 5)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not initialised"):
        Muxer.__new__(Muxer).close()
    assert not opened  # the file is opened at the first frame
    key = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xf0\x00" + bytes(100)  # a 320x240 key frame
    muxer.write([Frame((0, 1, T0 + 2_000 * MS, key, True))])
    assert (muxer.frames, muxer.first_ms, muxer.size) == (1, 2000, (320, 240))
    assert len(opened) == 1
    muxer.close()
    muxer.close()  # once
    with pytest.raises(ValueError, match="closed"):
        muxer.write([Frame((3000, 1, T0 + 2_100 * MS, key, True))])
    assert muxer.file is not None
    muxer.file.close()
    with av.open(str(opened[0])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        assert [p.pts for p in container.demux(stream) if p.size] == [2000]


def test_a_file_that_fails_as_it_starts_fails_every_later_frame_the_same_way(
    tmp_path: Path,
) -> None:
    """An opener whose file cannot be written (here: one already closed) fails the first frame;
    the Muxer is then half started (no header), and every later frame and its close raise the
    same error instead of writing into nothing (this crashed the process once)."""
    key = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xf0\x00" + bytes(100)

    def closed_file() -> IO[bytes]:
        file = open(tmp_path / "closed.webm", "xb", buffering=0)  # noqa: SIM115
        file.close()
        return file

    muxer = Muxer("video", open=closed_file, started_ns=T0)
    with pytest.raises(ValueError, match="closed file") as first:
        muxer.write([Frame((0, 1, T0, key, True))])
    for n in range(1, 4):
        with pytest.raises(ValueError, match="closed file") as again:
            muxer.write([Frame((n * 3000, 1, T0 + n * 100 * MS, key, True))])
        assert again.value is first.value
    assert muxer.frames == 0
    with pytest.raises(ValueError, match="closed file"):
        muxer.close()

    def no_file() -> IO[bytes]:
        raise OSError(28, "No space left on device")

    muxer = Muxer("video", open=no_file, started_ns=T0)
    for n in range(3):
        with pytest.raises(OSError, match="No space"):
            muxer.write([Frame((n * 3000, 1, T0 + n * 100 * MS, key, True))])
