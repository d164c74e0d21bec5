"""Putting bench runs together: one path (with or without a curve), the three-way comparison,
and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from courtlink.bench.sfu import BenchResult, run_level, slope

__all__ = ["compare_paths", "levels_for", "measure_path", "measure_recording"]


def levels_for(rooms: int, path: str) -> list[int]:
    """Four load levels: a quarter, half, three quarters and all of ``rooms``. The transcoding
    path fills a core with one room, so it runs 1 to 4 rooms whatever ``rooms`` is."""
    if path == "transcode":
        return [1, 2, 3, 4]
    return [max(1, round(rooms * f)) for f in (0.25, 0.5, 0.75, 1.0)]


async def _level(path: str, rooms: int, seconds: float, log: Any) -> BenchResult:
    if path == "janus":
        from courtlink.bench.janus import run_janus_level

        return await run_janus_level(rooms, seconds, log=log)
    return await run_level(rooms, seconds, path=path, log=log)


async def measure_path(
    path: str, rooms: int, seconds: float, *, curve: bool = False, log: Any = None
) -> dict[str, Any]:
    if not curve:
        result = await _level(path, rooms, seconds, log)
        return result.as_json()
    results = []
    for level in levels_for(rooms, path):
        if log is not None:
            log(f"{path}: {level} rooms")
        results.append(await _level(path, level, seconds, log))
    top = results[-1].as_json()
    if path == "transcode":
        # Saturated at every level: the figure is what one core delivers, not a slope.
        top["consumers_per_core"] = round(max(r.consumers_per_core for r in results), 1)
    else:
        _, b = slope([(r.consumers, r.server_cpu_cores) for r in results])
        top["consumers_per_core"] = round(1 / b, 1) if b > 0 else None
    top["levels"] = [r.as_json() for r in results]
    return top


async def measure_recording(
    rooms: int, seconds: float, *, repeat: int = 1, log: Any = None
) -> dict[str, Any]:
    """What recording costs: the SFU at ``rooms`` rooms without and with every room recorded,
    alternately ``repeat`` times each (the figures move between runs on a shared machine), and
    the server CPU recording adds, as a share of the forwarding CPU (medians)."""
    plain: list[BenchResult] = []
    recorded: list[BenchResult] = []
    for _ in range(repeat):
        for runs, flag in ((plain, False), (recorded, True)):
            if log is not None:
                log(f"sfu, {rooms} rooms, {'recorded' if flag else 'not recorded'}")
            runs.append(await run_level(rooms, seconds, recorded=flag, log=log))

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    base = median([r.server_cpu_cores for r in plain])
    more = median([r.server_cpu_cores for r in recorded])
    return {
        "rooms": rooms,
        "not_recorded": [r.as_json() for r in plain],
        "recorded": [r.as_json() for r in recorded],
        "server_cpu_cores": {"not_recorded": round(base, 3), "recorded": round(more, 3)},
        "recording_adds": round(more / base - 1, 3) if base > 0 else None,
        "recorded_mb_per_hour_per_room": median(
            [r.recorded_mb_per_hour_per_room or 0.0 for r in recorded]
        ),
    }


async def compare_paths(
    rooms: int, seconds: float, *, plot: Path | None = None, log: Any = None
) -> dict[str, Any]:
    paths = {}
    for path in ("sfu", "janus", "transcode"):
        paths[path] = await measure_path(path, rooms, seconds, curve=True, log=log)
    rows = [("path", "consumers/core", "cpu@max", "pps@max", "p50 ms", "p95 ms", "loss", "MB/room")]
    for name, data in paths.items():
        rows.append(
            (
                name,
                str(data["consumers_per_core"]),
                str(data["server_cpu_cores"]),
                str(data["forwarded_pps"]),
                str(data["added_latency_ms_p50"]),
                str(data["added_latency_ms_p95"]),
                str(data["frame_loss_ratio"]),
                str(data["rss_mb_per_room"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )
    if plot is not None:
        draw(paths, plot)
    return {"table": table, "paths": paths}


def draw(paths: dict[str, dict[str, Any]], target: Path) -> None:
    """Server CPU (cores) over consumers, one line per path (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    names = {
        "sfu": "Courtlink SFU (RTP forwarding)",
        "janus": "Janus VideoRoom",
        "transcode": "aiortc transcoding",
    }
    for name, data in paths.items():
        levels = data.get("levels") or [data]
        xs = [level["consumers"] for level in levels]
        ys = [level["server_cpu_cores"] for level in levels]
        axes.plot(
            xs,
            ys,
            marker="o",
            label=f"{names.get(name, name)}: {data['consumers_per_core']} consumers/core",
        )
    axes.set_xlabel("consumers (forwarded tracks)")
    axes.set_ylabel("server CPU (cores)")
    axes.set_title("Server CPU against load, 2-core machine, server pinned to one core")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target)
    plt.close(figure)
