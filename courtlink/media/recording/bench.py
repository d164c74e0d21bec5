"""A micro-benchmark of the recorder's writer: its CPU per frame and per recorded seat-hour.

``tools/bench-recording-writer`` (``python -m courtlink.media.recording.bench``) drives the
writer thread's own path: one ``Recorder`` a room of four seats, each seat's audio and video
fed from a tap, and every poll (``recorder.POLL``, 0.2 s of media) the recorders' ``_drain``,
which is what the writer thread runs (the Taps swapped for empty ones, each batch assembled and
muxed, the closed clusters written). The taps are filled with synthetic but realistic tap
entries (``depacketize.tapped``), made beforehand: per seat Opus (20 ms frames of about 100
bytes, one packet each) and VP8 (by default the SFU bench's media: 30 fps at about 500 kbit/s,
a key frame every second four times an inter frame's size, cut into packets of at most 1200
bytes). Filling the taps (the event loop's part: ``Tap.append`` here, the packet path in the
server) is not timed; clearing a batch read is, as it is the writer thread's (as was freeing
each packet's bytes object when the tap was a list of them). The files go to a temporary
directory on the disk: the kernel's share of writing them counts.

The first second of media is not timed (the files open, their first key frames go out): the
figures are the steady state of a long recording. Only the thread's own CPU time is measured
(``time.thread_time``: user and system), so other work on the machine changes the figure
little; each run is a fresh set of files, and the median of the runs is given, beside the
same batches through the assemblers alone (frames made into Python objects). The figure at
the SFU bench's load (``courtlink bench sfu --recorded --rooms 8``: 32 seats) is per
seat-second times 32.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from courtlink.media._forward import Tap
from courtlink.media.recording.depacketize import Assembler, tapped
from courtlink.media.recording.recorder import POLL, Recorder, RecordingInfo, RecordingWriter

__all__ = ["Media", "Result", "main", "run"]

POLL_MS = round(POLL * 1000)  # the writer's poll: one batch per track and poll
MTU = 1200
BENCH_SEATS = 32  # courtlink bench sfu --rooms 8: four seats a room
WARM_POLLS = 1000 // POLL_MS  # the first second, untimed: the files open, the first key frames
T0 = 1_700_000_000_000_000_000  # the recording's start (ns since the epoch)


@dataclass(frozen=True)
class Media:
    """What each seat sends."""

    fps: int = 30
    video_kbps: int = 500
    key_seconds: float = 1.0
    audio_bytes: int = 100


@dataclass(frozen=True)
class Result:
    """One benchmark: medians over the runs (CPU of the writing thread only)."""

    seats: int
    seconds: float
    runs: int
    media: dict[str, Any]
    frames: int  # per run, audio and video
    packets: int  # per run
    us_per_frame: float
    us_per_frame_runs: list[float]
    us_per_packet: float
    assemble_us_per_frame: float  # Assembler.push alone (the rest is TrackFile.write_all)
    cpu_seconds_per_seat_hour: float
    cores_at_bench_load: float  # per seat-second times BENCH_SEATS


def _seat(rng: random.Random, seconds: float, media: Media, ssrc: int) -> list[list[bytes]]:
    """One seat's tap entries: ``[audio batch, video batch]`` per poll, in poll order."""
    t0 = T0
    polls = int(seconds * 1000 / POLL_MS)
    audio: list[list[bytes]] = [[] for _ in range(polls)]
    video: list[list[bytes]] = [[] for _ in range(polls)]
    seq = rng.randrange(65536)
    for i in range(int(seconds * 50)):
        at = t0 + i * 20_000_000 + rng.randrange(2_000_000)
        size = max(8, int(rng.gauss(media.audio_bytes, media.audio_bytes / 8)))
        payload = b"\x78" + rng.randbytes(size - 1)  # TOC: hybrid, fullband, 20 ms, one frame
        entry = tapped(at, seq & 0xFFFF, (i * 960) & 0xFFFFFFFF, ssrc, True, payload)
        audio[min(polls - 1, (at - t0) // (POLL_MS * 1_000_000))].append(entry)
        seq += 1
    mean = media.video_kbps * 1000 / 8 / media.fps
    key_every = max(1, round(media.key_seconds * media.fps))
    # Inter frames of ``inter`` bytes, key frames four times that, ``mean`` bytes on average.
    inter = mean * key_every / (key_every + 3)
    seq = rng.randrange(65536)
    for i in range(int(seconds * media.fps)):
        at = t0 + i * 1_000_000_000 // media.fps + rng.randrange(3_000_000)
        key = i % key_every == 0
        size = max(16, int(rng.gauss(inter * (4 if key else 1), inter / 4)))
        body = bytearray(rng.randbytes(size))
        if key:  # a VP8 key frame's header: show_frame, the start code, 640x480
            body[0:10] = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01])
        else:
            body[0] |= 0x01
        parts = [body[k : k + MTU] for k in range(0, len(body), MTU)]
        batch = video[min(polls - 1, (at - t0) // (POLL_MS * 1_000_000))]
        for j, part in enumerate(parts):
            descriptor = b"\x10" if j == 0 else b"\x00"  # S on the first, partition 0
            timestamp = (i * 90000 // media.fps) & 0xFFFFFFFF
            last = j == len(parts) - 1
            batch.append(tapped(at, seq & 0xFFFF, timestamp, ssrc + 1, last, descriptor + part))
            seq += 1
    return [b for pair in zip(audio, video, strict=True) for b in pair]


class _Source:
    """A Producer as the recorder sees it (``recorder.Tapped``): the tap the packet path fills."""

    def __init__(self) -> None:
        self.tap: Tap | None = None
        self.tap_limit = 0
        self.tap_dropped = 0


def _recorders(directory: Path, seats: int) -> tuple[list[Recorder], list[_Source]]:
    """One Recorder a room of four seats, each seat's audio and video fed, started the way
    ``Recorder.start`` starts one but with no thread: this thread is their writer."""
    recorders, sources = [], []
    for room in range(0, seats, 4):
        info = RecordingInfo(f"bench-{room // 4}", "bench", "bench")
        recorder = Recorder(directory / info.session_id, info, clock_ns=lambda: T0)
        recorder._prepare()
        recorder._writer = RecordingWriter()  # never started (``running`` asks for one)
        for n in range(room, min(seats, room + 4)):
            for kind in ("audio", "video"):
                source = _Source()
                assert recorder.feed(f"s{n}", kind, source)
                sources.append(source)
        recorders.append(recorder)
    return recorders, sources


def _once(
    directory: Path, seats: int, seconds: float, media: Media, *, write: bool
) -> tuple[float, int, int]:
    """One run on fresh files: (the thread's CPU seconds, frames, packets). ``write``: through
    the recorders' ``_drain`` (what the writer thread does every poll), else only each track's
    Assembler."""
    rng = random.Random(1)
    media_seconds = seconds + WARM_POLLS * POLL_MS / 1000
    # Per track (a seat's audio, then its video), its batch of each poll.
    tracks: list[list[list[bytes] | None]] = []
    for n in range(seats):
        batches = _seat(rng, media_seconds, media, 1000 + 2 * n)
        tracks += [list(batches[0::2]), list(batches[1::2])]
    polls = len(tracks[0])
    recorders, sources = _recorders(directory, seats) if write else ([], [])
    assemblers = [Assembler("vp8" if k % 2 else "opus") for k in range(len(tracks))]
    cpu = 0.0
    assembled = packets = before = 0
    for p in range(polls):
        if p == WARM_POLLS:  # every file open, its first key frame written: the steady state
            cpu, assembled, packets = 0.0, 0, 0
            before = _frames(recorders)
        if write:
            for source, track in zip(sources, tracks, strict=True):  # the event loop's part
                batch, track[p] = track[p], None
                assert batch is not None
                packets += len(batch)
                tap = source.tap
                assert tap is not None
                for entry in batch:
                    tap.append(entry)
                del batch
            started = time.thread_time()
            for recorder in recorders:
                recorder._drain()
            cpu += time.thread_time() - started
        else:
            taps = []
            for track in tracks:
                batch, track[p] = track[p], None
                assert batch is not None
                packets += len(batch)
                tap = Tap()
                for entry in batch:
                    tap.append(entry)
                taps.append(tap)
            started = time.thread_time()
            for assembler, tap in zip(assemblers, taps, strict=True):
                assembled += len(assembler.push(tap))
            cpu += time.thread_time() - started
    frames = _frames(recorders) - before if write else assembled
    for recorder in recorders:
        for written in recorder._tracks.values():
            written.file.close()
        assert recorder._journal is not None
        recorder._journal.close()
    return cpu, frames, packets


def _frames(recorders: list[Recorder]) -> int:
    return sum(t.file.frames for r in recorders for t in r._tracks.values())


def run(
    seats: int = 4,
    seconds: float = 60.0,
    runs: int = 5,
    media: Media | None = None,
    directory: Path | None = None,
) -> Result:
    """``runs`` runs of ``seats`` seats over ``seconds`` of media, each on fresh files, and one
    of the assembler alone per run; the medians."""
    media = media or Media()
    cpus: list[float] = []
    assembles: list[float] = []
    frames = packets = 0
    with tempfile.TemporaryDirectory(prefix="bench-recording-", dir=directory) as tmp:
        for r in range(runs):
            for write in (True, False):
                run_dir = Path(tmp) / f"{r}-{int(write)}"
                run_dir.mkdir()
                cpu, frames, packets = _once(run_dir, seats, seconds, media, write=write)
                (cpus if write else assembles).append(cpu)
                shutil.rmtree(run_dir)
    per_frame = [c / frames * 1e6 for c in cpus]
    cpu = statistics.median(cpus)
    per_seat_second = cpu / (seats * seconds)
    return Result(
        seats=seats,
        seconds=seconds,
        runs=runs,
        media=asdict(media),
        frames=frames,
        packets=packets,
        us_per_frame=round(statistics.median(per_frame), 3),
        us_per_frame_runs=[round(x, 3) for x in per_frame],
        us_per_packet=round(cpu / packets * 1e6, 3),
        assemble_us_per_frame=round(statistics.median(assembles) / frames * 1e6, 3),
        cpu_seconds_per_seat_hour=round(per_seat_second * 3600, 3),
        cores_at_bench_load=round(per_seat_second * BENCH_SEATS, 5),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/bench-recording-writer",
        description="The recorder's writer thread's CPU per frame and per recorded seat-hour.",
    )
    parser.add_argument("--seats", type=int, default=4, help="seats recorded (default 4)")
    parser.add_argument("--seconds", type=float, default=60.0, help="media per run (60)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the median (5)")
    parser.add_argument("--fps", type=int, default=30, help="video frame rate (30)")
    parser.add_argument("--video-kbps", type=int, default=500, help="video bitrate (500)")
    parser.add_argument("--key-seconds", type=float, default=1.0, help="key frame interval (1)")
    parser.add_argument("--audio-bytes", type=int, default=100, help="Opus frame size (100)")
    parser.add_argument("--dir", type=Path, help="where the files go (a temporary directory)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    media = Media(args.fps, args.video_kbps, args.key_seconds, args.audio_bytes)
    result = run(args.seats, args.seconds, args.repeat, media, args.dir)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    print(
        f"recording writer: {result.seats} seats x {result.seconds:g} s "
        f"(VP8 {media.fps} fps ~{media.video_kbps} kbit/s, a key frame every "
        f"{media.key_seconds:g} s; Opus 20 ms ~{media.audio_bytes} B), {result.runs} runs\n"
        f"  {result.frames} frames, {result.packets} packets a run\n"
        f"  per frame   {result.us_per_frame:.2f} us (runs "
        f"{min(result.us_per_frame_runs):.2f}-{max(result.us_per_frame_runs):.2f}), "
        f"of which assembling {result.assemble_us_per_frame:.2f} us\n"
        f"  per packet  {result.us_per_packet:.2f} us\n"
        f"  per recorded seat-hour  {result.cpu_seconds_per_seat_hour:.2f} CPU s\n"
        f"  at the SFU bench's load ({BENCH_SEATS} seats)  {result.cores_at_bench_load:.4f} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
