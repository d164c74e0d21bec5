"""``courtlink bench``: the arithmetic behind the figures, the refusal when the load generator
saturates, and each bench run for real at its smallest size (the server, the generator and Janus
as separate processes on loopback), checking that the printed figures describe what was sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from courtlink.bench.report import draw, levels_for
from courtlink.bench.sfu import BenchError, generator_load, latency_percentiles, slope
from courtlink.cli.bench import SFU_KEYS
from tests.conftest import missing

COURTLINK = str(Path(sys.executable).with_name("courtlink"))


def bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("COURTLINK_DATA_DIR", None)
    return subprocess.run(
        [COURTLINK, "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def last_json(out: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return data


# The arithmetic -----------------------------------------------------------------------------


def test_slope_recovers_a_line_and_ignores_the_fixed_cost() -> None:
    # 0.05 cores of fixed cost plus 1 core per 1000 consumers.
    points = [(c, 0.05 + c / 1000) for c in (120, 240, 360, 480)]
    intercept, b = slope(points)
    assert intercept == pytest.approx(0.05)
    assert 1 / b == pytest.approx(1000)


def test_latency_percentiles_interpolate_within_buckets_over_the_window() -> None:
    name = 'courtlink_media_added_latency_seconds_bucket{{le="{}"}}'
    before = {name.format("0.0001"): 100.0, name.format("0.001"): 100.0, name.format("+Inf"): 100.0}
    # In the window: 50 samples under 0.1 ms, 50 more between 0.1 and 1 ms, none above.
    after = {name.format("0.0001"): 150.0, name.format("0.001"): 200.0, name.format("+Inf"): 200.0}
    p50, p95 = latency_percentiles(after, before)
    assert p50 == pytest.approx(0.1)
    assert p95 == pytest.approx(0.1 + 0.9 * 0.9)


def test_latency_percentiles_are_none_without_samples() -> None:
    assert latency_percentiles({}, {}) == (None, None)


def test_a_saturated_generator_refuses_the_result() -> None:
    assert generator_load({"generator_cpu": 0.3}) == 0.3
    with pytest.raises(BenchError, match="load generator used 97%"):
        generator_load({"generator_cpu": 0.97})


def test_levels_are_four_and_the_transcoding_path_runs_one_to_four_rooms() -> None:
    assert levels_for(20, "sfu") == [5, 10, 15, 20]
    assert levels_for(2, "janus") == [1, 1, 2, 2]
    assert levels_for(50, "transcode") == [1, 2, 3, 4]


def test_plot_is_a_png(tmp_path: Path) -> None:
    level = {"consumers": 24, "server_cpu_cores": 0.05}
    paths: dict[str, dict[str, object]] = {
        "sfu": {"consumers_per_core": 1000.0, "levels": [level, {**level, "consumers": 48}]},
        "janus": {"consumers_per_core": 500.0, "levels": [level]},
    }
    target = tmp_path / "plot.png"
    draw(paths, target)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


# Real runs ----------------------------------------------------------------------------------


def check_sfu_figures(data: dict[str, object], rooms: int) -> None:
    assert set(SFU_KEYS) <= set(data)
    assert data["rooms"] == rooms
    assert data["consumers"] == rooms * 24
    cpu = data["server_cpu_cores"]
    assert isinstance(cpu, float)
    assert 0 < cpu < 1.5
    # Four participants each send about 50 video and 50 audio packets a second; each packet
    # goes to three subscribers: ~1200 forwarded packets a second per room.
    pps = data["forwarded_pps"]
    assert isinstance(pps, float)
    assert 800 * rooms < pps < 2000 * rooms
    # (server_cpu_cores is printed to three decimals: at one room, 0.023 is ±2 %.)
    assert data["consumers_per_core"] == pytest.approx(
        data["consumers"] / cpu, rel=0.01 + 0.0005 / cpu
    )
    loss = data["frame_loss_ratio"]
    assert isinstance(loss, float)
    assert loss < 0.01


def test_bench_sfu_one_room_prints_the_figures_as_json() -> None:
    done = bench("sfu", "--rooms", "1", "--seconds", "3", "--json")
    assert done.returncode == 0, done.stderr
    data = last_json(done.stdout)
    check_sfu_figures(data, 1)
    assert data["path"] == "sfu"
    p50, p95 = data["added_latency_ms_p50"], data["added_latency_ms_p95"]
    assert isinstance(p50, float)
    assert isinstance(p95, float)
    assert 0 < p50 <= p95 < 5
    rss = data["rss_mb_per_room"]
    assert isinstance(rss, float)
    assert rss < 100


def test_bench_sfu_recorded_says_what_recording_adds() -> None:
    """The same room without and with recording: both runs' figures, the CPU recording adds and
    what the recording grew by."""
    done = bench("sfu", "--recorded", "--rooms", "1", "--seconds", "3", "--json")
    assert done.returncode == 0, done.stderr
    data = last_json(done.stdout)
    for key in ("not_recorded", "recorded"):
        runs = data[key]
        assert isinstance(runs, list)
        assert len(runs) == 1
        check_sfu_figures(runs[0], 1)
    cpu = data["server_cpu_cores"]
    assert isinstance(cpu, dict)
    assert cpu["recorded"] > 0
    assert cpu["not_recorded"] > 0
    added = data["recording_adds"]
    assert isinstance(added, float)
    assert added == pytest.approx(cpu["recorded"] / cpu["not_recorded"] - 1, abs=0.002)
    # Four seats of audio and video for the window: some hundreds of MB an hour.
    size = data["recorded_mb_per_hour_per_room"]
    assert isinstance(size, float)
    assert 50 < size < 5000


def test_bench_sfu_janus_one_room() -> None:
    if shutil.which("janus") is None:
        missing("janus", "the janus binary is not installed (apt-get install janus)")
    done = bench("sfu", "--peer", "janus", "--rooms", "1", "--seconds", "3", "--json")
    assert done.returncode == 0, done.stderr
    data = last_json(done.stdout)
    check_sfu_figures(data, 1)
    assert data["path"] == "janus"


def test_bench_sfu_transcoding_baseline_one_room() -> None:
    done = bench("sfu", "--baseline", "transcode", "--rooms", "1", "--seconds", "3", "--json")
    assert done.returncode == 0, done.stderr
    data = last_json(done.stdout)
    assert set(SFU_KEYS) <= set(data)
    assert data["path"] == "transcode"
    assert data["consumers"] == 24
    # Decoding and re-encoding 12 video tracks fills the core; what it serves is counted by
    # the frames it delivered, so the figure is far below the forwarding path's.
    cpu, per_core, loss = (
        data["server_cpu_cores"],
        data["consumers_per_core"],
        data["frame_loss_ratio"],
    )
    assert isinstance(cpu, float)
    assert cpu > 0.5
    assert isinstance(per_core, float)
    assert 0 < per_core < 100
    assert isinstance(loss, float)
    assert 0 <= loss < 1


def test_bench_join_one_group() -> None:
    done = bench("join", "--groups", "1", "--json")
    assert done.returncode == 0, done.stderr
    data = last_json(done.stdout)
    p50, p95 = data["first_frame_s_p50"], data["first_frame_s_p95"]
    assert isinstance(p50, float)
    assert isinstance(p95, float)
    assert 0 < p50 <= p95 < 30


def test_bench_documents_one_round() -> None:
    done = bench("documents", "--rounds", "1", "--json")
    assert done.returncode == 0, done.stderr
    data = last_json(done.stdout)
    for key in ("issue_to_verified_s_p50", "large_to_verified_s_p50", "ack_to_dashboard_s_p50"):
        value = data[key]
        assert isinstance(value, float)
        assert 0 < value < 30


def test_bench_refusals_are_one_line() -> None:
    done = bench("sfu", "--rooms", "0")
    assert done.returncode == 2
    assert "--rooms" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--peer", "janus", "--baseline", "transcode"], "choose one of --baseline and --peer"),
        (["--compare", "--curve"], "--compare runs every path"),
        (["--plot", "cpu.png"], "--plot needs --compare"),
        (["--recorded", "--peer", "janus"], "--recorded measures the SFU at one level"),
        (["--repeat", "3"], "--repeat goes with --recorded"),
    ],
)
def test_bench_refuses_options_that_contradict_each_other(args: list[str], reason: str) -> None:
    done = bench("sfu", *args)
    assert done.returncode == 2
    assert f"Error: {reason}" in done.stderr
    assert "Traceback" not in done.stderr
