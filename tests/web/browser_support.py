"""Helpers of the browser media tests: fake cameras and microphones per seat, a ``courtlink serve``
subprocess, one Chromium per seat, and probes that read what a join page shows and receives.

Every seat gets its own Chromium (its own fake camera: a Y4M file of one flat colour, and a WAV
tone), so a remote video's average colour tells whose picture it is. The probes run in the page
as function expressions (``page.evaluate``): the page's CSP forbids eval, so Playwright's string
predicates (``wait_for_function("...")``) do not work there; polling is done here, in Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import socket
import struct
import sys
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.conftest import missing

__all__ = [
    "CHROMIUM",
    "COLOURS",
    "SEATS",
    "Chromium",
    "Coturn",
    "Courtlink",
    "SeatPage",
    "SignalTap",
    "camera_opens",
    "chromium_args",
    "colour_distance",
    "free_port",
    "launch",
    "make_fake_media",
    "nearest_seat",
    "peer_stats",
    "poll",
    "probe",
    "sample_twice",
    "start_coturn",
    "start_coturn_tls",
    "start_courtlink",
]

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
SEATS = ("judge", "officer", "debtor", "creditor")
COLOURS: dict[str, tuple[int, int, int]] = {
    "judge": (200, 30, 30),
    "officer": (30, 170, 40),
    "debtor": (40, 60, 210),
    "creditor": (210, 190, 30),
}
TONES = {"judge": 440, "officer": 660, "debtor": 880, "creditor": 1100}
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
PAGE_WAIT = 20_000  # ms: Playwright's default timeout in the page tests
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 3,
    "user_agent": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    ),
}


# Fake media ------------------------------------------------------------------------------


def make_fake_media(directory: Path) -> dict[str, tuple[Path, Path]]:
    """Per seat: a Y4M video of the seat's colour (320x240, 15 fps, 2 s, looped by Chromium) and
    a WAV tone (48 kHz mono, 1 s). Made with PyAV (aiortc's own dependency)."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - aiortc depends on it
        missing("PyAV", str(exc))
    directory.mkdir(parents=True, exist_ok=True)
    made = {}
    for seat, rgb in COLOURS.items():
        video = directory / f"{seat}.y4m"
        out = av.open(str(video), "w", format="yuv4mpegpipe")
        stream: Any = out.add_stream("rawvideo", rate=15)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(30):
            frame = av.VideoFrame(320, 240, "rgb24")
            frame.planes[0].update(bytes(rgb) * (frame.planes[0].buffer_size // 3))
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        out.close()
        audio = directory / f"{seat}.wav"
        with wave.open(str(audio), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(48000)
            tone = TONES[seat]
            w.writeframes(
                b"".join(
                    struct.pack("<h", int(9000 * math.sin(2 * math.pi * tone * i / 48000)))
                    for i in range(48000)
                )
            )
        made[seat] = (video, audio)
    return made


def colour_distance(a: Iterable[float], b: Iterable[float]) -> float:
    return math.dist(tuple(a), tuple(b))


def nearest_seat(rgb: Iterable[float]) -> str:
    rgb = tuple(rgb)
    return min(COLOURS, key=lambda seat: colour_distance(rgb, COLOURS[seat]))


# Processes -------------------------------------------------------------------------------


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def _courtlink_binary() -> str:
    binary = Path(sys.executable).parent / "courtlink"
    if not binary.exists():
        missing("courtlink", f"{binary} not found (pip install -e .)")
    return str(binary)


@dataclass
class Courtlink:
    """``courtlink serve`` in a subprocess, with the demo session made by ``courtlink demo``."""

    url: str
    process: asyncio.subprocess.Process
    log: Path
    session: str
    invites: dict[str, str]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_courtlink(directory: Path, **env: str) -> Courtlink:
    """Run ``courtlink demo --json`` then ``courtlink serve --no-demo`` on a free port, with the
    data in ``directory`` and ``env`` (``COURTLINK__MEDIA__...``) on top of the defaults."""
    binary = _courtlink_binary()
    port = free_port()
    environment = {
        "COURTLINK__LOG__LEVEL": "INFO",  # COURTLINK__LOG__LEVEL=DEBUG in the test's environment
        **os.environ,
        "COURTLINK_DATA_DIR": str(directory / "var"),
        "COURTLINK_HOST": "127.0.0.1",
        "COURTLINK_PORT": str(port),
        **env,
    }
    environment.pop("COURTLINK_CONFIG", None)
    environment.pop("COURTLINK_PUBLIC_URL", None)
    demo = await asyncio.create_subprocess_exec(
        binary,
        "demo",
        "--json",
        env=environment,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(demo.communicate(), 60)
    assert demo.returncode == 0, err.decode()
    made = json.loads(out)
    log = directory / "serve.log"
    handle = log.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            binary,
            "serve",
            "--no-demo",
            env=environment,
            cwd=ROOT,
            stdout=handle,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        handle.close()
    server = Courtlink(f"http://127.0.0.1:{port}", process, log, made["session"], made["invites"])
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None or time.monotonic() > deadline:
                await server.stop()
                raise AssertionError(f"courtlink serve did not start:\n{server.log_text()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return server
            await asyncio.sleep(0.2)


@dataclass
class Coturn:
    """coturn (Debian's ``turnserver``) on 127.0.0.1 (or ``host``), TURN REST credentials
    (use-auth-secret); with ``tls_port``, also TURN over TLS (``turns:``) there."""

    port: int
    secret: str
    realm: str
    process: asyncio.subprocess.Process
    log: Path
    host: str = "127.0.0.1"
    tls_port: int | None = None
    cert: Path | None = None  # the TLS certificate (PEM), self-signed

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    @property
    def turns_url(self) -> str:
        assert self.tls_port is not None, "coturn was started without TLS"
        return f"turns:{self.host}:{self.tls_port}?transport=tcp"

    def spki_hash(self) -> str:
        """base64(SHA-256(SubjectPublicKeyInfo)) of the TLS certificate: what Chromium's
        ``--ignore-certificate-errors-spki-list`` takes."""
        assert self.cert is not None, "coturn was started without TLS"
        return spki_hash(self.cert.read_bytes())

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


COTURN_CONFIG = """\
listening-port={port}
listening-ip=127.0.0.1
relay-ip=127.0.0.1
use-auth-secret
static-auth-secret={secret}
realm={realm}
no-tls
no-dtls
no-tcp
no-cli
no-rfc5780
no-stun-backward-compatibility
allow-loopback-peers
fingerprint
log-file=stdout
simple-log
verbose
pidfile={directory}/turnserver.pid
userdb={directory}/turndb
"""


async def stun_answers(port: int, wait: float = 0.5, host: str = "127.0.0.1") -> bool:
    """Does a STUN server on host:port answer a Binding request?"""
    loop = asyncio.get_running_loop()
    transaction = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, request, (host, port))
        try:
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), wait)
        except (TimeoutError, OSError):
            return False
    return data[:2] == b"\x01\x01" and data[8:20] == transaction


def write_coturn_config(directory: Path, port: int, secret: str, realm: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "turnserver.conf"
    text = COTURN_CONFIG.format(port=port, secret=secret, realm=realm, directory=directory)
    config.write_text(text)
    return config


async def start_coturn(
    directory: Path, secret: str, realm: str = "courtlink.test", *, port: int | None = None
) -> Coturn:
    """coturn with a generated config, in the foreground (it does not daemonize without -o);
    on ``port``, or a free one."""
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    if not os.access(binary, os.X_OK):
        missing("coturn", "the turnserver binary is not installed (apt-get install coturn)")
    port = port or free_port(socket.SOCK_DGRAM)
    config = write_coturn_config(directory, port, secret, realm)
    log = directory / "turnserver.log"
    handle = log.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            binary, "-c", str(config), stdout=handle, stderr=asyncio.subprocess.STDOUT
        )
    finally:
        handle.close()
    turn = Coturn(port, secret, realm, process, log)
    deadline = time.monotonic() + 15
    while not await stun_answers(port):
        if process.returncode is not None or time.monotonic() > deadline:
            await turn.stop()
            raise AssertionError(f"coturn did not start:\n{turn.log_text()}")
        await asyncio.sleep(0.2)
    return turn


COTURN_TLS_CONFIG = """\
listening-ip={host}
relay-ip={host}
listening-port={port}
tls-listening-port={tls_port}
cert={cert}
pkey={key}
no-tlsv1
no-tlsv1_1
use-auth-secret
static-auth-secret={secret}
realm={realm}
no-dtls
no-tcp
no-cli
no-rfc5780
no-stun-backward-compatibility
fingerprint
log-file=stdout
simple-log
verbose
pidfile={directory}/turnserver.pid
userdb={directory}/turndb
"""


def make_tls_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (an IP address, in the subject alternative names)
    and its key, as PEM files: (certificate, key); the one `courtlink serve` makes for a LAN
    trial (courtlink/web/tls.py), so the test makes it no other way."""
    from courtlink.web.tls import self_signed

    return self_signed(directory, host)


def spki_hash(pem: bytes) -> str:
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    spki = (
        x509.load_pem_x509_certificate(pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


async def tls_answers(host: str, port: int, wait: float = 1.0) -> bool:
    """Does a TLS server on host:port finish a handshake (any certificate)?"""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), wait)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


async def start_coturn_tls(
    directory: Path,
    secret: str,
    host: str,
    realm: str = "courtlink.test",
    *,
    tls_port: int = 443,
    port: int = 3478,
) -> Coturn:
    """coturn on ``host`` (e.g. a namespace link's host end): TURN over UDP on ``port`` and
    TURN over TLS on ``tls_port`` (443, where firewalls let HTTPS through) with a self-signed
    certificate for ``host`` (``Coturn.cert``); relays from ``host``. No plain TCP listener, so
    TCP reaches it only through TLS. Binding 443 needs root (or cap_net_bind_service)."""
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    if not os.access(binary, os.X_OK):
        missing("coturn", "the turnserver binary is not installed (apt-get install coturn)")
    if tls_port < 1024 and os.geteuid() != 0:
        missing("coturn on port 443", "binding a port below 1024 needs root")
    cert, key = make_tls_certificate(directory, host)
    config = directory / "turnserver.conf"
    config.write_text(
        COTURN_TLS_CONFIG.format(
            host=host,
            port=port,
            tls_port=tls_port,
            cert=cert,
            key=key,
            secret=secret,
            realm=realm,
            directory=directory,
        )
    )
    log = directory / "turnserver.log"
    handle = log.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            binary, "-c", str(config), stdout=handle, stderr=asyncio.subprocess.STDOUT
        )
    finally:
        handle.close()
    turn = Coturn(port, secret, realm, process, log, host=host, tls_port=tls_port, cert=cert)
    deadline = time.monotonic() + 15
    while not (await stun_answers(port, host=host) and await tls_answers(host, tls_port)):
        if process.returncode is not None or time.monotonic() > deadline:
            await turn.stop()
            raise AssertionError(f"coturn did not start:\n{turn.log_text()}")
        await asyncio.sleep(0.2)
    return turn


# Chromium --------------------------------------------------------------------------------


def chromium_args(
    media: tuple[Path, Path] | None = None, *, fake_device: bool = True, fake_ui: str | None = ""
) -> list[str]:
    """Chromium's switches. ``media``: this seat's (video, audio) files. ``fake_ui``: ``""``
    accepts every camera prompt, ``"deny"`` refuses it, None leaves the prompt to the browser."""
    args = list(BASE_ARGS)
    if fake_device:
        args.append("--use-fake-device-for-media-stream")
    if fake_ui is not None:
        args.append("--use-fake-ui-for-media-stream" + (f"={fake_ui}" if fake_ui else ""))
    if media is not None:
        args.append(f"--use-file-for-fake-video-capture={media[0]}")
        args.append(f"--use-file-for-fake-audio-capture={media[1]}")
    return args


@contextlib.asynccontextmanager
async def chromium_session(*, describe: bool = True) -> AsyncIterator[Chromium]:
    """Playwright and the Chromium instances a test launches through it, all closed at the end;
    ``describe`` prints every page first (shown when the test fails). The tests' ``chromium``
    fixtures are this, each after what must outlive the browsers (a server, a namespace)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        missing("Chromium", f"the playwright package is not installed ({exc})")
    async with async_playwright() as playwright:
        browsers = Chromium(playwright)
        try:
            yield browsers
        finally:
            if describe:
                print(await browsers.describe())
            await browsers.close()


async def launch(playwright: Any, args: list[str]) -> Any:
    if not os.access(CHROMIUM, os.X_OK):
        missing("Chromium", f"{CHROMIUM} not found (tools/setup test installs it)")
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=args)


# Watching the page from outside its closures: an init script (added by the DevTools protocol, so
# the page's CSP does not apply) keeps every RTCPeerConnection the page makes, counts its
# getUserMedia calls, and can make the page's connection look deaf.
WATCH_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native || window.__courtlinkPeers) return;
  const peers = [];
  window.__courtlinkPeers = peers;
  const nativeGetStats = Native.prototype.getStats;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); peers.push(this); }
    // With window.__courtlinkDeafTransport set to a number, the transport's packetsReceived
    // stays at it: the page believes nothing arrives any more.
    async getStats(...args) {
      const report = await nativeGetStats.apply(this, args);
      const frozen = window.__courtlinkDeafTransport;
      if (typeof frozen !== 'number') return report;
      const copy = new Map();
      report.forEach((stat, id) => {
        copy.set(id, stat.type === 'transport' ? { ...stat, packetsReceived: frozen } : stat);
      });
      return copy;
    }
  };
  window.__courtlinkGetUserMedia = 0;
  const devices = navigator.mediaDevices;
  if (devices && devices.getUserMedia) {
    const open = devices.getUserMedia.bind(devices);
    devices.getUserMedia = (constraints) => {
      window.__courtlinkGetUserMedia++;
      return open(constraints);
    };
  }
})();
"""


@dataclass
class SignalTap:
    """The Socket.IO events a page sends and receives (from its websocket frames), each with
    the ``time.monotonic()`` it was seen at."""

    sent: list[tuple[str, Any, float]] = field(default_factory=list)
    received: list[tuple[str, Any, float]] = field(default_factory=list)

    _EVENT = re.compile(r"^42\d*(\[.*)$", re.DOTALL)

    def attach(self, page: Any) -> None:
        def on_websocket(ws: Any) -> None:
            ws.on("framesent", lambda payload: self._add(self.sent, payload))
            ws.on("framereceived", lambda payload: self._add(self.received, payload))

        page.on("websocket", on_websocket)

    def _add(self, into: list[tuple[str, Any, float]], payload: Any) -> None:
        if isinstance(payload, bytes):
            return
        match = self._EVENT.match(payload)
        if not match:
            return
        with contextlib.suppress(ValueError):
            message = json.loads(match.group(1))
            if message and isinstance(message[0], str):
                data = message[1] if len(message) > 1 else None
                into.append((message[0], data, time.monotonic()))

    def events(self, event: str, *, sent: bool) -> list[tuple[Any, float]]:
        """(data, time) of every ``event`` sent (or received), oldest first."""
        return [
            (data, at) for name, data, at in (self.sent if sent else self.received) if name == event
        ]

    def last(self, event: str, *, sent: bool) -> Any:
        seen = self.events(event, sent=sent)
        return seen[-1][0] if seen else None


@dataclass
class SeatPage:
    seat: str
    browser: Any
    page: Any
    tap: SignalTap
    errors: list[str]
    console: list[str]


class Chromium:
    """One Chromium per seat; remembers every page it opened, to describe them when a test
    fails (the page's status line, tiles and console)."""

    def __init__(self, playwright: Any) -> None:
        self.playwright = playwright
        self.browsers: list[Any] = []
        self.seats: list[SeatPage] = []

    async def launch(self, args: list[str]) -> Any:
        browser = await launch(self.playwright, args)
        self.browsers.append(browser)
        return browser

    async def open(self, browser: Any, url: str, seat: str, *, autojoin: bool = True) -> SeatPage:
        """A page on the invite link (``?autojoin=1``), through the consent form when asked."""
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        await context.add_init_script(WATCH_PEERS)
        page = await context.new_page()
        member = SeatPage(seat, browser, page, SignalTap(), [], [])
        self.seats.append(member)
        page.on("pageerror", lambda exc: member.errors.append(str(exc)))
        page.on("console", lambda message: member.console.append(f"{message.type}: {message.text}"))
        member.tap.attach(page)
        await page.goto(url + ("?autojoin=1" if autojoin else ""))
        await page.locator("#consent, #room").first.wait_for()
        if await page.locator("#consent").count():
            await page.check("input[name=agree]")
            await page.click("#consent button[type=submit]")
            await page.locator("#room").wait_for()
        if autojoin:
            await page.locator("#leave-button").wait_for(state="visible")
        return member

    async def describe(self) -> str:
        lines = []
        before: dict[int, Any] = {}
        for member in self.seats:
            with contextlib.suppress(Exception):
                before[id(member)] = await peer_stats(member.page)
        await asyncio.sleep(1.5)
        for member in self.seats:
            lines.append(f"--- {member.seat} page: {member.page.url}")
            try:
                status = await member.page.locator("#status").text_content(timeout=2000)
                lines.append(f"  status: {status!r}; probe: {await probe(member.page)}")
                now = await peer_stats(member.page)
                lines.append(f"  stats: {now}")
                then = before.get(id(member))
                if now and then and now["transport"] and then["transport"]:
                    got = now["transport"]["packetsReceived"] - then["transport"]["packetsReceived"]
                    per_mid = {
                        mid: s["packets"] - then["inbound"].get(mid, {}).get("packets", 0)
                        for mid, s in now["inbound"].items()
                    }
                    lines.append(f"  in the last 1.5 s: {got} packets in, per mid {per_mid}")
            except Exception as exc:
                lines.append(f"  (no probe: {type(exc).__name__}: {exc})")
            lines.extend(f"  page error: {e}" for e in member.errors)
            lines.extend(f"  console {c}" for c in member.console[-15:])
            events = [name for name, _, _ in member.tap.received[-15:]]
            lines.append(f"  last events received: {events}")
        return "\n".join(lines)

    async def close(self) -> None:
        for browser in self.browsers:
            with contextlib.suppress(Exception):
                await browser.close()


# Probes ----------------------------------------------------------------------------------

PROBE = """
async () => {
  const room = document.getElementById('room');
  const peers = window.__courtlinkPeers || [];
  const pc = peers[peers.length - 1];
  const receivers = pc ? pc.getReceivers() : [];
  const tiles = {};
  for (const tile of document.querySelectorAll('.seat-tile')) {
    const v = tile.querySelector('video.remote');
    const row = {
      status: tile.dataset.status || '',
      present: tile.classList.contains('present'),
      decoded: null,
      byPage: tile.dataset.framesDecoded === undefined ? null : Number(tile.dataset.framesDecoded),
      video: !!v, frames: null, size: null, rgb: null,
    };
    if (v) {
      // Frames decoded now, from the stats of the receiver whose track the tile shows (the
      // page's own data-frames-decoded is refreshed once a second, later under load).
      const track = v.srcObject && v.srcObject.getVideoTracks()[0];
      const receiver = track && receivers.find((r) => r.track === track);
      if (receiver) {
        const report = await receiver.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp') row.decoded = s.framesDecoded || 0;
        });
      }
      row.frames = v.getVideoPlaybackQuality().totalVideoFrames;
      row.size = [v.videoWidth, v.videoHeight];
      if (v.videoWidth) {
        const c = document.createElement('canvas');
        c.width = 16; c.height = 12;
        const ctx = c.getContext('2d', { willReadFrequently: true });
        ctx.drawImage(v, 0, 0, c.width, c.height);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let r = 0, g = 0, b = 0;
        for (let i = 0; i < d.length; i += 4) { r += d[i]; g += d[i + 1]; b += d[i + 2]; }
        const n = d.length / 4;
        row.rgb = [Math.round(r / n), Math.round(g / n), Math.round(b / n)];
      }
    }
    tiles[tile.dataset.seat] = row;
  }
  return { peer: room.dataset.peer || null, devices: room.dataset.devices || null, tiles };
}
"""

STATS = """
async () => {
  const peers = window.__courtlinkPeers || [];
  const pc = peers[peers.length - 1];
  if (!pc) return null;
  const report = await pc.getStats();
  const byId = {};
  report.forEach((s) => { byId[s.id] = s; });
  const inbound = {};
  let pair = null;
  let transport = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      inbound[s.mid] = {
        kind: s.kind, packets: s.packetsReceived || 0, bytes: s.bytesReceived || 0,
        frames: s.framesDecoded || 0, energy: s.totalAudioEnergy || 0,
      };
    }
    if (s.type === 'transport') {
      transport = { packetsReceived: s.packetsReceived, packetsSent: s.packetsSent };
      if (s.selectedCandidatePairId) pair = byId[s.selectedCandidatePairId];
    }
  });
  const describe = (c) => c && {
    type: c.candidateType, address: c.address, port: c.port, protocol: c.protocol,
    relayProtocol: c.relayProtocol || null, url: c.url || null,
  };
  return {
    peers: peers.length,
    state: pc.connectionState,
    transport,
    inbound,
    pair: pair && {
      local: describe(byId[pair.localCandidateId]),
      remote: describe(byId[pair.remoteCandidateId]),
      bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
    },
  };
}
"""


async def probe(page: Any) -> dict[str, Any]:
    """What the join page shows: the peer state, and per tile status, frame counts and colour."""
    result: dict[str, Any] = await page.evaluate(PROBE)
    return result


async def camera_opens(page: Any) -> int:
    """How many times the page called getUserMedia."""
    return int(await page.evaluate("() => window.__courtlinkGetUserMedia"))


async def peer_stats(page: Any) -> dict[str, Any] | None:
    """The page's newest RTCPeerConnection's stats (inbound by mid, the selected pair)."""
    result: dict[str, Any] | None = await page.evaluate(STATS)
    return result


async def poll(
    check: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    *,
    within: float,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Call ``check`` until ``ok`` holds for its result; fail with the last result."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}: {value!r}")
        await asyncio.sleep(interval)


async def sample_twice(
    pages: dict[str, Any], gap: float = 2.0
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], float]:
    """Every page probed, then again ``gap`` seconds later; and the time between."""
    first_at = time.monotonic()
    first = dict(zip(pages, await asyncio.gather(*(probe(p) for p in pages.values())), strict=True))
    await asyncio.sleep(gap)
    second = dict(
        zip(pages, await asyncio.gather(*(probe(p) for p in pages.values())), strict=True)
    )
    return first, second, time.monotonic() - first_at
