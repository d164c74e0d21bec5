"""The recorder's parts against real codecs: aiortc's own packetizers make the RTP payloads
(VP8, H.264, Opus), the assemblers and TrackFile mux them, PyAV reads the files back and (in
the test only) decodes them. Then the Recorder: taps, reconnects, a full disk, a kill."""

from __future__ import annotations

import asyncio
import errno
import fractions
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import av
import numpy as np
import pytest
from aiortc.codecs import h264, opus, vpx

from courtlink.media.recording import DiskFull, Recorder, RecordingInfo, RecordingWriter, recover
from courtlink.media.recording.depacketize import Assembler, Frame, tapped, vp8_size
from courtlink.media.recording.journal import Journal, read_duration
from courtlink.media.recording.track import TrackFile
from courtlink.media.sfu import Sfu

RED = (220, 30, 30)
T0 = 1_700_000_000_000_000_000  # the recording's start, in ns


def video_frame(rgb: tuple[int, int, int], index: int) -> av.VideoFrame:
    picture = np.full((240, 320, 3), rgb, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
    frame.pts, frame.time_base = index * 3000, fractions.Fraction(1, 90000)
    return frame


def tone_frame(hz: float, index: int) -> av.AudioFrame:
    t = (np.arange(960) + index * 960) / 48000
    samples = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts = 48000, index * 960
    frame.time_base = fractions.Fraction(1, 48000)
    return frame


class Packet(NamedTuple):
    """One RTP packet as the tap records it (``tapped(*packet)`` is its tap entry)."""

    arrived_ns: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def packets(
    payloads: list[list[bytes]], *, step: int, ssrc: int = 1, seq: int = 65500, at: int = T0
) -> list[Packet]:
    """RTP packets of frames (one list of payloads each), ``step`` RTP units apart, sequence
    numbers wrapping past 65535, 33 ms of arrival apart."""
    out = []
    for i, frame in enumerate(payloads):
        for j, payload in enumerate(frame):
            out.append(
                Packet(
                    at + i * 33_000_000,
                    seq & 0xFFFF,
                    (4_294_960_000 + i * step) & 0xFFFFFFFF,
                    ssrc,
                    j == len(frame) - 1,
                    payload,
                )
            )
            seq += 1
    return out


def vp8_payloads(count: int, rgb: tuple[int, int, int] = RED) -> list[list[bytes]]:
    encoder = vpx.Vp8Encoder()
    return [encoder.encode(video_frame(rgb, i))[0] for i in range(count)]


def h264_payloads(count: int, rgb: tuple[int, int, int] = RED) -> list[list[bytes]]:
    encoder = h264.H264Encoder()
    return [encoder.encode(video_frame(rgb, i), force_keyframe=i == 0)[0] for i in range(count)]


def opus_payloads(count: int, hz: float = 440.0) -> list[list[bytes]]:
    encoder = opus.OpusEncoder()
    return [encoder.encode(tone_frame(hz, i))[0] for i in range(count)]


def assemble(assembler: Assembler, items: list[Packet]) -> list[Frame]:
    """The frames of ``items`` (tapped, pushed one batch at a time), then of what is held."""
    frames = []
    for start in range(0, len(items), 7):
        frames += assembler.push([tapped(*p) for p in items[start : start + 7]])
    return frames + assembler.drain()


def decoded_rgb(path: Path) -> list[tuple[int, int, int]]:
    with av.open(str(path)) as container:
        return [
            tuple(int(c) for c in f.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0))  # type: ignore[misc]
            for f in container.decode(video=0)
        ]


def tone_of(path: Path) -> tuple[float, float]:
    """The dominant frequency and the RMS level of an audio file (decoded here, in the test)."""
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().astype(np.float64).mean(axis=0) for f in container.decode(audio=0)]
    signal_ = np.concatenate(chunks)
    spectrum = np.abs(np.fft.rfft(signal_))
    return float(np.argmax(spectrum[1:]) + 1) * 48000 / len(signal_), float(
        np.sqrt(np.mean(signal_**2))
    )


def close_to(rgb: tuple[int, ...], want: tuple[int, int, int], tolerance: int = 30) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, want, strict=True))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path)
    yield j
    j.close()


# Depacketizers ------------------------------------------------------------------------------


def test_vp8_frames_come_whole_from_aiortc_packets_in_any_order() -> None:
    payloads = vp8_payloads(10)
    items = packets(payloads, step=3000)
    random.Random(1).shuffle(items[3:9])  # reordered within the hold time
    frames = assemble(Assembler("vp8"), items)
    assert len(frames) == 10
    assert frames[0].keyframe
    assert not frames[1].keyframe
    assert vp8_size(frames[0].data) == (320, 240)
    assert [f.timestamp for f in frames] == sorted(
        {p.timestamp for p in items}, key=lambda t: (t - items[0].timestamp) & 0xFFFFFFFF
    )


def test_vp8_a_lost_packet_drops_its_frame_and_waits_for_a_key_frame() -> None:
    payloads = [*vp8_payloads(6), vpx.Vp8Encoder().encode(video_frame(RED, 0))[0]]
    big = [i for i, f in enumerate(payloads[:6]) if len(f) > 1]
    items = packets(payloads, step=3000)
    # Lose the last packet of frame 2 (a packet of it, a hole in the sequence).
    lost = next(p for p in items if p.timestamp == items[0].timestamp + 2 * 3000 and p.marker)
    items = [p for p in items if p is not lost]
    # Arrivals later than the hold time, so the hole counts as lost.
    items = [
        Packet(
            p.arrived_ns + i * 100_000_000,
            p.sequence_number,
            p.timestamp,
            p.ssrc,
            p.marker,
            p.payload,
        )
        for i, p in enumerate(items)
    ]
    assembler = Assembler("vp8")
    frames = assemble(assembler, items)
    assert big is not None
    # Frames 0 and 1, then nothing until the key frame (the last one).
    assert len(frames) == 3
    assert frames[-1].keyframe
    assert assembler.frames_dropped >= 1


def test_h264_access_units_from_aiortc_packets() -> None:
    payloads = h264_payloads(8)
    assert any(p[0] & 0x1F == 24 for f in payloads for p in f) or any(
        p[0] & 0x1F == 28 for f in payloads for p in f
    )
    frames = assemble(Assembler("h264"), packets(payloads, step=3000))
    assert len(frames) == 8
    assert frames[0].keyframe
    assert frames[0].data.startswith(b"\x00\x00\x00\x01")
    kinds = [u[0] & 0x1F for u in frames[0].data.split(b"\x00\x00\x00\x01") if u]
    assert 7 in kinds
    assert 8 in kinds
    assert 5 in kinds


def test_opus_one_frame_per_payload() -> None:
    payloads = opus_payloads(5)
    frames = assemble(Assembler("opus"), packets(payloads, step=960))
    assert [f.data for f in frames] == [p[0] for p in payloads]


def test_a_tapped_packet_reads_back() -> None:
    item = (
        (T0).to_bytes(8, "big")
        + bytes([0x80, 0x80 | 96, 0x12, 0x34])
        + (7).to_bytes(4, "big")
        + (9).to_bytes(4, "big")
        + b"xy"
    )
    assert item == tapped(T0, 0x1234, 7, 9, True, b"xy")
    (frame,) = Assembler("opus").push([item])
    assert frame == Frame((7, 9, T0, b"xy", True))
    assert (frame.timestamp, frame.ssrc, frame.arrived_ns, frame.data) == (7, 9, T0, b"xy")
    with pytest.raises(ValueError, match="tap entry"):
        Assembler("opus").push([item[:19]])
    with pytest.raises(ValueError, match="no assembler"):
        Assembler("vp9")


# The muxer ------------------------------------------------------------------------------------


def test_vp8_file_plays_back_in_colour_on_the_session_clock(
    tmp_path: Path, journal: Journal
) -> None:
    frames = assemble(Assembler("vp8"), packets(vp8_payloads(30), step=3000, at=T0 + 2_000_000_000))
    track = TrackFile(tmp_path, "judge", "video", "vp8", started_ns=T0, journal=journal)
    for frame in frames:
        track.write(frame)
    track.close()
    assert track.path.name == "judge.video.webm"
    with av.open(str(track.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp8"
        assert (stream.width, stream.height) == (320, 240)
        first = next(container.demux(stream))
        assert first.pts == 2000  # 2 s after the recording started
    colours = decoded_rgb(track.path)
    assert len(colours) == 30
    assert all(close_to(c, RED) for c in colours)
    assert abs(track.duration - 1.0) < 0.05
    assert abs(read_duration(track.path) - track.duration) < 0.05


def test_h264_file_decodes(tmp_path: Path, journal: Journal) -> None:
    frames = assemble(Assembler("h264"), packets(h264_payloads(15), step=3000))
    track = TrackFile(tmp_path, "debtor", "video", "h264", started_ns=T0, journal=journal)
    for frame in frames:
        track.write(frame)
    track.close()
    assert track.path.name == "debtor.video.mkv"
    colours = decoded_rgb(track.path)
    assert len(colours) == 15
    assert all(close_to(c, RED) for c in colours)


def test_opus_file_has_the_tone(tmp_path: Path, journal: Journal) -> None:
    frames = assemble(Assembler("opus"), packets(opus_payloads(100, 660.0), step=960))
    track = TrackFile(tmp_path, "creditor", "audio", "opus", started_ns=T0, journal=journal)
    for frame in frames:
        track.write(frame)
    track.close()
    with av.open(str(track.path)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    hz, level = tone_of(track.path)
    assert abs(hz - 660) < 15
    assert level > 0.05
    assert abs(track.duration - 2.0) < 0.05


def test_a_new_ssrc_continues_the_file_without_overlap(tmp_path: Path, journal: Journal) -> None:
    """A reconnect: the new source's RTP timestamps start anywhere; it is anchored at its
    arrival, never before what the file holds."""
    first = packets(opus_payloads(50), step=960, ssrc=1)  # arrives 0..1.6 s
    # The new source arrives 1 s early by its own claim (its arrival overlaps the old one's).
    second = packets(opus_payloads(50), step=960, ssrc=2, seq=10, at=T0 + 1_000_000_000)
    second = [
        Packet(
            p.arrived_ns,
            p.sequence_number,
            (p.timestamp + 123456) & 0xFFFFFFFF,
            2,
            p.marker,
            p.payload,
        )
        for p in second
    ]
    track = TrackFile(tmp_path, "officer", "audio", "opus", started_ns=T0, journal=journal)
    assembler = Assembler("opus")
    for frame in assemble(assembler, first) + assemble(assembler, second):
        track.write(frame)
    track.close()
    with av.open(str(track.path)) as container:
        times = [p.pts for p in container.demux(audio=0) if p.pts is not None]
    assert times == sorted(times)
    assert len(set(times)) == len(times) == 100
    assert times[50] - times[49] <= 40  # no jump either


# The recorder -----------------------------------------------------------------------------------


class FakeSource:
    """A Producer as the recorder sees it: a tap the packet path appends to."""

    def __init__(self) -> None:
        self.tap: list[bytes] | None = None
        self.tap_limit = 0
        self.tap_dropped = 0

    def put(self, items: list[Packet]) -> None:
        for p in items:
            assert self.tap is not None
            head = bytes([0x80, (0x80 if p.marker else 0) | 96]) + p.sequence_number.to_bytes(
                2, "big"
            )
            self.tap.append(
                p.arrived_ns.to_bytes(8, "big")
                + head
                + p.timestamp.to_bytes(4, "big")
                + p.ssrc.to_bytes(4, "big")
                + p.payload
            )


INFO = RecordingInfo("s1", "c1", "(2024)京0101执123号")


async def until(condition: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_recorder_writes_every_track_and_the_manifest(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "s1", INFO, clock_ns=lambda: T0, poll=0.02)
    await recorder.start()
    audio, video = FakeSource(), FakeSource()
    recorder.feed("judge", "audio", audio)
    recorder.feed("judge", "video", video)
    recorder.feed("judge", "video", video)  # idempotent
    audio.put(packets(opus_payloads(50), step=960))
    video.put(packets(vp8_payloads(15), step=3000))
    manifest = await recorder.stop()
    assert await recorder.stop() is manifest  # idempotent
    assert manifest is not None
    assert manifest["complete"]
    assert manifest["stopped_because"] == "ended"
    written = json.loads((tmp_path / "s1" / "manifest.json").read_text("utf-8"))
    assert written == manifest
    assert written["case_number"] == INFO.case_number
    names = [f["name"] for f in written["files"]]
    assert names == ["judge.audio.webm", "judge.video.webm"]
    assert all(f["bytes"] > 0 and len(f["sha256"]) == 64 for f in written["files"])
    assert audio.tap is None
    assert video.tap is None
    events = [
        json.loads(line)["event"]
        for line in (tmp_path / "s1" / "journal.jsonl").read_text().splitlines()
    ]
    assert events[0] == "started"
    assert events[-1] == "stopped"
    assert events.count("file_opened") == 2


async def test_a_reconnect_continues_the_same_file(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "s1", INFO, clock_ns=lambda: T0, poll=0.02)
    await recorder.start()
    old, new = FakeSource(), FakeSource()
    recorder.feed("debtor", "audio", old)
    old.put(packets(opus_payloads(50), step=960, ssrc=7))
    await until(lambda: not old.tap)
    recorder.feed("debtor", "audio", new)
    new.put(packets(opus_payloads(50), step=960, ssrc=8, at=T0 + 3_000_000_000))
    manifest = await recorder.stop()
    assert manifest is not None
    assert [f["name"] for f in manifest["files"]] == ["debtor.audio.webm"]
    assert old.tap is None
    with av.open(str(tmp_path / "s1" / "debtor.audio.webm")) as container:
        assert sum(1 for p in container.demux(audio=0) if p.pts is not None) == 100


async def test_recorders_share_one_writer_thread(tmp_path: Path) -> None:
    """Two sessions on one writer: one thread for both; one stopping leaves the other
    writing; the thread ends with the last recorder and a new one starts it again."""
    writer = RecordingWriter(poll=0.02)
    first = Recorder(tmp_path / "s1", INFO, clock_ns=lambda: T0, writer=writer)
    info = RecordingInfo("s2", "c2", "(2024)京0101执124号")
    second = Recorder(tmp_path / "s2", info, clock_ns=lambda: T0, writer=writer)
    assert not writer.running
    await first.start()
    await second.start()
    assert writer.running
    writers = [t for t in threading.enumerate() if t.name == "recording-writer"]
    assert len(writers) == 1
    one, two = FakeSource(), FakeSource()
    first.feed("judge", "audio", one)
    second.feed("debtor", "audio", two)
    one.put(packets(opus_payloads(50), step=960))
    two.put(packets(opus_payloads(50), step=960))
    manifest = await first.stop()
    assert manifest is not None
    assert manifest["complete"]
    assert writer.running
    assert second.running
    two.put(packets(opus_payloads(50), step=960, ssrc=2, at=T0 + 3_000_000_000))
    await until(lambda: not two.tap)
    manifest = await second.stop()
    assert manifest is not None
    assert [f["name"] for f in manifest["files"]] == ["debtor.audio.webm"]
    with av.open(str(tmp_path / "s2" / "debtor.audio.webm")) as container:
        assert sum(1 for p in container.demux(audio=0) if p.pts is not None) == 100
    await until(lambda: not writer.running)
    third = Recorder(
        tmp_path / "s3", RecordingInfo("s3", "c3", "(2024)京0101执125号"), writer=writer
    )
    await third.start()
    assert writer.running
    await third.stop()
    await until(lambda: not writer.running)


async def test_the_sfu_records_every_session_with_one_writer(tmp_path: Path) -> None:
    sfu = Sfu()
    await sfu.record("s1", tmp_path / "s1", case_id="c1", case_number="1")
    await sfu.record("s2", tmp_path / "s2", case_id="c2", case_number="2")
    assert sfu.recordings["s1"]._writer is sfu.recording_writer
    assert sfu.recordings["s2"]._writer is sfu.recording_writer
    assert sfu.recording_writer.running
    await sfu.stop_recording("s1")
    assert sfu.recordings["s2"].running
    await sfu.close()
    await until(lambda: not sfu.recording_writer.running)
    assert (tmp_path / "s1" / "manifest.json").is_file()
    assert (tmp_path / "s2" / "manifest.json").is_file()


async def test_too_little_free_space_refuses_to_start(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "s1", INFO, min_free_mb=1 << 40)
    with pytest.raises(DiskFull):
        await recorder.start()
    assert await recorder.stop() is None


async def test_a_disk_that_fills_stops_the_recording_whole(tmp_path: Path) -> None:
    """The audio file's writes fail with ENOSPC after a while: the recording stops, every file
    is closed, the manifest says disk_full, and the loop is told."""
    written = {"n": 0}

    class Filling:
        def __init__(self, path: Path) -> None:
            self.raw: IO[bytes] = open(path, "xb", buffering=0)  # noqa: SIM115 (the muxer closes it)

        def write(self, data: bytes) -> int:
            if "audio" in self.raw.name:
                written["n"] += 1
                if written["n"] > 3:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return self.raw.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.raw, name)

    stopped: list[str] = []
    recorder = Recorder(
        tmp_path / "s1",
        INFO,
        clock_ns=lambda: T0,
        poll=0.02,
        opener=Filling,  # type: ignore[arg-type]
        on_stopped=stopped.append,
    )
    await recorder.start()
    audio, video = FakeSource(), FakeSource()
    recorder.feed("judge", "video", video)
    recorder.feed("judge", "audio", audio)
    video.put(packets(vp8_payloads(60), step=3000))
    await until(lambda: not video.tap)
    audio.put(packets(opus_payloads(500), step=960))
    await until(lambda: stopped)
    assert stopped == ["disk_full"]
    manifest = await recorder.stop()
    assert manifest is not None
    assert not manifest["complete"]
    assert manifest["stopped_because"] == "disk_full"
    # The video file, closed whole, plays to its end.
    assert len(decoded_rgb(tmp_path / "s1" / "judge.video.webm")) == 60


KILLED = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_recording import FakeSource, INFO, opus_payloads, packets, vp8_payloads
    from courtlink.media.recording import Recorder

    async def main():
        recorder = Recorder(Path({directory!r}), INFO, poll=0.02)
        await recorder.start()
        audio, video = FakeSource(), FakeSource()
        recorder.feed("creditor", "audio", audio)
        recorder.feed("creditor", "video", video)
        now = time.time_ns()
        video.put(packets(vp8_payloads(90), step=3000, at=now))
        audio.put(packets(opus_payloads(150), step=960, at=now))
        while video.tap or audio.tap:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.5)  # the clusters reach the disk
        print("written", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def test_a_kill_leaves_files_that_play_and_a_manifest_rebuilt(tmp_path: Path) -> None:
    directory = tmp_path / "s1"
    script = KILLED.format(tests=str(Path(__file__).parent), directory=str(directory))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"written"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (directory / "manifest.json").exists()
    manifest = recover(directory)
    assert manifest is not None
    assert manifest["complete"] is False
    assert manifest["stopped_because"] == "recovered_after_crash"
    files = {f["name"]: f for f in manifest["files"]}
    assert set(files) == {"creditor.audio.webm", "creditor.video.webm"}
    # Most of what was written plays (a cluster of up to a second may be cut).
    assert files["creditor.video.webm"]["duration_seconds"] > 1.5
    assert files["creditor.audio.webm"]["duration_seconds"] > 1.5
    assert len(decoded_rgb(directory / "creditor.video.webm")) >= 45
    assert recover(directory) is None  # done once
    # A new recording of the session would overwrite it: refused.
    with pytest.raises(FileExistsError):
        asyncio.run(Recorder(directory, INFO).start())
