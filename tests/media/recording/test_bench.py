"""tools/bench-recording-writer runs the writer's real per-batch path and reports sane numbers."""

from __future__ import annotations

import json

import pytest

from courtlink.media.recording import bench


def test_the_writer_benchmark_measures_the_real_path(capsys: pytest.CaptureFixture[str]) -> None:
    result = bench.run(seats=2, seconds=1.0, runs=1)
    # One second timed: 50 Opus frames and 30 VP8 frames a seat, every one written.
    assert result.frames == 2 * (50 + 30)
    assert result.packets > result.frames
    assert result.us_per_frame > 0
    assert result.cpu_seconds_per_seat_hour > 0
    assert bench.main(["--seats", "1", "--seconds", "0.5", "--repeat", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 25 + 15
