"""The transcoding path: aiortc's usual decode, relay and re-encode. The benchmark's baseline only.

Courtlink's media path is the SFU (courtlink/media/sfu.py), which forwards RTP without
decoding. This module exists only so that ``courtlink bench sfu --baseline transcode`` can
measure the SFU against what aiortc applications usually do: it is not the product, it is not
covered by the media guarantees (no codec guard; NACKs and key frame requests are answered by
aiortc on each hop, not relayed; no added-latency histogram), and only the benchmark's server
entry (bench/server.py) plugs it in, through the app's media factory (``transcoding_factory``).

``TranscodingSfu`` implements courtlink.live.media_port.MediaPort with the same offers as
``Sfu`` (the same fixed slots per participant, the same ``{"type", "sdp", "slots", "own"}``
shape), so signaling, the browser and the headless clients work unchanged. It is built on the
SFU's bases (media.sfu.MediaServer, media.router.SessionRouter, media.connection.SlotConnection),
so it differs from it only in how a slot is fed. Inside, everything is aiortc's ordinary media
path:

* each incoming track is received as aiortc does by default (a decoder thread per track) and
  fanned out with one ``aiortc.contrib.media.MediaRelay`` per publisher track;
* each outgoing slot's sender has its own ``SlotTrack``, fed from ``relay.subscribe(track)``
  while the routing policy (courtlink.court.routing.flows) allows it, so aiortc runs one
  encoder per consumer, as an application that hands every subscriber a relayed track does.
  The subscriptions are unbuffered (``buffered=False``, the newest frame wins): with aiortc's
  default buffered ones, an overloaded server queues decoded frames without bound (about
  460 kB each at 640x480), and the benchmark would measure that growth rather than the
  transcoding.

Why a ``SlotTrack`` rather than ``sender.replaceTrack(relay.subscribe(track))`` on every
routing change: aiortc's sending task awaits ``recv()`` of the track it took before the change,
and a stopped relay proxy never returns from it (while ending it raises MediaStreamError, which
ends the sending task for good), so the slot would stay silent forever. A ``SlotTrack`` switches
its relay subscription underneath and keeps the frame timeline going forward, which aiortc's
VP8 encoder requires (it fails on a frame older than the previous one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCRtpTransceiver,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

from courtlink.court.seats import Seat
from courtlink.media.connection import KINDS, PeerState, SlotConnection
from courtlink.media.router import SessionRouter
from courtlink.media.sfu import MediaServer, MediaSettings
from courtlink.metrics import Metrics

__all__ = [
    "SlotTrack",
    "TranscodingPeer",
    "TranscodingRoom",
    "TranscodingSfu",
    "transcoding_factory",
]

log = logging.getLogger("courtlink.media")

STATS_INTERVAL = 0.5  # how often the cached sent-packet totals (``counts()["forwarded"]``) refresh


def _fit(data: bytes, size: int) -> bytes:
    """``data`` cut or zero-padded to ``size`` bytes (planes are padded to different sizes)."""
    return data[:size] if len(data) >= size else data + bytes(size - len(data))


def _copy_frame(frame: av.VideoFrame | av.AudioFrame) -> av.VideoFrame | av.AudioFrame:
    """A copy of ``frame``'s pixels or samples (relayed frames are shared by every subscriber,
    so one subscriber's timeline may not be written into them)."""
    if isinstance(frame, av.AudioFrame):
        audio = av.AudioFrame(
            format=frame.format.name, layout=frame.layout.name, samples=frame.samples
        )
        for src, dst in zip(frame.planes, audio.planes, strict=True):
            dst.update(_fit(bytes(src), dst.buffer_size))
        audio.sample_rate = frame.sample_rate
        return audio
    video = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for source, target in zip(frame.planes, video.planes, strict=True):
        if source.line_size == target.line_size:
            target.update(_fit(bytes(source), target.buffer_size))
            continue
        # Rows padded differently: copy row by row.
        row, into, width = (
            min(source.line_size, target.line_size),
            target.line_size,
            source.line_size,
        )
        data, out = memoryview(source), bytearray(target.buffer_size)
        for y in range(min(target.buffer_size // into, len(data) // width)):
            out[y * into : y * into + row] = data[y * width : y * width + row]
        target.update(bytes(out))
    return video


class SlotTrack(MediaStreamTrack):
    """The track of one outgoing slot's sender: frames of the current relay subscription, or
    none (the sender then sends nothing but its RTCP reports) while the slot is not fed."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: MediaStreamTrack | None = None  # the publisher's incoming track
        self._proxy: MediaStreamTrack | None = None  # its relay subscription for this slot
        self._changed: asyncio.Future[None] | None = None
        self._unit = Fraction(1, 48000 if kind == "audio" else 90000)
        self._offset = 0  # added to the source's pts: the timeline continues across sources
        self._last_pts: int | None = None
        self._last_at = 0.0
        self._rebase = False
        self.frames = 0

    def feed(self, relay: MediaRelay | None, source: MediaStreamTrack | None) -> bool:
        """Take frames from ``source`` through ``relay`` (None: stop). Whether it changed."""
        if source is self.source and (source is None or self._proxy is not None):
            return False
        if self._proxy is not None:
            self._proxy.stop()
        self.source = source
        self._proxy = (
            relay.subscribe(source, buffered=False)
            if relay is not None and source is not None and self.readyState == "live"
            else None
        )
        self._rebase = True
        self._wake()
        return True

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    async def recv(self) -> Frame | Packet[Any]:
        loop = asyncio.get_running_loop()
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            self._changed = changed = loop.create_future()
            proxy = self._proxy
            if proxy is None:
                await changed
                continue
            pending = asyncio.ensure_future(proxy.recv())
            try:
                await asyncio.wait({pending, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not pending.done():
                    pending.cancel()
            if not pending.done() or pending.cancelled():
                continue  # switched to another source (or to none) meanwhile
            try:
                frame = pending.result()
            except MediaStreamError:
                # The publisher's track ended (it left): wait to be fed again.
                if self._proxy is proxy:
                    self._proxy = None
                continue
            if proxy is not self._proxy:
                continue
            self.frames += 1
            if isinstance(frame, av.VideoFrame | av.AudioFrame):
                return self._retime(frame)
            return frame

    def _retime(self, frame: av.VideoFrame | av.AudioFrame) -> av.VideoFrame | av.AudioFrame:
        """Keep the output's pts increasing: a new source (another publisher, or the same one
        after a restart) starts its own timeline, often at zero.

        Relayed frames are shared, and aiortc's encoders rebase a frame's pts to their codec's
        time base in place (the same instant in other units), so the arithmetic is done in
        this slot's own unit, and a frame is copied, never changed, when its pts must move."""
        pts, base = frame.pts, frame.time_base
        if pts is None or base is None:
            return frame
        unit = self._unit
        ticks = round(pts * base / unit)
        now = time.monotonic()
        if self._rebase and self._last_pts is not None:
            elapsed = max(1, int((now - self._last_at) / unit))
            candidate = ticks + self._offset
            # Keep the old offset when the new frames continue the old timeline (the same
            # publisher again after a caucus); otherwise continue from the last frame sent.
            if not self._last_pts < candidate <= self._last_pts + elapsed + int(1 / unit):
                self._offset = self._last_pts + elapsed - ticks
        self._rebase = False
        out = ticks + self._offset
        if self._last_pts is not None and out <= self._last_pts:
            out = self._last_pts + 1
            self._offset = out - ticks
        self._last_pts, self._last_at = out, now
        if out == ticks:
            return frame
        copy = _copy_frame(frame)
        copy.pts = out
        copy.time_base = unit
        return copy

    def stop(self) -> None:
        super().stop()
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        self.source = None
        self._wake()


class Publication:
    """One incoming track of a participant, decoded by aiortc, fanned out by its own relay.

    A sink subscription reads it all the time, so decoded frames never pile up in aiortc's
    track queue while nobody is subscribed (as MediaBlackhole does for aiortc applications)."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.relay = MediaRelay()
        self._sink = self.relay.subscribe(track, buffered=False)
        self._task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await self._sink.recv()

    async def close(self) -> None:
        self._sink.stop()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.track.stop()


class Slot:
    """An outgoing slot: a seat's audio or video toward one participant."""

    def __init__(self, seat: Seat, kind: str, transceiver: RTCRtpTransceiver) -> None:
        self.seat = seat
        self.kind = kind
        self.transceiver = transceiver
        track = transceiver.sender.track
        assert isinstance(track, SlotTrack)
        self.track = track


StateListener = Callable[["TranscodingPeer", PeerState], Awaitable[None]]


class TranscodingPeer(SlotConnection):
    """One participant's RTCPeerConnection with the same fixed slots as media.peer.Peer, on
    aiortc's own media path."""

    def __init__(
        self,
        participant_id: str,
        seats: tuple[Seat, ...],
        *,
        video_codec: str = "vp8",
        ice_timeout: float = 20.0,
        announced_address: str = "",
        on_state: StateListener | None = None,
    ) -> None:
        self.on_closed: Callable[[TranscodingPeer], None] | None = None
        self.publications: dict[str, Publication] = {}
        self.slots: dict[tuple[Seat, str], Slot] = {}
        self.sent = 0  # RTP packets sent on every slot, as of the last refresh
        self.rtt: float | None = None
        self._inbound_prior = (0, 0)  # (received, lost) on the own tracks at the last report
        super().__init__(
            participant_id,
            seats,
            video_codec=video_codec,
            ice_timeout=ice_timeout,
            announced_address=announced_address,
            on_state=on_state,
        )

    def _sending_track(self, kind: str) -> MediaStreamTrack:
        return SlotTrack(kind)

    def _slot_added(self, seat: Seat, kind: str, transceiver: RTCRtpTransceiver) -> None:
        self.slots[(seat, kind)] = Slot(seat, kind, transceiver)

    def frames(self, kind: str) -> int:
        """Frames handed to this peer's encoders of ``kind``."""
        return sum(s.track.frames for s in self.slots.values() if s.kind == kind)

    def _publish(self) -> None:
        """Relay the participant's tracks, once connected: aiortc's receivers (and their decoder
        threads) run from then on, and end the tracks, and so the relays, when they stop."""
        for kind, transceiver in self._own.items():
            track = transceiver.receiver.track
            if track is not None and kind not in self.publications and not self._closed:
                self.publications[kind] = Publication(track)

    async def refresh_stats(self) -> None:
        """Packets sent on every slot and the round-trip time, from aiortc's sender stats."""
        sent, rtts = 0, []
        for slot in self.slots.values():
            report = await slot.transceiver.sender.getStats()
            for stats in report.values():
                if stats.type == "outbound-rtp":
                    sent += int(stats.packetsSent)
                elif stats.type == "remote-inbound-rtp" and stats.roundTripTime is not None:
                    rtts.append(float(stats.roundTripTime))
        self.sent = max(self.sent, sent)
        self.rtt = min(rtts) if rtts else None

    async def quality(self) -> dict[str, Any]:
        """As media.peer.Peer.quality: round-trip time and uplink loss since last asked."""
        received = lost = 0
        for transceiver in self._own.values():
            report = await transceiver.receiver.getStats()
            for stats in report.values():
                if stats.type == "inbound-rtp":
                    received += int(stats.packetsReceived)
                    lost += max(0, int(stats.packetsLost))
        prior_received, prior_lost = self._inbound_prior
        self._inbound_prior = (received, lost)
        got, missed = received - prior_received, lost - prior_lost
        loss = round(max(0.0, min(1.0, missed / (got + missed))), 3) if got + missed > 0 else None
        return {
            "state": self.state,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
            "loss": loss,
        }

    def _connected(self) -> None:
        self._publish()

    async def close(self) -> None:
        """Close the slots' tracks, the relays, the tasks and the connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.refresh_stats()
        if self.on_closed is not None:
            self.on_closed(self)
        for slot in self.slots.values():
            slot.track.stop()
        for publication in self.publications.values():
            await publication.close()
        await self._close_connection()


class TranscodingRoom(SessionRouter[TranscodingPeer]):
    """The media of one live session on the transcoding path: a slot is fed from the relay of
    the publisher track the policy allows; in the background, sent-packet totals and quality."""

    def _feed(
        self, subscriber: TranscodingPeer, seat: Seat, kind: str, publisher: TranscodingPeer | None
    ) -> None:
        publication = publisher.publications.get(kind) if publisher is not None else None
        track = subscriber.slots[(seat, kind)].track
        if publication is None:
            track.feed(None, None)
        else:
            track.feed(publication.relay, publication.track)

    async def _loop(self) -> None:
        next_report = time.monotonic() + self.feedback_interval
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            try:
                for peer in list(self.peers.values()):
                    if not peer.closed:
                        await peer.refresh_stats()
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + self.feedback_interval
                    report = {
                        peer.participant_id: await peer.quality()
                        for peer in list(self.peers.values())
                        if not peer.closed
                    }
                    if self.on_quality is not None and report:
                        await self.on_quality(report)
            except Exception:
                log.exception("transcoding stats failed")


class TranscodingSfu(MediaServer[TranscodingRoom, TranscodingPeer]):
    """aiortc's usual decode/relay/encode server behind the MediaPort of media.sfu.Sfu: the
    benchmark's baseline (``python -m courtlink.bench.server --baseline transcode``), never the
    product's media path.

    No CodecGuard: this path decodes and encodes by design."""

    def __init__(self, settings: MediaSettings | None = None) -> None:
        super().__init__(settings)
        self.forwarded = 0  # packets sent by peers already closed (live ones: ``counts``)
        self.frames = dict.fromkeys(KINDS, 0)  # frames encoded for peers already closed

    def _starting(self) -> None:
        log.warning("transcoding baseline: decoding and re-encoding (benchmark only)")

    def _make_router(self, session_id: str, video_codec: str) -> TranscodingRoom:
        return TranscodingRoom(
            session_id, video_codec=video_codec, feedback_interval=self.settings.feedback_interval
        )

    def _make_peer(
        self,
        router: TranscodingRoom,
        participant_id: str,
        seats: tuple[Seat, ...],
        on_state: Callable[[Any, PeerState], Awaitable[None]],
    ) -> TranscodingPeer:
        async def rewire_then_tell(peer: TranscodingPeer, state: PeerState) -> None:
            # A connected peer's tracks are relayed from now on: feed the slots that wait on
            # them before signaling hears of the state.
            if state == "connected" and not router.closed:
                router.rewire()
            await on_state(peer, state)

        peer = TranscodingPeer(
            participant_id,
            seats,
            video_codec=router.video_codec,
            ice_timeout=self.settings.ice_timeout,
            announced_address=self.settings.announced_address,
            on_state=rewire_then_tell,
        )
        peer.on_closed = self._closed_peer
        return peer

    def _closed_peer(self, peer: TranscodingPeer) -> None:
        self.forwarded += peer.sent
        for kind in KINDS:
            self.frames[kind] += peer.frames(kind)

    def counts(self) -> dict[str, int]:
        """For metrics: rooms (as "routers"), peers, fed slots (as "consumers"), RTP packets
        sent ("forwarded", refreshed every STATS_INTERVAL from aiortc's stats), and the frames
        handed to the per-consumer encoders ("video_frames", "audio_frames"): with the number
        of consumers, the frame rate the server kept up with."""
        peers = [p for r in self.routers.values() for p in r.peers.values() if not p.closed]
        counts = {
            "routers": len(self.routers),
            "peers": len(peers),
            "consumers": sum(
                1 for p in peers for s in p.slots.values() if s.track.source is not None
            ),
            "forwarded": self.forwarded + sum(p.sent for p in peers),
        }
        for kind in KINDS:
            counts[f"{kind}_frames"] = self.frames[kind] + sum(p.frames(kind) for p in peers)
        return counts


def transcoding_factory(options: MediaSettings, metrics: Metrics) -> TranscodingSfu:
    """The app's media factory for the baseline (courtlink.web.app.create_app's
    ``media_factory``). ``metrics`` goes unused: this path has no added-latency histogram."""
    return TranscodingSfu(options)
