"""A recorded four-party session end to end: ``courtlink serve`` records the demo session
(created recorded), four headless participants publish their seat's colour and tone, the debtor
reconnects half way, the judge ends the session; then every file is read back with PyAV and
decoded (here, in the test): the right codec, the seat's colour and tone, durations and start
offsets that line up across seats, one file per seat and kind through the reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from courtlink.bench.participant import SEAT_SIGNATURES, Participant, nearest_seat, nearest_tone
from courtlink.court.seats import Seat
from tests.cli.test_cli import courtlink
from tests.media.conftest import start_served

SEATS = ("judge", "officer", "debtor", "creditor")
RECORD = {"COURTLINK__SESSIONS__RECORD_BY_DEFAULT": "true"}


async def wait_until(predicate: Any, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def colours(path: Path) -> list[tuple[int, int, int]]:
    with av.open(str(path)) as container:
        out = []
        for frame in container.decode(video=0):
            mean = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
            out.append((int(mean[0]), int(mean[1]), int(mean[2])))
        return out


def tone(path: Path) -> tuple[float, float]:
    """Dominant frequency and RMS of the file's audio, decoded."""
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().astype(np.float64).mean(axis=0) for f in container.decode(audio=0)]
    samples = np.concatenate(chunks)
    spectrum = np.abs(np.fft.rfft(samples))
    hz = float(np.argmax(spectrum[1:]) + 1) * 48000 / len(samples)
    return hz, float(np.sqrt(np.mean(samples**2)))


@pytest.mark.timeout(180)
async def test_a_recorded_session_leaves_each_seats_files(tmp_path: Path) -> None:
    served = start_served(tmp_path / "var", env=RECORD)
    parties = {
        seat: Participant(served.invites[seat], consent=True, keyframe_interval=2.0, ssl=False)
        for seat in SEATS
    }
    tasks = {seat: asyncio.create_task(p.run(120)) for seat, p in parties.items()}
    started = time.monotonic()
    try:
        await wait_until(
            lambda: all(p.peer_state == "connected" for p in parties.values()), "four connected"
        )
        await asyncio.sleep(5)
        # The debtor's network "drops": a new peer connection, new Producers, new SSRCs.
        ack = await parties["debtor"].command("media.restart")
        assert ack["ok"], ack
        await asyncio.sleep(1)
        await wait_until(lambda: parties["debtor"].peer_state == "connected", "debtor back")
        await asyncio.sleep(5)
        # The judge's participant stops on "session_ended", which may come before the ack.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(parties["judge"].command("end"), 5)
        directory = tmp_path / "var" / "recordings" / served.session
        await wait_until(lambda: (directory / "manifest.json").exists(), "the manifest")
        took = time.monotonic() - started
        # The server seals it as soon as the manifest is written (manifest.p7s, audited).
        await wait_until(lambda: (directory / "manifest.p7s").exists(), "the seal")
        verified = await courtlink("verify", str(directory), env=served.env, cwd=tmp_path)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        served.stop()

    manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
    assert manifest["format"] == "courtlink-recording/1"
    assert manifest["complete"] is True
    assert manifest["stopped_because"] == "ended"
    assert manifest["started_at"].endswith("Z")
    assert manifest["ended_at"].endswith("Z")
    files = {f["name"]: f for f in manifest["files"]}
    # One file per seat and kind, the reconnecting debtor's included.
    assert sorted(files) == sorted(f"{s}.{k}.webm" for s in SEATS for k in ("audio", "video"))
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [*files, "journal.jsonl", "manifest.json", "manifest.p7s"]
    )
    # `courtlink verify DIR` with the server's certificates: the recording is genuine.
    assert verified.status == 0, verified.out + verified.err
    assert verified.out.startswith("genuine"), verified.out
    ends = []
    for name, entry in files.items():
        path = directory / name
        seat = Seat(entry["seat"])
        assert entry["bytes"] == path.stat().st_size
        assert 0 <= entry["offset_seconds"] < took
        assert 8 < entry["duration_seconds"] < took, entry
        ends.append(entry["offset_seconds"] + entry["duration_seconds"])
        with av.open(str(path)) as container:
            stream = container.streams[0]
            assert stream.codec_context.name == ("vp8" if entry["kind"] == "video" else "opus")
        if entry["kind"] == "video":
            seen = colours(path)
            assert len(seen) > 8 * 10, (name, len(seen))  # well over 10 fps for the whole time
            wrong = [c for c in seen if nearest_seat(c) is not seat]
            assert len(wrong) <= len(seen) // 50, (name, wrong[:5])
        else:
            hz, level = tone(path)
            assert nearest_tone(hz) is seat, (name, hz, SEAT_SIGNATURES[seat].tone_hz)
            assert level > 0.02, (name, level)
    # Everyone's files end together (the session ended), and a seat's audio and video start
    # together: the session clock is one.
    assert max(ends) - min(ends) < 1.5, ends
    for seat in SEATS:
        a, v = files[f"{seat}.audio.webm"], files[f"{seat}.video.webm"]
        assert abs(a["offset_seconds"] - v["offset_seconds"]) < 1.5, (seat, a, v)
    # The debtor's audio has no hole or overlap across its reconnect.
    with av.open(str(directory / "debtor.audio.webm")) as container:
        times = [p.pts for p in container.demux(audio=0) if p.pts is not None]
    steps = np.diff(times)
    assert (steps > 0).all()
    assert steps.max() < 1500, steps.max()
