"""The same media load through the Janus gateway's VideoRoom, for comparison with Courtlink.

Janus (the Debian package ``janus`` 1.1.x) is started with a configuration generated here, in a
temporary directory, pinned to core 0 like the Courtlink server. Each load participant joins as a
Janus client would: one session over the HTTP API, a VideoRoom *publisher* handle with its own
sendonly PeerConnection, and once its three companions publish, one multistream *subscriber*
handle receiving their audio and video. The load generator (bench/loadgen.py, on core 1) then
takes both connections over exactly as it does for Courtlink: pre-encrypted SRTP out of the
publisher connection, RTP counted at the socket of the subscriber connection.

What differs from the Courtlink run, and why:

* Janus's media sockets are not on loopback. Janus 1.1.2 skips every ``IFF_LOOPBACK`` interface
  when it gathers ICE candidates (src/ice.c, ``janus_ice_setup_local``); with
  ``ice_enforce_list = "lo"`` no address matches, and libnice then falls back to gathering on
  *every* non-loopback interface (IPv6 and link-local included). So the configuration enforces
  the one non-loopback IPv4 address aiortc's clients gather on (aioice's own host address list).
  The HTTP API, the only control surface, binds 127.0.0.1; the admin API is off; the media
  sockets (one per PeerConnection, bound to that one address, in a generated port range) exist
  only while a bench PeerConnection does, answer only peers with its ICE credentials, and then
  carry only DTLS-SRTP. Truly loopback-only media would need a patched Janus (or an
  LD_PRELOAD hiding ``IFF_LOOPBACK``), or Janus and the generator in a network namespace of
  their own with a dummy interface; the bench does neither.
* Janus uses two PeerConnections per participant (publisher and subscriber) where Courtlink uses
  one; that is how VideoRoom works, and its cost is part of what is measured.
* There is no server-added latency figure: see ``run_janus_level``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aioice.ice import get_host_addresses
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from courtlink.bench.loadgen import MediaEndpoint, answer_quietly, connected, new_pc
from courtlink.bench.procs import pin, sample
from courtlink.bench.procs import stop as stop_process
from courtlink.bench.sfu import (
    CONSUMERS_PER_ROOM,
    SEATS,
    BenchError,
    BenchResult,
    free_port,
    generator_load,
    run_generator,
)
from courtlink.media import wire

__all__ = [
    "JanusError",
    "JanusHandle",
    "JanusParticipant",
    "JanusServer",
    "JanusSession",
    "create_rooms",
    "run_janus_level",
]

Json = dict[str, Any]
Config = dict[str, dict[str, str | int | bool]]  # jcfg sections

JANUS_BINARY = "/usr/bin/janus"
PLUGINS_FOLDER = Path("/usr/lib/x86_64-linux-gnu/janus/plugins")
TRANSPORTS_FOLDER = Path("/usr/lib/x86_64-linux-gnu/janus/transports")
VIDEOROOM = "janus.plugin.videoroom"
VIDEOROOM_LIBRARY = "libjanus_videoroom.so"
HTTP_LIBRARY = "libjanus_http.so"
ROOM_PUBLISHERS = len(SEATS)
# Janus caps each publisher with REMB at the room's bitrate: twice the replayed ~500 kbit/s VP8,
# so the room is configured for the media it carries (the generator ignores REMB anyway).
ROOM_BITRATE = 1_000_000
# Janus hands out one UDP port per PeerConnection (BUNDLE and rtcp-mux): two per participant.
RTP_PORTS = 1000
# The joins wait for the room's other publishers while holding a generator join slot; slots are
# granted in plan order (room by room), so any concurrency of at least a room's size is safe.
JOIN_CONCURRENCY = 2 * ROOM_PUBLISHERS


class JanusError(RuntimeError):
    """Janus refused a request (a Janus API error or a VideoRoom error)."""


# ---------------------------------------------------------------------------------------------
# The server


def _jcfg(sections: Config) -> str:
    """Render libconfig (.jcfg) sections from Python values."""

    def value(v: str | int | bool) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = []
    for name, items in sections.items():
        out.append(f"{name}: {{")
        out.extend(f"\t{key} = {value(v)}" for key, v in items.items())
        out.append("}")
    return "\n".join(out) + "\n"


def _all_but(folder: Path, keep: str) -> str:
    """Every Janus module in ``folder`` except ``keep``, for a ``disable`` list: Janus loads all
    it finds unless told otherwise, and each loaded plugin costs threads and memory."""
    names = sorted({p.name.split(".so")[0] + ".so" for p in folder.glob("lib*.so*")})
    return ",".join(n for n in names if n != keep)


def ice_address() -> str:
    """The address Janus gathers its ICE candidates on: the first non-loopback IPv4 address,
    as aioice (aiortc's ICE) lists them, so the generator's candidates share its interface.

    Not 127.0.0.1: Janus 1.1.2 never gathers on loopback (see the module docstring)."""
    addresses: list[str] = get_host_addresses(use_ipv4=True, use_ipv6=False)
    usable = [a for a in addresses if not a.startswith(("127.", "169.254."))]
    if not usable:
        raise BenchError(
            "Janus cannot run here: it never gathers ICE candidates on loopback, and this "
            "machine has no other IPv4 address"
        )
    return usable[0]


def free_udp_range(address: str, size: int) -> tuple[int, int]:
    """A run of ``size`` UDP ports free on ``address``, below the kernel's ephemeral range (from
    which aiortc's own sockets are taken, so the two do not collide while the bench runs)."""
    ephemeral = 32768
    with contextlib.suppress(OSError, ValueError, IndexError):
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    low = 10000 if ephemeral - size > 10000 else 1024
    for _ in range(50):
        start = random.randrange(low, max(low + 1, ephemeral - size))
        sockets: list[socket.socket] = []
        try:
            for port in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind((address, port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return start, start + size - 1
    raise BenchError(f"no free range of {size} UDP ports on {address}")


class JanusServer:
    """``janus`` with a minimal generated configuration in ``workdir``, pinned to ``core``.

    Only the VideoRoom plugin and the HTTP transport load; the HTTP API listens on 127.0.0.1 at a
    free port; media uses one interface (``ice_address``) and a free port range; logs go to
    ``workdir/janus.log`` at level 3 (warnings), so logging costs nothing under load. Everything
    else is Janus's default (one event loop thread per handle, NACK queues, REMB), as a deployed
    Janus would run.
    """

    def __init__(self, workdir: Path, *, core: int | None, full_trickle: bool = False) -> None:
        self.workdir = workdir
        self.core = core
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/janus"
        self.address = ice_address()
        self.rtp_ports = free_udp_range(self.address, RTP_PORTS)
        self.full_trickle = full_trickle
        self.log_path = workdir / "janus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        """The three configuration files; returns the path of janus.jcfg."""
        empty = self.workdir / "none"  # no event handlers, no external loggers
        empty.mkdir(exist_ok=True)
        core: Config = {
            "general": {
                "configs_folder": str(self.workdir),
                "plugins_folder": str(PLUGINS_FOLDER),
                "transports_folder": str(TRANSPORTS_FOLDER),
                "events_folder": str(empty),
                "loggers_folder": str(empty),
                "log_to_stdout": False,
                "log_to_file": str(self.log_path),
                "debug_level": 3,
                "debug_timestamps": True,
                "debug_colors": False,
                "server_name": "courtlink-bench",
                "session_timeout": 60,
            },
            "media": {
                "ipv6": False,
                "rtp_port_range": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            },
            "nat": {
                "nice_debug": False,
                "full_trickle": self.full_trickle,
                "ice_enforce_list": self.address,
            },
            "plugins": {"disable": _all_but(PLUGINS_FOLDER, VIDEOROOM_LIBRARY)},
            "transports": {"disable": _all_but(TRANSPORTS_FOLDER, HTTP_LIBRARY)},
            "events": {"broadcast": False},
        }
        http: Config = {
            "general": {
                "json": "compact",
                "base_path": "/janus",
                "http": True,
                "port": self.port,
                "ip": "127.0.0.1",
                "https": False,
            },
            "admin": {"admin_http": False, "admin_https": False},
        }
        # Rooms are created over the API, one per bench room.
        videoroom: Config = {"general": {}}
        path = self.workdir / "janus.jcfg"
        path.write_text(_jcfg(core))
        (self.workdir / "janus.transport.http.jcfg").write_text(_jcfg(http))
        (self.workdir / "janus.plugin.videoroom.jcfg").write_text(_jcfg(videoroom))
        return path

    async def start(self) -> None:
        config = self.write_config()
        command = pin([JANUS_BINARY, "-C", str(config), "-F", str(self.workdir)], self.core)
        out = (self.workdir / "janus.stdout").open("wb")
        self.proc = subprocess.Popen(  # noqa: S603, ASYNC220 - Janus, started once
            command, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError, ValueError):
                    async with http.get(self.base + "/info") as response:
                        info = await response.json(content_type=None)
                        if response.status == 200 and info.get("janus") == "server_info":
                            self._check(info)
                            return
                if self.proc.poll() is not None:
                    raise BenchError("Janus did not start: " + self.log_tail())
                await asyncio.sleep(0.1)
        raise BenchError("Janus's HTTP API did not answer: " + self.log_tail())

    def _check(self, info: Json) -> None:
        """Janus answered: make sure it is the configuration we asked for (one plugin, one
        transport) and pinned, since every Janus thread inherits the affinity taken here."""
        plugins, transports = set(info.get("plugins", {})), set(info.get("transports", {}))
        if plugins != {VIDEOROOM} or transports != {"janus.transport.http"}:
            raise BenchError(f"Janus loaded {sorted(plugins | transports)}")
        wanted = pin(["x"], self.core)
        if len(wanted) > 1 and os.sched_getaffinity(self.pid) != {self.core}:
            raise BenchError(f"Janus is not pinned to core {self.core}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        texts = []
        for path in (self.workdir / "janus.stdout", self.log_path):
            with contextlib.suppress(OSError):
                texts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(texts) or "(no log)"

    def stop(self) -> None:
        stop_process(self.proc)


# ---------------------------------------------------------------------------------------------
# The HTTP API client


def _transaction() -> str:
    return secrets.token_hex(8)


def _raise_for(response: Json) -> None:
    if response.get("janus") == "error":
        error = response.get("error", {})
        raise JanusError(f"Janus error {error.get('code')}: {error.get('reason')}")


class JanusSession:
    """A Janus API session over HTTP: requests are POSTs; asynchronous events (plugin answers,
    trickled candidates, webrtcup, hangup) come from one long poll (``GET <session>?maxev=``),
    running for the session's life. Janus ends a session after ``session_timeout`` (60 s) without
    a request; the poll and a keepalive every 25 s keep it."""

    KEEPALIVE_SECONDS = 25.0

    def __init__(self, http: aiohttp.ClientSession, base: str, session_id: int) -> None:
        self.http = http
        self.base = base
        self.id = session_id
        self.url = f"{base}/{session_id}"
        self.handles: dict[int, JanusHandle] = {}
        self._pending: dict[str, asyncio.Future[Json]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @classmethod
    async def create(cls, http: aiohttp.ClientSession, base: str) -> JanusSession:
        response = await post(http, base, {"janus": "create"})
        session = cls(http, base, int(response["data"]["id"]))
        session._tasks = [
            asyncio.create_task(session._poll()),
            asyncio.create_task(session._keepalive()),
        ]
        return session

    async def post(self, url: str, body: Json) -> Json:
        return await post(self.http, url, body)

    async def attach(self, plugin: str) -> JanusHandle:
        response = await self.post(self.url, {"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(response["data"]["id"]))
        self.handles[handle.id] = handle
        return handle

    def expect(self, transaction: str) -> asyncio.Future[Json]:
        """A future for the asynchronous event answering ``transaction``; registered *before*
        the request goes out, as the long poll may deliver the event before the POST returns."""
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        return future

    def forget(self, transaction: str) -> None:
        self._pending.pop(transaction, None)

    async def keepalive(self) -> None:
        await self.post(self.url, {"janus": "keepalive"})

    async def poll(self, maxev: int = 10) -> list[Json]:
        """One long poll: up to ``maxev`` events, or a keepalive after Janus's 30 s."""
        url = f"{self.url}?maxev={maxev}&rid={int(time.time() * 1000)}"
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=75)) as response:
            payload = await response.json(content_type=None)
        return payload if isinstance(payload, list) else [payload]

    async def _poll(self) -> None:
        while not self._closed:
            try:
                events = await self.poll()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                if self._closed:
                    return
                await asyncio.sleep(0.5)
                continue
            for event in events:
                if event.get("janus") == "error" and event.get("transaction") is None:
                    self._fail(JanusError(f"the session ended: {event.get('error')}"))
                    return
                self._dispatch(event)

    async def _keepalive(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.KEEPALIVE_SECONDS)
            with contextlib.suppress(aiohttp.ClientError, JanusError, TimeoutError):
                await self.keepalive()

    def _dispatch(self, event: Json) -> None:
        kind = event.get("janus")
        transaction = event.get("transaction")
        if kind != "ack" and isinstance(transaction, str) and transaction in self._pending:
            future = self._pending.pop(transaction)
            if not future.done():
                future.set_result(event)
            return
        handle = self.handles.get(int(event.get("sender", 0)))
        if handle is not None:
            handle.on_event(event)

    def _fail(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        for handle in self.handles.values():
            handle.hung_up = str(error)

    async def destroy(self) -> None:
        """End the session (Janus detaches its handles and closes their PeerConnections)."""
        self._closed = True
        with contextlib.suppress(aiohttp.ClientError, JanusError, TimeoutError):
            await self.post(self.url, {"janus": "destroy"})
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def post(http: aiohttp.ClientSession, url: str, body: Json) -> Json:
    """One Janus API request; raises JanusError on an error answer."""
    body = {**body, "transaction": body.get("transaction") or _transaction()}
    async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=30)) as response:
        data: Json = await response.json(content_type=None)
    _raise_for(data)
    return data


class JanusHandle:
    """A plugin handle: plugin messages (with or without JSEP) and the PeerConnection behind it,
    to which candidates Janus trickles are added."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self.url = f"{session.url}/{handle_id}"
        self.pc: RTCPeerConnection | None = None
        self.hung_up: str | None = None
        self.webrtcup = asyncio.Event()
        self._candidates: list[Json | None] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def message(
        self, body: Json, jsep: Json | None = None, *, answer_within: float = 30
    ) -> tuple[Json, Json | None]:
        """Send a plugin request; returns the plugin's data and its JSEP, if any. Synchronous
        requests (create, listparticipants) answer in the POST; the others are acknowledged,
        and answered by an event with the same transaction through the long poll."""
        transaction = _transaction()
        future = self.session.expect(transaction)
        request: Json = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            request["jsep"] = jsep
        try:
            response = await self.session.post(self.url, request)
            if response.get("janus") == "ack":
                response = await asyncio.wait_for(future, answer_within)
                _raise_for(response)
        finally:
            self.session.forget(transaction)
        data: Json = response.get("plugindata", {}).get("data", {})
        if "error" in data or "error_code" in data:
            raise JanusError(f"{body.get('request')}: {data.get('error')}")
        return data, response.get("jsep")

    async def trickle_completed(self) -> None:
        """aiortc gathers before it describes itself, so its SDP holds all its candidates:
        all Janus needs to hear over trickle is that there are no more."""
        await self.session.post(self.url, {"janus": "trickle", "candidate": {"completed": True}})

    def bind(self, pc: RTCPeerConnection) -> None:
        """The handle's PeerConnection now has Janus's description: add the candidates Janus
        trickled so far, and the later ones as they come."""
        self.pc = pc
        pending, self._candidates = self._candidates, []
        for candidate in pending:
            self._add(candidate)

    def on_event(self, event: Json) -> None:
        kind = event.get("janus")
        if kind == "trickle":
            candidate: Json = event.get("candidate") or {}
            found = None if candidate.get("completed") else candidate
            if self.pc is None or self.pc.remoteDescription is None:
                self._candidates.append(found)
            else:
                self._add(found)
        elif kind == "webrtcup":
            self.webrtcup.set()
        elif kind in ("hangup", "detached"):
            self.hung_up = str(event.get("reason", kind))

    def _add(self, candidate: Json | None) -> None:
        task = asyncio.create_task(self._add_candidate(candidate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _add_candidate(self, candidate: Json | None) -> None:
        assert self.pc is not None
        if candidate is None:  # end of candidates
            with contextlib.suppress(Exception):
                await self.pc.addIceCandidate(None)
            return
        line = str(candidate.get("candidate", ""))
        if not line:
            return
        parsed = candidate_from_sdp(line.removeprefix("a=").removeprefix("candidate:"))
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)


async def create_rooms(base: str, rooms: int) -> list[int]:
    """One VideoRoom per bench room (four publishers, VP8 and Opus); returns their ids. Rooms
    created over the API outlive the session that created them."""
    ids = []
    async with aiohttp.ClientSession() as http:
        session = await JanusSession.create(http, base)
        try:
            handle = await session.attach(VIDEOROOM)
            for n in range(rooms):
                room = 1000 + n
                await handle.message(
                    {
                        "request": "create",
                        "room": room,
                        "description": f"bench room {n + 1}",
                        "publishers": ROOM_PUBLISHERS,
                        "videocodec": "vp8",
                        "audiocodec": "opus",
                        "bitrate": ROOM_BITRATE,
                        "is_private": True,
                    }
                )
                ids.append(room)
        finally:
            await session.destroy()
    return ids


# ---------------------------------------------------------------------------------------------
# The load participant (runs inside the load generator)


class JanusParticipant:
    """A VideoRoom participant for the load generator (the loadgen ``Participant`` protocol).

    It publishes audio and video on one PeerConnection and, once all publishers of its room are
    up, receives the others' on a second, through one multistream subscriber handle. aiortc
    negotiates both (ICE, DTLS, payload types, SSRCs) but never runs a codec: the senders carry
    ``wire.SilentTrack``, every receiver is ``wire.quiet_receiver``; the generator then sends
    pre-encrypted RTP on the first and counts RTP at the socket of the second.
    """

    JOIN_TIMEOUT = 90.0

    def __init__(self, base: str, room: int, seat: str, janus_room: int, room_size: int) -> None:
        self.base = base
        self.room = room
        self.seat = seat
        self.janus_room = janus_room
        self.room_size = room_size
        self.feed: int | None = None
        self.http: aiohttp.ClientSession | None = None
        self.session: JanusSession | None = None
        self.pcs: list[RTCPeerConnection] = []
        self._senders: list[MediaEndpoint] = []
        self._receivers: list[MediaEndpoint] = []

    @classmethod
    def from_plan(cls, plan: Json, p: Json) -> JanusParticipant:
        """``plan["base"]`` is Janus's API URL, ``plan["janus_rooms"]`` the VideoRoom id of each
        bench room; ``p`` has the bench room and the seat."""
        room = int(p["room"])
        size = sum(1 for other in plan["participants"] if int(other["room"]) == room)
        return cls(str(plan["base"]), room, str(p["seat"]), int(plan["janus_rooms"][room]), size)

    @property
    def senders(self) -> list[MediaEndpoint]:
        return self._senders

    @property
    def receivers(self) -> list[MediaEndpoint]:
        return self._receivers

    async def join(self, http: aiohttp.ClientSession) -> None:
        # Its own HTTP client: the long poll holds a connection for up to 30 s, and many of them
        # would exhaust the shared client's connection pool (100).
        del http
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.session = await JanusSession.create(self.http, self.base)
        publisher, publisher_pc, own = await self._publish(self.session)
        feeds = await self._wait_for_room(publisher)
        subscriber_pc = await self._subscribe(self.session, feeds)
        await asyncio.gather(connected(publisher_pc), connected(subscriber_pc))
        sender = MediaEndpoint(publisher_pc)
        sender.sending(own)
        self._senders = [sender]
        self._receivers = [MediaEndpoint(subscriber_pc)]

    async def _publish(
        self, session: JanusSession
    ) -> tuple[JanusHandle, RTCPeerConnection, set[str]]:
        """Join as a publisher with a sendonly audio + video offer from aiortc."""
        handle = await session.attach(VIDEOROOM)
        pc = new_pc()
        self.pcs.append(pc)
        for kind in ("audio", "video"):
            transceiver = pc.addTransceiver(wire.SilentTrack(kind), direction="sendonly")
            transceiver.setCodecPreferences(wire.codec_preferences(kind, "vp8"))
            wire.quiet_receiver(transceiver.receiver)
        await pc.setLocalDescription(await pc.createOffer())
        data, jsep = await handle.message(
            {
                "request": "joinandconfigure",
                "ptype": "publisher",
                "room": self.janus_room,
                "display": self.seat,
            },
            {"type": "offer", "sdp": pc.localDescription.sdp},
        )
        if jsep is None or jsep.get("type") != "answer":
            raise JanusError("the publisher's offer was not answered")
        self.feed = int(data["id"])
        await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "answer"))
        handle.bind(pc)
        await handle.trickle_completed()
        own = {str(t.mid) for t in pc.getTransceivers() if t.mid is not None}
        return handle, pc, own

    async def _wait_for_room(self, handle: JanusHandle) -> list[int]:
        """The feed ids of the room's other publishers, once all of them publish (VideoRoom's
        ``listparticipants`` says ``publisher: true`` once a publisher's PeerConnection is up):
        every subscriber then gets all three feeds in one negotiation."""
        deadline = time.monotonic() + self.JOIN_TIMEOUT
        while True:
            data, _ = await handle.message({"request": "listparticipants", "room": self.janus_room})
            feeds = [
                int(p["id"])
                for p in data.get("participants", [])
                if p.get("publisher") and int(p["id"]) != self.feed
            ]
            if len(feeds) >= self.room_size - 1:
                return sorted(feeds)
            if handle.hung_up is not None:
                raise JanusError(f"the publisher was hung up: {handle.hung_up}")
            if time.monotonic() > deadline:
                raise JanusError(f"room {self.janus_room}: only {len(feeds) + 1} publishers")
            await asyncio.sleep(0.25)

    async def _subscribe(self, session: JanusSession, feeds: Iterable[int]) -> RTCPeerConnection:
        """One multistream subscriber handle for all the other feeds (audio and video each),
        answered receive-only."""
        handle = await session.attach(VIDEOROOM)
        _, jsep = await handle.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": self.janus_room,
                "streams": [{"feed": feed} for feed in feeds],
            }
        )
        if jsep is None or jsep.get("type") != "offer":
            raise JanusError("the subscription came without an offer")
        pc = new_pc()
        self.pcs.append(pc)
        answer = await answer_quietly(pc, jsep["sdp"], send_mids=set())
        handle.bind(pc)
        await handle.message({"request": "start"}, {"type": "answer", "sdp": answer})
        await handle.trickle_completed()
        return pc

    async def close(self) -> None:
        if self.session is not None:
            await self.session.destroy()
        for pc in self.pcs:
            with contextlib.suppress(Exception):
                await pc.close()
        if self.http is not None:
            await self.http.close()


# ---------------------------------------------------------------------------------------------
# The bench


async def run_janus_level(
    rooms: int, seconds: float, *, warmup: float = 4.0, log: Any = None
) -> BenchResult:
    """One load level through Janus's VideoRoom, measured like ``courtlink.bench.sfu.run_level``:
    Janus on core 0, the generator on core 1, Janus's CPU time and RSS from /proc at the window's
    start and end, packets from the generator.

    ``forwarded_pps`` is what the generator received over the window (Janus has no counter of
    its own at hand: its Admin API is off, as it would be in a deployment). The added latency is
    None: Courtlink measures it inside its forwarder (arrival to ``sendto``, a histogram on
    /metrics); Janus keeps no such figure, its event handlers' statistics have none, and the
    generator cannot time it from outside without parsing every packet it counts and stamping
    every packet it sends, which would make it the bottleneck it must never be.
    """
    cache = Path(tempfile.gettempdir()) / "courtlink-bench-cache"
    with tempfile.TemporaryDirectory(prefix="courtlink-janus-") as tmp:
        server = JanusServer(Path(tmp), core=0)
        await server.start()
        try:
            room_ids = await create_rooms(server.base, rooms)
            await asyncio.sleep(1)
            idle = sample(server.pid)
            marks: dict[str, Any] = {}

            async def on_event(event: Json) -> None:
                kind = event.get("event")
                if log is not None and kind in ("joined", "armed"):
                    log(f"  {kind}: {event}")
                if kind in ("window_start", "window_end"):
                    marks[kind] = (time.monotonic(), sample(server.pid))

            plan = {
                "peer": "janus",
                "base": server.base,
                "janus_rooms": room_ids,
                "participants": [{"room": r, "seat": s} for r in range(rooms) for s in SEATS],
                "seconds": seconds,
                "warmup": warmup,
                "cache": str(cache),
                "concurrency": JOIN_CONCURRENCY,
            }
            try:
                result = await run_generator(plan, 1, on_event)
            except BenchError as error:
                raise BenchError(f"{error}\nJanus's log:\n{server.log_tail()}") from error
            if server.proc is not None and server.proc.poll() is not None:
                raise BenchError("Janus exited during the run:\n" + server.log_tail())
        finally:
            server.stop()
    if "window_start" not in marks or "window_end" not in marks:
        raise BenchError("the load generator never opened its measurement window")
    (t0, s0), (t1, s1) = marks["window_start"], marks["window_end"]
    wall = t1 - t0
    cores = (s1.cpu_seconds - s0.cpu_seconds) / wall
    consumers = rooms * CONSUMERS_PER_ROOM
    generator = generator_load(result)
    return BenchResult(
        path="janus",
        rooms=rooms,
        consumers=consumers,
        server_cpu_cores=round(cores, 3),
        consumers_per_core=round(consumers / cores, 1) if cores > 0 else float("inf"),
        # As run_level computes it when the server has no counter: the generator's count over
        # the window as this process saw it, so the two paths' figures compare.
        forwarded_pps=round(result["received"] / wall, 1),
        added_latency_ms_p50=None,
        added_latency_ms_p95=None,
        frame_loss_ratio=None if result["loss_ratio"] is None else round(result["loss_ratio"], 5),
        rss_mb_per_room=round((s1.rss_bytes - idle.rss_bytes) / rooms / 2**20, 2),
        generator_cpu=generator,
        window_seconds=round(wall, 2),
    )
