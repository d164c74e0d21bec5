"""``courtlink bench sfu``: the media path under load, measured from outside the server.

The bench starts the server (bench/server.py: the SFU, or the transcoding baseline; pinned to
core 0 with taskset), creates ``rooms`` sessions of four participants, and runs the load
generator (bench/loadgen.py) in its own process on core 1. Over a measured window it reads the
server's CPU time and memory from /proc and its counters from /metrics, and the generator's
packet counts. ``run_level`` is one load level; bench/report.py runs several and takes
consumers per core from the slope, so fixed costs neither flatter nor punish the figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from courtlink.bench.loadgen import MAX_GENERATOR_LOAD
from courtlink.bench.procs import pin, sample
from courtlink.bench.procs import stop as stop_process
from courtlink.errors import CourtlinkError

__all__ = [
    "BenchError",
    "BenchResult",
    "generator_load",
    "latency_percentiles",
    "run_level",
    "slope",
]

CONSUMERS_PER_ROOM = 4 * 3 * 2  # four participants, each receives three seats' audio and video
SEATS = ("judge", "officer", "debtor", "creditor")
# A throwaway account in a throwaway data directory.
PASSWORD = secrets.token_urlsafe(12)


class BenchError(CourtlinkError):
    """A run that cannot give a trustworthy figure (the generator saturated, a join failed);
    the CLI prints its message as one line."""

    code = "bench_refused"


@dataclass
class BenchResult:
    path: str
    rooms: int
    consumers: int
    server_cpu_cores: float
    consumers_per_core: float
    forwarded_pps: float
    added_latency_ms_p50: float | None
    added_latency_ms_p95: float | None
    frame_loss_ratio: float | None
    rss_mb_per_room: float
    generator_cpu: float
    window_seconds: float
    # With recorded rooms: what the recordings grew by, per room, scaled to an hour.
    recorded_mb_per_hour_per_room: float | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """The bench's server (bench/server.py) in a fresh data directory, pinned to a core, with
    the SFU (``path`` "sfu") or the transcoding baseline ("transcode")."""

    def __init__(self, data_dir: Path, *, core: int | None, path: str = "sfu") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "COURTLINK_DATA_DIR": str(data_dir),
            "COURTLINK_PORT": str(self.port),
            "COURTLINK__MEDIA__HOST_ADDRESS": "127.0.0.1",
            "COURTLINK__SESSIONS__LOBBY_BY_DEFAULT": "false",
            "COURTLINK__LOG__LEVEL": "WARNING",
            "COURTLINK__DEMO__ENABLED": "false",
        }
        self.core = core
        self.baseline = [] if path == "sfu" else ["--baseline", path]
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str = "") -> str:
        """``courtlink <args>`` against this server's data directory; its stdout."""
        out = subprocess.run(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "courtlink.cli", *args],
            input=stdin.encode(),
            env=self.env,
            capture_output=True,
            check=False,
            timeout=120,
        )
        if out.returncode != 0:
            raise BenchError(f"courtlink {' '.join(args)}: {out.stderr.decode().strip()}")
        return out.stdout.decode()

    async def start(self) -> None:
        command = pin([sys.executable, "-m", "courtlink.bench.server", *self.baseline], self.core)
        log = (self.data_dir / "server.log").open("wb")
        self.proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own server, started once
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.base + "/healthz") as response:
                        if response.status == 200:
                            return
                if self.proc.poll() is not None:
                    raise BenchError(
                        "the server did not start; see " + str(self.data_dir / "server.log")
                    )
                await asyncio.sleep(0.1)
        raise BenchError("the server did not answer /healthz")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def metrics(self) -> dict[str, float]:
        async with aiohttp.ClientSession() as http, http.get(self.base + "/metrics") as response:
            text = await response.text()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
        return values

    def stop(self) -> None:
        stop_process(self.proc)


async def prepare_rooms(
    server: ServerProcess, rooms: int, *, recorded: bool = False
) -> list[dict[str, Any]]:
    """Sessions of four with every seat's invite, consent given: the generator's plan. With
    ``recorded`` the sessions are created recorded (the server records them once live)."""
    server.cli(
        "account", "add", "--username", "bench", "--name", "Bench", "--role", "judge",
        "--court", "Bench court", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    participants = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            server.base + "/api/login", json={"username": "bench", "password": PASSWORD}
        ) as r:
            csrf = (await r.json())["csrf"]
        headers = {"X-CSRF-Token": csrf}

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with http.post(server.base + path, json=body, headers=headers) as response:
                data: dict[str, Any] = await response.json()
                if response.status >= 300:
                    raise BenchError(f"{path}: {data.get('detail')}")
                return data

        for room in range(rooms):
            case = await post(
                "/api/cases",
                {
                    "number": f"(2026)苏0903执{room + 1}号",
                    "creditor_name": "甲",
                    "debtor_name": "乙",
                    "amount_owed_fen": 100,
                },
            )
            session = await post(
                "/api/sessions", {"case_id": case["id"], "lobby": False, "recorded": recorded}
            )
            for seat in SEATS:
                issued = await post(f"/api/sessions/{session['id']}/invites", {"seats": [seat]})
                token = issued["url"].rsplit("/i/", 1)[1]
                participants.append({"room": room, "seat": seat, "token": token})
                if seat in ("debtor", "creditor"):
                    async with aiohttp.ClientSession(
                        cookie_jar=aiohttp.CookieJar(unsafe=True)
                    ) as party:
                        async with party.get(issued["url"], allow_redirects=False):
                            pass
                        async with party.post(
                            f"{server.base}/join/{session['id']}/consent",
                            data={"agree": "yes"},
                            allow_redirects=False,
                        ) as response:
                            if response.status != 303:
                                raise BenchError("consent was refused")
    return participants


def generator_load(result: dict[str, Any]) -> float:
    """The share of its core the load generator used over the window; BenchError when it was
    above MAX_GENERATOR_LOAD, because the figure would then measure the generator."""
    generator = float(result["generator_cpu"])
    if generator > MAX_GENERATOR_LOAD:
        raise BenchError(
            f"the load generator used {generator:.0%} of its core: the figure would measure it"
        )
    return generator


def latency_percentiles(
    metrics: dict[str, float], before: dict[str, float]
) -> tuple[float | None, float | None]:
    """p50 and p95 of the server-added latency histogram over the window (interpolated within
    buckets), in milliseconds."""
    buckets = []
    for name, value in metrics.items():
        match = re.match(r'courtlink_media_added_latency_seconds_bucket\{le="([^"]+)"\}', name)
        if match:
            le = float("inf") if match.group(1) == "+Inf" else float(match.group(1))
            buckets.append((le, value - before.get(name, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None, None
    total = buckets[-1][1]

    def quantile(q: float) -> float:
        target = q * total
        lower_le, lower_count = 0.0, 0.0
        for le, count in buckets:
            if count >= target:
                if le == float("inf"):
                    return lower_le * 1000
                span = count - lower_count
                frac = 0.0 if span <= 0 else (target - lower_count) / span
                return (lower_le + frac * (le - lower_le)) * 1000
            lower_le, lower_count = le, count
        return lower_le * 1000

    return round(quantile(0.5), 3), round(quantile(0.95), 3)


async def run_generator(plan: dict[str, Any], core: int | None, on_event: Any) -> dict[str, Any]:
    command = pin([sys.executable, "-m", "courtlink.bench.loadgen"], core)
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(plan).encode())
    await proc.stdin.drain()
    proc.stdin.close()
    result: dict[str, Any] | None = None
    while line := await proc.stdout.readline():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        await on_event(event)
        if event.get("event") == "result":
            result = event
    await proc.wait()
    if result is None:
        err = (await proc.stderr.read()).decode() if proc.stderr else ""
        raise BenchError(
            "the load generator failed: " + err.strip().splitlines()[-1]
            if err.strip()
            else "no output"
        )
    return result


def _bytes_under(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


async def run_level(
    rooms: int,
    seconds: float,
    *,
    path: str = "sfu",
    warmup: float = 4.0,
    log: Any = None,
    recorded: bool = False,
) -> BenchResult:
    """One load level through Courtlink (``path`` "sfu", or "transcode": aiortc's usual path);
    ``recorded``: every room is recorded too (its cost is the difference at the same load)."""
    cache = Path(tempfile.gettempdir()) / "courtlink-bench-cache"
    with tempfile.TemporaryDirectory(prefix="courtlink-bench-") as tmp:
        server = ServerProcess(Path(tmp), core=0, path=path)
        await server.start()
        try:
            participants = await prepare_rooms(server, rooms, recorded=recorded)
            await asyncio.sleep(1)
            idle = sample(server.pid)
            marks: dict[str, Any] = {}

            async def on_event(event: dict[str, Any]) -> None:
                kind = event.get("event")
                if log is not None and kind in ("joined", "armed"):
                    log(f"  {kind}: {event}")
                if kind in ("window_start", "window_end"):
                    marks[kind] = (time.monotonic(), sample(server.pid), await server.metrics())
                    marks[kind + "_bytes"] = _bytes_under(Path(tmp) / "recordings")

            plan = {
                "base": server.base,
                "participants": participants,
                "seconds": seconds,
                "warmup": warmup,
                "cache": str(cache),
            }
            result = await run_generator(plan, 1, on_event)
        finally:
            server.stop()
    (t0, s0, m0), (t1, s1, m1) = marks["window_start"], marks["window_end"]
    wall = t1 - t0
    cores = (s1.cpu_seconds - s0.cpu_seconds) / wall
    consumers = rooms * CONSUMERS_PER_ROOM
    forwarded = m1.get('courtlink_media{kind="forwarded"}', 0.0) - m0.get(
        'courtlink_media{kind="forwarded"}', 0.0
    )
    p50, p95 = latency_percentiles(m1, m0)
    loss = None if result["loss_ratio"] is None else round(result["loss_ratio"], 5)
    served = float(consumers)
    if path == "transcode":
        # Re-encoded packets do not match the sent ones one for one, and a saturated server
        # delivers fewer frames than it receives: count consumer-equivalents by the video
        # frames it actually handed to its encoders (30 per second per video consumer).
        key = 'courtlink_media{kind="video_frames"}'
        frames = (m1.get(key, 0.0) - m0.get(key, 0.0)) / wall
        delivered = min(1.0, frames / (rooms * 12 * 30)) if rooms else 0.0
        served = consumers * delivered
        loss = round(1 - delivered, 5)
    generator = generator_load(result)
    return BenchResult(
        path=path,
        rooms=rooms,
        consumers=consumers,
        server_cpu_cores=round(cores, 3),
        consumers_per_core=round(served / cores, 1) if cores > 0 else float("inf"),
        forwarded_pps=round(forwarded / wall, 1)
        if forwarded
        else round(result["received"] / wall, 1),
        added_latency_ms_p50=p50,
        added_latency_ms_p95=p95,
        frame_loss_ratio=loss,
        rss_mb_per_room=round((s1.rss_bytes - idle.rss_bytes) / rooms / 2**20, 2),
        generator_cpu=generator,
        window_seconds=round(wall, 2),
        recorded_mb_per_hour_per_room=round(
            (marks["window_end_bytes"] - marks["window_start_bytes"]) / wall * 3600 / rooms / 2**20,
            1,
        )
        if recorded
        else None,
    )


def slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares (intercept, slope) of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    b = sxy / sxx if sxx else 0.0
    return my - b * mx, b
