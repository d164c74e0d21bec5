"""Fixtures for the media tests that run the real server: ``courtlink serve`` in a subprocess on a
free port with its own data directory (so the codec guard and thread checks see only the server),
the demo session's invites from ``courtlink demo --json``, /metrics parsing, a minimal Socket.IO +
aiortc client, and the "is it flowing" measurement over four headless participants.

Flowing is always measured as counters rising over a window, never as absolute numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiortc import RTCPeerConnection, RTCSessionDescription

from courtlink.bench.participant import Participant

COURTLINK = Path(sys.executable).with_name("courtlink")
Pair = tuple[str, str]  # (receiver seat, source seat)

# A window counts as flowing from this many new frames on (15 fps video, 50 fps audio).
MIN_VIDEO = 3
MIN_AUDIO = 10


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """``courtlink serve`` in a subprocess and the demo session it holds."""

    proc: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    log: Path
    session: str = ""
    invites: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def metrics(self) -> dict[str, float]:
        """/metrics as {'name{labels}': value}."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    async def ametrics(self) -> dict[str, float]:
        return await asyncio.to_thread(self.metrics)

    def threads(self) -> list[str]:
        """The names of the server process's threads (/proc/<pid>/task/*/comm)."""
        names = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                names.append((task / "comm").read_text().strip())
        return sorted(names)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_served(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    public_host: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Served:
    """Start the server, wait for /healthz, create the demo session (lobby on)."""
    if not COURTLINK.exists():
        pytest.fail(f"{COURTLINK} not found: install the package into the venv (pip install -e .)")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    public = f"http://{public_host or host}:{port}"
    full_env = {
        **os.environ,
        "COURTLINK_DATA_DIR": str(data_dir),
        "COURTLINK_HOST": host,
        "COURTLINK_PORT": str(port),
        "COURTLINK_PUBLIC_URL": public,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(COURTLINK), "serve", "--no-demo"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    served = Served(proc, public, full_env, log)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"courtlink serve exited with {proc.returncode}:\n{served.log_tail()}")
        try:
            with urllib.request.urlopen(f"{public}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            pytest.fail(f"courtlink serve did not answer /healthz in 30s:\n{served.log_tail()}")
        time.sleep(0.1)
    made = subprocess.run(
        [str(COURTLINK), "demo", "--json"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if made.returncode != 0:
        served.stop()
        pytest.fail(f"courtlink demo failed: {made.stderr}")
    demo = json.loads(made.stdout)
    served.session, served.invites = demo["session"], demo["invites"]
    return served


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``served(env={...}, host=..., public_host=...)`` starts ``courtlink serve`` with those
    settings (each call its own data directory and port); every server is stopped at the end."""
    started: list[Served] = []

    def start(**kwargs: Any) -> Served:
        live = start_served(tmp_path / f"var{len(started)}", **kwargs)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def token_of(invite_url: str) -> str:
    return invite_url.rsplit("/i/", 1)[1]


# Measuring media -------------------------------------------------------------------------------


def frame_counts(parties: Mapping[str, Participant]) -> dict[Pair, tuple[int, int]]:
    """(video frames, audio frames) every party decoded from every other seat so far."""
    counts: dict[Pair, tuple[int, int]] = {}
    for rx, party in parties.items():
        slots = party.report()["slots"]
        for src in parties:
            if src != rx:
                slot = slots.get(src) or {}
                counts[(rx, src)] = (slot.get("video_frames", 0), slot.get("audio_frames", 0))
    return counts


async def window(
    parties: Mapping[str, Participant], seconds: float = 2.0
) -> dict[Pair, tuple[int, int]]:
    """How many frames each pair decoded during ``seconds``."""
    before = frame_counts(parties)
    await asyncio.sleep(seconds)
    after = frame_counts(parties)
    return {
        pair: (after[pair][0] - before[pair][0], after[pair][1] - before[pair][1])
        for pair in before
    }


def describe(deltas: Mapping[Pair, tuple[int, int]]) -> str:
    return ", ".join(f"{rx}<-{src}: v+{v} a+{a}" for (rx, src), (v, a) in sorted(deltas.items()))


Expect = Callable[[str, str], tuple[bool, bool]]  # (rx, src) -> (video flows, audio flows)


def mismatches(deltas: Mapping[Pair, tuple[int, int]], expect: Expect) -> list[str]:
    wrong = []
    for (rx, src), (video, audio) in sorted(deltas.items()):
        want_video, want_audio = expect(rx, src)
        if (video >= MIN_VIDEO) != want_video or (want_video is False and video != 0):
            wrong.append(f"{rx}<-{src} video +{video} (want {'rising' if want_video else 0})")
        if (audio >= MIN_AUDIO) != want_audio or (want_audio is False and audio != 0):
            wrong.append(f"{rx}<-{src} audio +{audio} (want {'rising' if want_audio else 0})")
    return wrong


async def expect_flows(
    parties: Mapping[str, Participant],
    expect: Expect,
    *,
    what: str,
    within: float = 12.0,
    seconds: float = 2.0,
) -> dict[Pair, tuple[int, int]]:
    """Take windows of ``seconds`` until one matches ``expect`` for every pair (a change takes a
    moment: frames in flight, a key frame to wait for); fail with the last window otherwise."""
    deadline = time.monotonic() + within
    started = time.monotonic()
    while True:
        deltas = await window(parties, seconds)
        wrong = mismatches(deltas, expect)
        if not wrong:
            print(f"{what} (after {time.monotonic() - started:.1f}s): {describe(deltas)}")
            return deltas
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {'; '.join(wrong)}\nlast window: {describe(deltas)}")


def everyone(rx: str, src: str) -> tuple[bool, bool]:
    return True, True


# A minimal client: Socket.IO and an aiortc answer, no tracks, nothing decoded ------------------


class RawClient:
    """A participant without media of its own: joins, answers the server's offer with aiortc,
    reports acks, offers and presence as they come."""

    def __init__(self, base_url: str, invite_url: str) -> None:
        self.base_url = base_url
        self.token = token_of(invite_url)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.presence: list[dict[str, Any]] = []
        self.media_states: list[str] = []
        self.participant: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.sio.on("media.offer", self.offers.put)
        self.sio.on("presence", self.presence.append)
        self.sio.on("media.state", lambda data: self.media_states.append(data.get("state")))
        self.refusals: list[Any] = []  # connect_error data: {"code", "message"}
        self.sio.on("connect_error", self.refusals.append)

    async def connect(self) -> None:
        await self.sio.connect(
            self.base_url,
            auth={"invite": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )

    async def call(self, event: str, payload: Any = None) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(event, payload or {}, timeout=20)
        return ack

    async def join(self, session: str) -> dict[str, Any]:
        ack = await self.call("join", {"session": session})
        assert ack["ok"], ack
        self.participant = ack["data"]["participant"]
        return ack

    async def next_offer(self, within: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.offers.get(), within)

    async def make_answer(self, offer: dict[str, Any]) -> str:
        """An answer from a fresh RTCPeerConnection (closing the previous one)."""
        await self.close_pc()
        self.pc = RTCPeerConnection()
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, offer: dict[str, Any]) -> dict[str, Any]:
        return await self.call("media.answer", {"sdp": await self.make_answer(offer)})

    async def wait_connected(self, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while self.pc is None or self.pc.connectionState != "connected":
            if time.monotonic() > deadline:
                state = None if self.pc is None else self.pc.connectionState
                pytest.fail(f"the peer connection did not connect in {within}s (state {state})")
            await asyncio.sleep(0.02)

    def my_seat_state(self, seat: str) -> dict[str, Any] | None:
        if not self.presence:
            return None
        held = self.presence[-1]["seats"].get(seat)
        return None if held is None else held["state"]

    async def close_pc(self) -> None:
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
        await self.close_pc()


def sdp_without(sdp: str, codec: str) -> str:
    """``sdp`` with every payload type of ``codec`` (and RTX for it) removed from the m-lines."""
    payload_types = set(re.findall(rf"a=rtpmap:(\d+) {codec}/", sdp, re.IGNORECASE))
    for pt in list(payload_types):
        payload_types |= set(re.findall(rf"a=fmtp:(\d+) apt={pt}\b", sdp))
    lines = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts = line.split(" ")
            line = " ".join(parts[:3] + [p for p in parts[3:] if p not in payload_types])
        elif re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+)", line):
            pt = re.match(r"a=\w[\w-]*:(\d+)", line)
            if pt and pt.group(1) in payload_types:
                continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def media(metrics: Mapping[str, float], kind: str) -> float:
    """``courtlink_media{kind="<kind>"}`` from parsed /metrics."""
    return metrics[f'courtlink_media{{kind="{kind}"}}']
