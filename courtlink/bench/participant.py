"""``courtlink participant``: a headless participant on aiortc.

It opens an invite link, joins the seat, answers the server's offer, publishes a file (sent as is
when it is already VP8/Opus) or a generated test pattern and tone, and reports what it receives:
for detention-center terminals without a browser, for the tests, and for load.

The test pattern identifies the seat: every seat has its own colour and tone
(``SEAT_SIGNATURES``), so a receiver can tell from decoded media whose picture and voice it got.
This is a client: decoding here is fine (the server never decodes).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import itertools
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import av
import socketio
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy

from courtlink.bench.recorder import SeatRecorder
from courtlink.court.seats import SEATS, Seat
from courtlink.errors import CourtlinkError, InvalidInput, NotAuthenticated, Unavailable

__all__ = ["SEAT_SIGNATURES", "Participant", "PatternTrack", "Signature", "ToneTrack"]

log = logging.getLogger("courtlink.participant")


@dataclass(frozen=True)
class Signature:
    rgb: tuple[int, int, int]
    tone_hz: int


SEAT_SIGNATURES: dict[Seat, Signature] = {
    Seat.JUDGE: Signature((200, 30, 30), 440),
    Seat.OFFICER: Signature((30, 170, 40), 660),
    Seat.DEBTOR: Signature((40, 60, 210), 880),
    Seat.CREDITOR: Signature((210, 190, 30), 1100),
}


def nearest_seat(rgb: tuple[int, int, int]) -> Seat:
    """The seat whose colour is nearest to ``rgb`` (decoded pictures shift colours a little)."""
    return min(
        SEAT_SIGNATURES,
        key=lambda s: sum((a - b) ** 2 for a, b in zip(SEAT_SIGNATURES[s].rgb, rgb, strict=True)),
    )


def nearest_tone(hz: float) -> Seat:
    return min(SEAT_SIGNATURES, key=lambda s: abs(SEAT_SIGNATURES[s].tone_hz - hz))


class PatternTrack(MediaStreamTrack):
    """A solid picture in the seat's colour; a key frame every ``keyframe_interval`` seconds
    at most on its own (the encoder adds one on each PLI)."""

    kind = "video"

    def __init__(
        self,
        rgb: tuple[int, int, int],
        *,
        width: int = 320,
        height: int = 240,
        fps: int = 15,
        keyframe_interval: float | None = None,
    ) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.keyframe_interval = keyframe_interval
        frame = av.VideoFrame(width, height, "rgb24")
        frame.planes[0].update(bytes(rgb) * (frame.planes[0].buffer_size // 3))
        self._template = frame.reformat(format="yuv420p")
        self._count = 0
        self._start: float | None = None
        self._last_key = -1e9

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        self._count += 1
        delay = self._start + self._count / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for src, dst in zip(self._template.planes, frame.planes, strict=True):
            dst.update(bytes(src))
        frame.pts = self._count * (90000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        now = time.monotonic()
        if self.keyframe_interval is not None and now - self._last_key >= self.keyframe_interval:
            frame.pict_type = av.video.frame.PictureType.I
            self._last_key = now
        return frame


class ToneTrack(MediaStreamTrack):
    """A sine tone (mono, 48 kHz, 20 ms frames).

    One second of samples is computed once and sliced: the tone is a whole number of hertz,
    so the second loops seamlessly, and making each frame costs a copy rather than 960 sines
    (which was the largest share of a headless participant's event loop)."""

    kind = "audio"

    def __init__(self, hz: float, *, rate: int = 48000, amplitude: float = 0.3) -> None:
        super().__init__()
        self.hz, self.rate, self.amplitude = round(hz), rate, amplitude
        self._samples = 0
        self._start: float | None = None
        step = 2 * math.pi * self.hz / rate
        peak = int(32767 * amplitude)
        second = array.array("h", (int(peak * math.sin(step * i)) for i in range(rate)))
        if sys.byteorder != "little":
            second.byteswap()
        # Two seconds back to back, so any 20 ms window is one slice.
        self._table = second.tobytes() * 2

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        n = self.rate // 50
        delay = self._start + (self._samples + n) / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        start = 2 * (self._samples % self.rate)
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(self._table[start : start + 2 * n])
        frame.sample_rate = self.rate
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, self.rate)
        self._samples += n
        return frame


@dataclass
class SlotReport:
    seat: str
    video_frames: int = 0
    audio_frames: int = 0
    rgb: tuple[int, int, int] | None = None
    tone_hz: float | None = None
    first_video_at: float | None = None
    last_video_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        seen_seat = nearest_seat(self.rgb) if self.rgb is not None else None
        heard_seat = nearest_tone(self.tone_hz) if self.tone_hz else None
        return {
            "video_frames": self.video_frames,
            "audio_frames": self.audio_frames,
            "rgb": list(self.rgb) if self.rgb else None,
            "tone_hz": round(self.tone_hz, 1) if self.tone_hz else None,
            "seen": None if seen_seat is None else str(seen_seat),
            "heard": None if heard_seat is None else str(heard_seat),
            "first_video_at": self.first_video_at,
        }


def _mean_rgb(frame: av.VideoFrame) -> tuple[int, int, int]:
    small = frame.reformat(width=4, height=4, format="rgb24")
    plane = small.planes[0]
    data = bytes(plane)
    # Rows are padded to the plane's line size (48 bytes for 4 pixels of 3): skip the padding.
    row = small.width * 3
    pixels = b"".join(
        data[y * plane.line_size : y * plane.line_size + row] for y in range(small.height)
    )
    count = small.width * small.height
    return tuple(sum(pixels[c::3]) // count for c in range(3))  # type: ignore[return-value]


def _zero_crossing_hz(frame: av.AudioFrame) -> float | None:
    """The frequency of a pure tone from its zero crossings (enough to tell seats apart).

    aiortc decodes Opus to packed signed 16-bit samples; the first channel is enough.
    """
    if frame.format.name != "s16":
        return None
    channels = len(frame.layout.channels)
    data = bytes(frame.planes[0])[: frame.samples * 2 * channels]
    step = 2 * channels
    samples = [
        int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(0, len(data), step)
    ]
    if len(samples) < 2 or max(abs(s) for s in samples) < 500:
        return None
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return float(crossings * frame.sample_rate / (2 * len(samples)))


@dataclass
class Participant:
    """One headless participant. ``run`` joins, publishes, receives, and returns a report."""

    invite_url: str
    video: Path | None = None
    audio: Path | None = None
    record: Path | None = None
    seat_signature: Seat | None = None  # default: the first seat of the invite
    keyframe_interval: float | None = None
    consent: bool = False
    officer: str | None = None
    pin: str | None = None
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    silence: float = 3.0  # seconds without any packet before asking for a new connection
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    ssl: bool = True

    def __post_init__(self) -> None:
        parts = urlsplit(self.invite_url)
        if parts.scheme not in ("http", "https") or not parts.path.startswith("/i/"):
            raise InvalidInput("--invite must be an invite link like https://host/i/<token>")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.token = parts.path[len("/i/") :]
        self.session_id: str | None = None
        self.seats: list[str] = []
        self.participant_id: str | None = None
        self.slots: dict[str, SlotReport] = {}
        self.presence: dict[str, Any] = {}
        self.peer_state = "new"
        self.offers = 0
        self.joined_at: float | None = None
        self.connected_at: float | None = None
        self._pc: RTCPeerConnection | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # --record: one SeatRecorder per remote seat, written by one thread (in arrival order,
        # and encoding never holds up the event loop).
        self._recorders: dict[str, SeatRecorder] = {}
        self._record_pool: ThreadPoolExecutor | None = None
        self._player: MediaPlayer | None = None
        self._sio = socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2
        )
        self._http: aiohttp.ClientSession | None = None
        self._stopped = asyncio.Event()
        # Set when the report is taken: later frames are neither counted nor recorded, so the
        # report and the recorded files agree (closing the connection still takes a while).
        self._reported = False
        self.stop_reason: str | None = None
        self.restarts = 0
        self._offer_lock = asyncio.Lock()

    # Reporting --------------------------------------------------------------------------

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)

    def report(self) -> dict[str, Any]:
        return {
            "session": self.session_id,
            "participant": self.participant_id,
            "seats": self.seats,
            "peer": self.peer_state,
            "offers": self.offers,
            "restarts": self.restarts,
            "slots": {seat: slot.to_json() for seat, slot in sorted(self.slots.items())},
            "presence": self.presence,
            "stopped": self.stop_reason,
        }

    # Flow -------------------------------------------------------------------------------

    async def _open_invite(self) -> None:
        assert self._http is not None
        try:
            async with self._http.get(
                f"{self.base}/i/{self.token}", allow_redirects=False
            ) as response:
                if response.status != 303:
                    raise NotAuthenticated(f"the invite link was refused (HTTP {response.status})")
                location = response.headers.get("Location", "")
        except aiohttp.ClientError as exc:
            raise Unavailable(f"cannot reach {self.base}: {exc}") from None
        self.session_id = location.split("?")[0].rsplit("/", 1)[-1]

    async def _give_consent(self) -> None:
        assert self._http is not None
        assert self.session_id is not None
        form = {"agree": "yes"}
        if self.officer:
            form.update({"officer": self.officer, "pin": self.pin or ""})
        async with self._http.post(
            f"{self.base}/join/{self.session_id}/consent", data=form, allow_redirects=False
        ) as response:
            if response.status != 303:
                raise CourtlinkError(f"consent was refused (HTTP {response.status})")

    async def _join(self) -> None:
        ack = await self._sio.call("join", {"session": self.session_id}, timeout=20)
        if not ack.get("ok") and ack["error"]["code"] == "consent_required" and self.consent:
            await self._give_consent()
            ack = await self._sio.call("join", {"session": self.session_id}, timeout=20)
        if not ack.get("ok"):
            self._stop(f"join refused: {ack['error']['code']}: {ack['error']['message']}")
            return
        data = ack["data"]
        self.participant_id = data["participant"]
        self.seats = data["seats"]
        self.presence = data["presence"]
        self.joined_at = time.monotonic()
        self._emit("joined", data)

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stopped.set()

    def _local_tracks(
        self, own_seats: list[Seat]
    ) -> tuple[MediaStreamTrack | None, MediaStreamTrack | None]:
        seat = self.seat_signature or own_seats[0]
        signature = SEAT_SIGNATURES[seat]
        video: MediaStreamTrack | None = PatternTrack(
            signature.rgb, keyframe_interval=self.keyframe_interval
        )
        audio: MediaStreamTrack | None = ToneTrack(signature.tone_hz)
        if self.video is not None or self.audio is not None:
            self._player = None
        if self.video is not None:
            player = MediaPlayer(
                str(self.video), decode=not _is(self.video, "video", "vp8"), loop=True
            )
            video = player.video
        if self.audio is not None:
            player = MediaPlayer(
                str(self.audio), decode=not _is(self.audio, "audio", "opus"), loop=True
            )
            audio = player.audio
        return audio, video

    async def _on_offer(self, offer: dict[str, Any]) -> None:
        self.offers += 1
        generation = self.offers
        # One offer at a time, and only the newest: after a restart the server has replaced
        # the peer connection an older offer was for, so answering that one is pointless.
        async with self._offer_lock:
            if generation == self.offers:
                await self._answer_offer(offer, generation)

    async def _answer_offer(self, offer: dict[str, Any], generation: int) -> None:
        await self._close_pc()
        servers = [RTCIceServer(**s) for s in self.ice_servers]
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._pc = pc
        slots = {s["mid"]: s for s in offer["slots"]}

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track and transceiver.mid in slots:
                    seat = slots[transceiver.mid]["seat"]
                    self._spawn(self._consume(seat, track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            self.peer_state = pc.connectionState
            if pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = time.monotonic()
            self._emit("peer", {"state": pc.connectionState})

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        # Receive without RTX: aiortc routes a retransmission by payload type only when one
        # receiver owns it, and every video slot shares it; plain retransmissions (same SSRC)
        # route by SSRC. Browsers need no such help.
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video" and transceiver.mid not in offer["own"].values():
                caps = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() != "video/rtx"]
                )
        # The offer may arrive before the join's answer: our seats are the ones without a slot.
        slot_seats = {s["seat"] for s in offer["slots"]}
        audio, video = self._local_tracks([seat for seat in SEATS if seat not in slot_seats])
        for transceiver in pc.getTransceivers():
            if transceiver.mid == offer["own"]["audio"] and audio is not None:
                transceiver.sender.replaceTrack(audio)
                transceiver.direction = "sendonly"
            elif transceiver.mid == offer["own"]["video"] and video is not None:
                transceiver.sender.replaceTrack(video)
                transceiver.direction = "sendonly"
        await pc.setLocalDescription(await pc.createAnswer())
        if generation != self.offers:
            return  # a newer offer arrived meanwhile
        ack = await self._sio.call("media.answer", {"sdp": pc.localDescription.sdp}, timeout=20)
        if not ack.get("ok") and generation == self.offers:
            self._stop(f"answer refused: {ack['error']['code']}: {ack['error']['message']}")

    async def _consume(self, seat: str, track: MediaStreamTrack) -> None:
        slot = self.slots.setdefault(seat, SlotReport(seat))
        recorder = None
        if self.record is not None and self._record_pool is not None:
            recorder = self._recorders.get(seat)
            if recorder is None:
                recorder = self._recorders[seat] = SeatRecorder(self.record, seat)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self._reported:
                return
            if recorder is not None and self._record_pool is not None:
                if isinstance(frame, av.VideoFrame):
                    self._record_pool.submit(recorder.video, frame)
                elif isinstance(frame, av.AudioFrame):
                    self._record_pool.submit(recorder.audio, frame)
            if track.kind == "video":
                now = time.monotonic()
                slot.video_frames += 1
                if slot.first_video_at is None:
                    slot.first_video_at = round(now - (self.joined_at or now), 3)
                slot.last_video_at = now
                if slot.video_frames % 5 == 1 and isinstance(frame, av.VideoFrame):
                    slot.rgb = _mean_rgb(frame)
            else:
                slot.audio_frames += 1
                if slot.audio_frames % 10 == 1 and isinstance(frame, av.AudioFrame):
                    hz = _zero_crossing_hz(frame)
                    if hz is not None:
                        slot.tone_hz = hz

    async def command(self, event: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a Socket.IO event (e.g. the judge's ``caucus``) and return its ack."""
        ack: dict[str, Any] = await self._sio.call(event, payload or {}, timeout=20)
        return ack

    async def _received_packets(self) -> int | None:
        pc = self._pc
        if pc is None:
            return None
        report = await pc.getStats()
        return sum(
            int(getattr(s, "packetsReceived", 0) or 0)
            for s in report.values()
            if s.type == "transport"
        )

    async def _watchdog(self) -> None:
        """Ask for a new connection when nothing has arrived for ``silence`` seconds.

        The server sends receiver and sender reports on every slot about once a second even
        when the judge holds or mutes us, so silence means the network dropped. aiortc has no
        ICE restart; the server builds a new peer connection for the same seats and slots.
        """
        last_count: int | None = None
        last_change = time.monotonic()
        asked_at = -1e9
        while True:
            await asyncio.sleep(0.5)
            if self.participant_id is None or self._pc is None:
                continue
            count = await self._received_packets()
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
                continue
            quiet = now - last_change
            if quiet >= self.silence and now - asked_at >= 2 * self.silence and self._sio.connected:
                self.restarts += 1
                self._emit("restart", {"quiet_seconds": round(quiet, 1)})
                # One request at a time, until it is answered: while the network is down the
                # request waits in the socket's buffer, and every request that arrives later
                # makes the server replace the peer connection again.
                with contextlib.suppress(Exception):
                    await self._sio.call("media.restart", {}, timeout=max(10.0, 4 * self.silence))
                asked_at = time.monotonic()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_pc(self) -> None:
        pc, self._pc = self._pc, None
        if pc is not None:
            await pc.close()

    # Running ----------------------------------------------------------------------------

    async def run(self, seconds: float | None = None) -> dict[str, Any]:
        jar = aiohttp.CookieJar(unsafe=True)
        connector = aiohttp.TCPConnector(ssl=self.ssl)
        self._http = aiohttp.ClientSession(cookie_jar=jar, connector=connector)
        sio = self._sio
        try:
            if self.record is not None:
                try:
                    self.record.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise InvalidInput(f"--record: cannot create {self.record}: {exc}") from None
                self._record_pool = ThreadPoolExecutor(1, thread_name_prefix="courtlink-record")
            await self._open_invite()

            async def on_connect() -> None:
                self._spawn(self._join())

            async def on_offer(offer: dict[str, Any]) -> None:
                self._spawn(self._on_offer(offer))

            async def on_presence(message: dict[str, Any]) -> None:
                self.presence = message
                self._emit("presence", message)

            sio.on("connect", on_connect)
            sio.on("media.offer", on_offer)
            sio.on("presence", on_presence)

            for event in ("replaced", "removed", "session_ended"):

                async def on_stop(message: dict[str, Any], event: str = event) -> None:
                    self._emit(event, message)
                    self._stop(event)

                sio.on(event, on_stop)

            async def on_connect_error(data: Any) -> None:
                # python-socketio hands over {"message", "data": {"code", "message"}}.
                if isinstance(data, dict) and isinstance(data.get("data"), dict):
                    data = data["data"]
                code = data.get("code") if isinstance(data, dict) else None
                if code and code.startswith("invite_"):
                    self._stop(f"connection refused: {code}")

            sio.on("connect_error", on_connect_error)

            await sio.connect(
                self.base, auth={"invite": self.token}, transports=["websocket"], wait_timeout=20
            )
            self._spawn(self._watchdog())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), seconds)
            self._reported = True
            return self.report()
        finally:
            await self.close()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._sio.disconnect()
        await self._close_pc()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._record_pool is not None:
            pool, self._record_pool = self._record_pool, None
            for recorder in self._recorders.values():
                pool.submit(recorder.close)
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        if self._http is not None:
            await self._http.close()


def _is(path: Path, kind: str, codec: str) -> bool:
    """Whether ``path``'s first ``kind`` stream is already ``codec`` (then it is sent as is)."""
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video if kind == "video" else container.streams.audio
            return bool(streams) and streams[0].codec_context.name == codec
    except (av.FFmpegError, OSError):
        raise InvalidInput(f"cannot read {path}") from None


def report_line(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, sort_keys=True)
