"""``courtlink bench``: the benchmarks (courtlink/bench/), printed for people or as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from courtlink.cli.common import echo_result, run

__all__ = ["SFU_KEYS", "bench"]


@click.group()
def bench() -> None:
    """Benchmarks that print numbers (docs/benchmarks.md)."""


# The figures `courtlink bench sfu --json` prints (with the path, and the levels of a curve).
SFU_KEYS = (
    "rooms",
    "consumers",
    "server_cpu_cores",
    "consumers_per_core",
    "forwarded_pps",
    "added_latency_ms_p50",
    "added_latency_ms_p95",
    "frame_loss_ratio",
    "rss_mb_per_room",
)


@bench.command("sfu")
@click.option("--rooms", type=click.IntRange(1, 500), default=10, show_default=True)
@click.option("--seconds", type=click.FloatRange(2, 600), default=15, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.option(
    "--curve", is_flag=True, help="Four or more load levels; consumers per core from the slope."
)
@click.option(
    "--baseline", type=click.Choice(["transcode"]), help="aiortc's decode, relay, re-encode path."
)
@click.option("--peer", type=click.Choice(["janus"]), help="The Janus gateway's VideoRoom instead.")
@click.option(
    "--recorded",
    is_flag=True,
    help="What recording costs: the same load without and with every room recorded.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="With --recorded: runs of each, alternated (medians).",
)
@click.option(
    "--compare", is_flag=True, help="Courtlink, the transcoding baseline and Janus, one table."
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --compare: a PNG of CPU over consumers.",
)
def bench_sfu(
    rooms: int,
    seconds: float,
    as_json: bool,
    curve: bool,
    baseline: str | None,
    peer: str | None,
    recorded: bool,
    repeat: int,
    compare: bool,
    plot: Path | None,
) -> None:
    """The media path under load: the server pinned to core 0, the load generator on core 1."""
    from courtlink.bench.report import compare_paths, measure_path, measure_recording

    if baseline and peer:
        raise click.UsageError("choose one of --baseline and --peer")
    if compare and (baseline or peer or curve):
        raise click.UsageError(
            "--compare runs every path as a curve: drop --baseline, --peer, --curve"
        )
    if plot is not None and not compare:
        raise click.UsageError("--plot needs --compare")
    if recorded and (baseline or peer or compare or curve):
        raise click.UsageError("--recorded measures the SFU at one level: drop the other modes")
    if repeat != 1 and not recorded:
        raise click.UsageError("--repeat goes with --recorded")

    def log(line: str) -> None:
        if not as_json:
            click.echo(line, err=True)

    async def go() -> dict[str, Any]:
        if recorded:
            return await measure_recording(rooms, seconds, repeat=repeat, log=log)
        if compare:
            return await compare_paths(rooms, seconds, plot=plot, log=log)
        path = "janus" if peer == "janus" else (baseline or "sfu")
        return await measure_path(path, rooms, seconds, curve=curve, log=log)

    outcome = run(go())
    if recorded:
        echo_result(outcome, as_json)
        return
    if compare:
        if as_json:
            paths = {
                name: {key: data.get(key) for key in SFU_KEYS} | {"levels": data.get("levels")}
                for name, data in outcome["paths"].items()
            }
            click.echo(json.dumps({"paths": paths}, ensure_ascii=False))
        else:
            click.echo(outcome["table"])
        return
    summary = {key: outcome.get(key) for key in SFU_KEYS}
    summary["path"] = outcome.get("path")
    if curve:
        summary["levels"] = outcome.get("levels")
    echo_result(summary if as_json else outcome, as_json)


@bench.command("join")
@click.option("--groups", type=click.IntRange(1, 100), default=4, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_join(groups: int, as_json: bool) -> None:
    """N groups of four join at once: connect to first remote frame decoded, p50 and p95."""
    from courtlink.bench.flows import run_join

    echo_result(run(run_join(groups)), as_json)


@bench.command("documents")
@click.option("--rounds", type=click.IntRange(1, 200), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_documents(rounds: int, as_json: bool) -> None:
    """An order to verified on the terminal; acknowledgment to the judge's dashboard."""
    from courtlink.bench.flows import run_documents

    echo_result(run(run_documents(rounds)), as_json)
