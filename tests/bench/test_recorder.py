"""``courtlink participant --record DIR``: each remote seat's video and audio in files that play.

The unit test writes frames through SeatRecorder and reads the files back; the session test runs
the command against a real server while another participant publishes its seat's colour and
tone, and checks that the files hold that seat's picture and tone.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import subprocess
import sys
import wave
from pathlib import Path

import av

from courtlink.bench.participant import (
    SEAT_SIGNATURES,
    Participant,
    _mean_rgb,
    nearest_seat,
    nearest_tone,
)
from courtlink.bench.recorder import SeatRecorder
from tests.media.conftest import start_served

COURTLINK = str(Path(sys.executable).with_name("courtlink"))


def solid(rgb: tuple[int, int, int], width: int = 320, height: int = 240) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "rgb24")
    frame.planes[0].update(bytes(rgb) * (frame.planes[0].buffer_size // 3))
    return frame.reformat(format="yuv420p")


def tone(hz: float, index: int, samples: int = 960, rate: int = 48000) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
    frame.sample_rate = rate
    data = bytearray()
    for n in range(samples):
        t = (index * samples + n) / rate
        value = int(8000 * math.sin(2 * math.pi * hz * t))
        data += value.to_bytes(2, "little", signed=True) * 2
    frame.planes[0].update(bytes(data) + bytes(frame.planes[0].buffer_size - len(data)))
    return frame


def wav_tone_hz(path: Path) -> tuple[float, float]:
    """(seconds of audio, its frequency from zero crossings of the left channel)."""
    with wave.open(str(path)) as wav:
        rate, frames = wav.getframerate(), wav.getnframes()
        raw = wav.readframes(frames)
        channels = wav.getnchannels()
    left = [
        int.from_bytes(raw[i : i + 2], "little", signed=True)
        for i in range(0, len(raw), 2 * channels)
    ]
    crossings = sum(1 for a, b in itertools.pairwise(left) if (a < 0) != (b < 0))
    return frames / rate, crossings * rate / (2 * max(1, len(left)))


def webm_frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def test_seat_recorder_writes_a_playable_webm_and_wav(tmp_path: Path) -> None:
    recorder = SeatRecorder(tmp_path, "judge")
    for i in range(20):
        recorder.video(solid((200, 30, 30)))
        recorder.audio(tone(440, i))
    # A frame of another size (the sender changed resolution) is scaled to the first one.
    recorder.video(solid((200, 30, 30), 640, 480))
    recorder.close()
    frames = webm_frames(tmp_path / "judge.webm")
    assert len(frames) == 21
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    assert nearest_seat(_mean_rgb(frames[-1])) == "judge"
    seconds, hz = wav_tone_hz(tmp_path / "judge.wav")
    assert math.isclose(seconds, 20 * 960 / 48000)
    assert abs(hz - 440) < 10


def test_seat_recorder_stops_quietly_on_an_unwritable_directory(tmp_path: Path) -> None:
    recorder = SeatRecorder(tmp_path / "missing", "officer")
    recorder.video(solid((30, 170, 40)))
    recorder.audio(tone(660, 0))
    recorder.video(solid((30, 170, 40)))
    recorder.close()
    assert recorder.video_frames == 0
    assert recorder.audio_frames == 0


async def test_participant_record_writes_what_the_other_seat_sends(tmp_path: Path) -> None:
    served = start_served(tmp_path / "var")
    try:
        judge = Participant(served.invites["judge"], ssl=False)
        judge_run = asyncio.ensure_future(judge.run(40))
        record = tmp_path / "recorded"
        done = await asyncio.to_thread(
            subprocess.run,
            [
                COURTLINK,
                "participant",
                "--invite",
                served.invites["officer"],
                "--consent",
                "--record",
                str(record),
                "--seconds",
                "8",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        judge._stop("done")
        await judge_run
    finally:
        served.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    received = report["slots"]["judge"]["video_frames"]
    assert received > 20, report
    frames = webm_frames(record / "judge.webm")
    # Every decoded frame is in the file (a few at the very end may still be in flight).
    assert received - 5 <= len(frames) <= received
    assert nearest_seat(_mean_rgb(frames[-1])) == "judge"
    seconds, hz = wav_tone_hz(record / "judge.wav")
    assert seconds > 3
    assert nearest_tone(hz) == "judge", hz
    assert abs(hz - SEAT_SIGNATURES["judge"].tone_hz) < 30
    # Seats nobody held sent nothing, so they have no files.
    assert not (record / "creditor.webm").exists()
