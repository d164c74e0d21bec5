"""The load generator: many participants, cheap enough that it is never the bottleneck.

Each load participant joins like any client (invite, Socket.IO, the server's offer, aiortc for
ICE and DTLS). Once connected it stops using aiortc's media path entirely:

* **Sending** replays pre-encoded VP8 and Opus (bench/media.py) as RTP that was encrypted
  *before* the measurement starts (SRTP with the connection's own keys, in sequence order), so
  during the measurement each packet costs one ``sendto``.
* **Receiving** counts RTP datagrams at the socket, without decrypting or parsing them, in
  batches every ``TICK``: the generator never sleeps waiting on its sockets, so the server is not
  charged for waking it on every packet (see docs/benchmarks.md).

It runs in its own process, pinned to its own core by the bench, and reports its own CPU: the
bench refuses a result when the generator was busy more than ``MAX_GENERATOR_LOAD`` of its core.

Run as ``python -m courtlink.bench.loadgen`` with a JSON plan on stdin; it prints JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcconfiguration import RTCBundlePolicy

from courtlink.bench.media import FPS, LoadMedia
from courtlink.media import wire
from courtlink.media.rtp import build_extensions, write_packet

__all__ = ["LoadParticipant", "main"]

MAX_GENERATOR_LOAD = 0.85
# How often the generator sends what is due and counts what arrived.
TICK = 0.002


def say(kind: str, **data: Any) -> None:
    print(json.dumps({"event": kind, **data}), flush=True)  # the bench reads stdout


@dataclass
class Stream:
    """One outgoing RTP stream's header state."""

    ssrc: int
    payload_type: int
    mid: bytes
    clock_rate: int
    seq: int = field(default_factory=lambda: random.randrange(0, 0x7FFF))
    ts: int = field(default_factory=lambda: random.randrange(0, 0xFFFFFFFF))


class MediaEndpoint:
    """A connected RTCPeerConnection taken over for load: pre-encrypted RTP out, RTP counted in.

    Used for Courtlink's single connection per participant and for Janus's separate publisher
    and subscriber connections alike."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.received = 0
        self.streams: dict[str, Stream] = {}
        dtls = pc.getTransceivers()[0].receiver.transport
        self.dtls = dtls
        pair = dtls.transport._connection._nominated[1]
        protocol = pair.protocol
        self.transport = protocol.transport
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # Bursts (a key frame to three slots) must not overflow the generator's own socket.
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
        self.remote_addr = pair.remote_addr
        original = protocol.datagram_received

        def datagram_received(data: bytes, addr: Any) -> None:
            if 127 < data[0] < 192 and not 191 < data[1] < 224:  # RTP, not RTCP
                self.received += 1
                return
            original(data, addr)

        # RTP is counted here; STUN, DTLS and RTCP still reach aiortc (consent, reports).
        protocol.datagram_received = datagram_received  # type: ignore[method-assign, assignment]

    def sending(self, mids: set[str]) -> None:
        """Send on the transceivers with these MIDs (one audio, one video)."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid in mids:
                codec = wire.negotiated_codecs(transceiver)[0]
                assert codec.payloadType is not None
                self.streams[transceiver.kind] = Stream(
                    ssrc=transceiver.sender._ssrc,
                    payload_type=codec.payloadType,
                    mid=str(transceiver.mid).encode(),
                    clock_rate=codec.clockRate,
                )

    def encrypt(self, media: LoadMedia, seconds: float, offset: float) -> list[tuple[float, bytes]]:
        """Every packet to send in ``seconds`` from the start, as (time, SRTP datagram)."""
        if not self.streams:
            return []
        video, audio = self.streams["video"], self.streams["audio"]
        plain: list[tuple[float, bytes]] = []
        picture_id = random.randrange(0, 1 << 15)
        for n in range(int(seconds * FPS)):
            frame, _ = media.video[n % len(media.video)]
            payloads = Vp8Encoder._packetize(frame, picture_id)
            picture_id = (picture_id + 1) % (1 << 15)
            for i, payload in enumerate(payloads):
                marker = i == len(payloads) - 1
                plain.append((offset + n / FPS, self._packet(video, payload, marker=marker)))
            video.ts = (video.ts + video.clock_rate // FPS) & 0xFFFFFFFF
        for n in range(int(seconds * 50)):
            frame = media.audio[n % len(media.audio)]
            plain.append((offset + n / 50, self._packet(audio, frame, marker=False)))
            audio.ts = (audio.ts + 960) & 0xFFFFFFFF
        plain.sort(key=lambda item: item[0])
        srtp = self.dtls._tx_srtp
        # SRTP keeps per-stream state; each stream's packets are protected in sequence order.
        return [(when, srtp.protect(packet)) for when, packet in plain]

    def _packet(self, stream: Stream, payload: bytes, *, marker: bool) -> bytes:
        packet = write_packet(
            marker=marker,
            payload_type=stream.payload_type,
            sequence_number=stream.seq,
            timestamp=stream.ts,
            ssrc=stream.ssrc,
            extensions=build_extensions(stream.mid),
            payload=payload,
        )
        stream.seq = (stream.seq + 1) & 0xFFFF
        return packet


async def answer_quietly(pc: RTCPeerConnection, sdp: str, send_mids: set[str] | None) -> str:
    """Answer ``sdp`` without ever decoding: receivers never start decoder threads; the
    transceivers in ``send_mids`` (None: every sendable one) send from a silent track until
    the endpoint takes the socket over."""
    await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
    for transceiver in pc.getTransceivers():
        wire.quiet_receiver(transceiver.receiver)
        if send_mids is not None and transceiver.mid in send_mids:
            transceiver.sender.replaceTrack(wire.SilentTrack(transceiver.kind))
            transceiver.direction = "sendonly"
    await pc.setLocalDescription(await pc.createAnswer())
    return str(pc.localDescription.sdp)


async def connected(pc: RTCPeerConnection, seconds: float = 30) -> None:
    done = asyncio.get_running_loop().create_future()

    def on_state() -> None:
        if pc.connectionState in ("connected", "failed") and not done.done():
            done.set_result(pc.connectionState)

    pc.on("connectionstatechange", on_state)
    on_state()
    if await asyncio.wait_for(done, seconds) != "connected":
        raise RuntimeError("peer connection failed")


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


class LoadParticipant:
    """A Courtlink participant: one connection that sends and receives."""

    def __init__(self, base: str, token: str, room: int, seat: str) -> None:
        self.base = base
        self.token = token
        self.room = room
        self.seat = seat
        self.sio = socketio.AsyncClient(reconnection=False)
        self.endpoint: MediaEndpoint | None = None
        self.pc: RTCPeerConnection | None = None

    @property
    def senders(self) -> list[MediaEndpoint]:
        return [self.endpoint] if self.endpoint else []

    @property
    def receivers(self) -> list[MediaEndpoint]:
        return [self.endpoint] if self.endpoint else []

    async def join(self, http: aiohttp.ClientSession) -> None:
        offer_future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def on_offer(offer: dict[str, Any]) -> None:
            if not offer_future.done():
                offer_future.set_result(offer)

        self.sio.on("media.offer", on_offer)
        await self.sio.connect(
            self.base, auth={"invite": self.token}, transports=["websocket"], wait_timeout=30
        )
        async with http.get(f"{self.base}/i/{self.token}", allow_redirects=False) as response:
            session = response.headers["Location"].split("?")[0].rsplit("/", 1)[-1]
        ack = await self.sio.call("join", {"session": session}, timeout=30)
        if not ack.get("ok"):
            raise RuntimeError(f"join refused: {ack['error']}")
        offer = await asyncio.wait_for(offer_future, 30)
        own = set(offer["own"].values())
        self.pc = pc = new_pc()
        sdp = await answer_quietly(pc, offer["sdp"], own)
        ack = await self.sio.call("media.answer", {"sdp": sdp}, timeout=30)
        if not ack.get("ok"):
            raise RuntimeError(f"answer refused: {ack['error']}")
        await connected(pc)
        self.endpoint = MediaEndpoint(pc)
        self.endpoint.sending(own)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()


class Participant(Protocol):
    room: int

    @property
    def senders(self) -> list[MediaEndpoint]: ...

    @property
    def receivers(self) -> list[MediaEndpoint]: ...

    async def join(self, http: aiohttp.ClientSession) -> None: ...

    async def close(self) -> None: ...


def participants_for(plan: dict[str, Any]) -> list[Participant]:
    if plan.get("peer") == "janus":
        from courtlink.bench.janus import JanusParticipant

        return [JanusParticipant.from_plan(plan, p) for p in plan["participants"]]
    return [
        LoadParticipant(plan["base"], p["token"], p["room"], p["seat"])
        for p in plan["participants"]
    ]


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    media = LoadMedia.load(Path(plan["cache"]))
    participants = participants_for(plan)
    limit = asyncio.Semaphore(int(plan.get("concurrency", 6)))
    async with aiohttp.ClientSession() as http:

        async def join(p: Participant) -> None:
            async with limit:
                await p.join(http)

        started = time.monotonic()
        await asyncio.gather(*(join(p) for p in participants))
        say("joined", participants=len(participants), seconds=round(time.monotonic() - started, 1))
        if plan.get("settle"):
            await asyncio.sleep(float(plan["settle"]))

        warmup, window = float(plan["warmup"]), float(plan["seconds"])
        total = warmup + window + 1.0
        schedule: list[tuple[float, Any, Any, bytes, int]] = []
        for p in participants:
            for endpoint in p.senders:
                # Publishers start at different moments, as real ones would.
                offset = random.uniform(0, 1 / FPS)
                for when, data in endpoint.encrypt(media, total, offset):
                    schedule.append((when, endpoint.transport, endpoint.remote_addr, data, p.room))
        schedule.sort(key=lambda item: item[0])
        say("armed", packets=len(schedule))

        def received() -> int:
            return sum(e.received for p in participants for e in p.receivers)

        loop = asyncio.get_running_loop()
        start = loop.time()
        cpu_start = wall_start = None
        received_start = sent_window = 0
        sent_by_room: dict[int, int] = {}
        index = 0
        window_open = False
        while index < len(schedule):
            now = loop.time() - start
            if not window_open and now >= warmup:
                window_open = True
                cpu_start, wall_start = time.process_time(), time.monotonic()
                received_start = received()
                say("window_start")
            if window_open and now >= warmup + window:
                break
            while index < len(schedule) and schedule[index][0] <= now:
                _, transport, addr, data, room = schedule[index]
                transport.sendto(data, addr)
                if window_open:
                    sent_window += 1
                    sent_by_room[room] = sent_by_room.get(room, 0) + 1
                index += 1
            # Sleep without waiting on the sockets: a sleeping reader makes each arriving
            # packet wake this process, a cost the kernel charges to the server's sendto and
            # one a remote subscriber would never cost it. The zero-timeout turn of the loop
            # that follows reads everything that arrived meanwhile (and keeps ICE consent and
            # the Socket.IO pings alive).
            time.sleep(TICK)  # noqa: ASYNC251 -- blocking on purpose, see above
            await asyncio.sleep(0)
        assert cpu_start is not None
        assert wall_start is not None
        cpu_end, wall_end = time.process_time(), time.monotonic()
        say("window_end")
        await asyncio.sleep(0.5)  # what was in flight arrives
        got = received() - received_start
        size: dict[int, int] = {}
        for p in participants:
            size[p.room] = size.get(p.room, 0) + 1
        # Everyone in a room receives what the other members send.
        expected = sum(sent_by_room.get(room, 0) * (n - 1) for room, n in size.items())
        result = {
            "participants": len(participants),
            "window_seconds": round(wall_end - wall_start, 3),
            "sent": sent_window,
            "received": got,
            "expected": expected,
            "loss_ratio": max(0.0, 1 - got / expected) if expected else None,
            "generator_cpu": round((cpu_end - cpu_start) / (wall_end - wall_start), 3),
        }
        for p in participants:
            await p.close()
        return result


def main() -> None:
    plan = json.loads(sys.stdin.read())
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    result = asyncio.run(run(plan))
    say("result", **result)


if __name__ == "__main__":
    main()
