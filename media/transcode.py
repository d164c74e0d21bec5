"""The transcoding path: aiortc's usual decode, relay and re-encode. The benchmark's baseline only.

Courtlink's media path is the SFU (media/sfu.py), which forwards RTP without decoding. This
module exists only so that ``courtlink bench sfu`` can measure the SFU against what aiortc
applications usually do (``[media] mode = "transcode"``): it is not the product, it is not
covered by the media guarantees (no codec guard; NACKs and key frame requests are answered by
aiortc on each hop, not relayed; no added-latency histogram), and nothing but the benchmark
should turn it on.

``TranscodingSfu`` implements rooms.media_port.MediaPort with the same offers as ``Sfu`` (the
same fixed slots per participant, the same ``{"type", "sdp", "slots", "own"}`` shape), so
signaling, the browser and the headless clients work unchanged. Inside, everything is aiortc's
ordinary media path:

* each incoming track is received as aiortc does by default (a decoder thread per track) and
  fanned out with one ``aiortc.contrib.media.MediaRelay`` per publisher track;
* each outgoing slot's sender has its own ``SlotTrack``, fed from ``relay.subscribe(track)``
  while the routing policy (rooms.routing.flows) allows it, so aiortc runs one encoder per
  consumer, as an application that hands every subscriber a relayed track does. The
  subscriptions are unbuffered (``buffered=False``, the newest frame wins): with aiortc's
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
from collections.abc import Awaitable, Callable, Mapping
from fractions import Fraction
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy
from av.frame import Frame
from av.packet import Packet

from media import wire
from media.network import NetworkPolicy
from media.sdp import announce
from media.sfu import MediaSettings
from rooms.errors import Conflict, InvalidInput, NotFound
from rooms.media_port import MediaListener
from rooms.routing import Flow, Moderation, flows
from rooms.seats import SEATS, Seat

__all__ = ["SlotTrack", "TranscodingPeer", "TranscodingRoom", "TranscodingSfu"]

log = logging.getLogger("courtlink.media")

KINDS = ("audio", "video")
STATS_INTERVAL = 0.5  # how often the cached sent-packet totals (``counts()["forwarded"]``) refresh
PeerState = str  # "new" | "connecting" | "connected" | "failed" | "closed"


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
        self.track = SlotTrack(kind)
        transceiver.sender.replaceTrack(self.track)


StateListener = Callable[["TranscodingPeer", PeerState], Awaitable[None]]


class TranscodingPeer:
    """One participant's RTCPeerConnection with the same fixed slots as media.peer.Peer."""

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
        self.participant_id = participant_id
        self.seats = seats
        self.video_codec = video_codec
        self.ice_timeout = ice_timeout
        self.announced_address = announced_address
        self.on_state = on_state
        self.on_closed: Callable[[TranscodingPeer], None] | None = None
        self.state: PeerState = "new"
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.publications: dict[str, Publication] = {}
        self.slots: dict[tuple[Seat, str], Slot] = {}
        self.sent = 0  # RTP packets sent on every slot, as of the last refresh
        self.rtt: float | None = None
        self._inbound_prior = (0, 0)  # (received, lost) on the own tracks at the last report
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._own = {kind: self.pc.addTransceiver(kind, direction="recvonly") for kind in KINDS}
        for seat in SEATS:
            if seat in seats:
                continue
            for kind in KINDS:
                transceiver = self.pc.addTransceiver(kind, direction="sendonly")
                # One stream per seat, so the browser groups a seat's audio and video.
                transceiver.sender._stream_id = f"seat-{seat}"
                self.slots[(seat, kind)] = Slot(seat, kind, transceiver)
        for transceiver in self.pc.getTransceivers():
            transceiver.setCodecPreferences(wire.codec_preferences(transceiver.kind, video_codec))
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def closed(self) -> bool:
        return self._closed

    def frames(self, kind: str) -> int:
        """Frames handed to this peer's encoders of ``kind``."""
        return sum(s.track.frames for s in self.slots.values() if s.kind == kind)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def offer(self) -> dict[str, Any]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.state = "connecting"
        self._spawn(self._watch_ice())
        description = self.pc.localDescription
        slots = [
            {"mid": slot.transceiver.mid, "seat": str(seat), "kind": kind}
            for (seat, kind), slot in self.slots.items()
        ]
        own = {kind: t.mid for kind, t in self._own.items()}
        sdp = (
            announce(description.sdp, self.announced_address)
            if self.announced_address
            else description.sdp
        )
        return {"type": "offer", "sdp": sdp, "slots": slots, "own": own}

    async def accept(self, sdp: str) -> None:
        if self.pc.signalingState != "have-local-offer":
            raise InvalidInput("no offer is waiting for an answer")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except OperationError as exc:
            raise InvalidInput(
                f"the answer accepts none of the offered codecs: {exc}", code="unsupported_codec"
            ) from None
        except (ValueError, AssertionError, KeyError, IndexError) as exc:
            raise InvalidInput(f"the answer is not usable SDP: {exc}") from None
        video = "video/h264" if self.video_codec == "h264" else "video/vp8"
        if not any(c.mimeType.lower() == video for c in wire.negotiated_codecs(self._own["video"])):
            raise InvalidInput(
                f"the answer does not accept {self.video_codec.upper()} video",
                code="unsupported_codec",
            )
        if not any(
            c.mimeType.lower() == "audio/opus" for c in wire.negotiated_codecs(self._own["audio"])
        ):
            raise InvalidInput("the answer does not accept Opus audio", code="unsupported_codec")

    def _publish(self) -> None:
        """Relay the participant's tracks, once connected: aiortc's receivers (and their decoder
        threads) run from then on, and end the tracks, and so the relays, when they stop."""
        for kind, transceiver in self._own.items():
            track = transceiver.receiver.track
            if track is not None and kind not in self.publications and not self._closed:
                self.publications[kind] = Publication(track)

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        from aiortc.sdp import candidate_from_sdp

        raw = candidate.get("candidate")
        if not raw:
            return
        if not isinstance(raw, str) or len(raw) > 1024:
            raise InvalidInput("candidate must be an SDP candidate line")
        try:
            parsed = candidate_from_sdp(raw.removeprefix("candidate:"))
        except (ValueError, IndexError) as exc:
            raise InvalidInput(f"candidate is not valid: {exc}") from None
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

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

    async def _watch_ice(self) -> None:
        await asyncio.sleep(self.ice_timeout)
        if self.state not in ("connected", "closed"):
            log.info("peer %s did not connect within %.0fs", self.participant_id, self.ice_timeout)
            await self._set_state("failed")
            await self.close()

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._publish()
            await self._set_state("connected")
        elif state in ("failed", "closed") and not self._closed:
            await self._set_state("failed")

    async def _set_state(self, state: PeerState) -> None:
        if self.state == state or self.state == "closed":
            return
        self.state = state
        if self.on_state is not None:
            try:
                await self.on_state(self, state)
            except Exception:
                log.exception("peer state listener failed")

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
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for task in list(self._tasks):
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await self.pc.close()
        if self.state != "failed":
            await self._set_state("closed")


QualityListener = Callable[[dict[str, dict[str, Any]]], Awaitable[None]]


class TranscodingRoom:
    """The media of one live session: its peers, and which publisher track feeds each slot."""

    def __init__(
        self, session_id: str, *, video_codec: str = "vp8", feedback_interval: float = 1.0
    ) -> None:
        self.session_id = session_id
        self.video_codec = video_codec
        self.feedback_interval = feedback_interval
        self.peers: dict[str, TranscodingPeer] = {}
        self.holders: dict[Seat, str] = {}
        self.moderation = Moderation()
        self.allowed: frozenset[Flow] = frozenset()
        self.on_quality: QualityListener | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                self._stats_loop(), name=f"transcode-{self.session_id}"
            )

    async def add(self, peer: TranscodingPeer) -> None:
        old = self.peers.get(peer.participant_id)
        self.peers[peer.participant_id] = peer
        if old is not None and old is not peer:
            await old.close()
        self.rewire()

    async def remove(self, participant_id: str) -> None:
        peer = self.peers.pop(participant_id, None)
        self.rewire()
        if peer is not None:
            await peer.close()

    async def route(self, holders: Mapping[Seat, str], moderation: Moderation) -> None:
        self.holders = dict(holders)
        self.moderation = moderation
        self.rewire()

    def rewire(self) -> None:
        """Feed every slot from the publisher track the policy allows, or from nothing (as
        media.router.Router.rewire decides it)."""
        self.allowed = flows(self.moderation, self.holders)
        for subscriber in self.peers.values():
            for (seat, kind), slot in subscriber.slots.items():
                holder = self.holders.get(seat)
                publisher = self.peers.get(holder) if holder is not None else None
                publication = None
                if (
                    publisher is not None
                    and not publisher.closed
                    and not subscriber.closed
                    and publisher.seats
                    and publisher.seats[0] == seat
                    and Flow(publisher.participant_id, subscriber.participant_id, kind)
                    in self.allowed
                ):
                    publication = publisher.publications.get(kind)
                if publication is None:
                    slot.track.feed(None, None)
                else:
                    slot.track.feed(publication.relay, publication.track)

    async def _stats_loop(self) -> None:
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

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for peer in list(self.peers.values()):
            await peer.close()
        self.peers.clear()


class TranscodingSfu:
    """aiortc's usual decode/relay/encode server behind the MediaPort of media.sfu.Sfu: the
    benchmark's baseline (``[media] mode = "transcode"``), never the product's media path.

    No CodecGuard: this path decodes and encodes by design."""

    def __init__(self, settings: MediaSettings | None = None) -> None:
        self.settings = settings or MediaSettings()
        self.rooms: dict[str, TranscodingRoom] = {}
        self.network = NetworkPolicy(
            host_address=self.settings.host_address,
            port_min=self.settings.port_min,
            port_max=self.settings.port_max,
        )
        self._listener: MediaListener | None = None
        self._started = False
        self.forwarded = 0  # packets sent by peers already closed (live ones: ``counts``)
        self.frames = dict.fromkeys(KINDS, 0)  # frames encoded for peers already closed

    def listen(self, listener: MediaListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        """Install the network policy (bind address, port range) in the running loop."""
        if not self._started:
            self.network.install()
            self._started = True
            log.warning("media mode 'transcode': decoding and re-encoding (benchmark baseline)")

    def _room(self, session_id: str, video_codec: str = "vp8") -> TranscodingRoom:
        room = self.rooms.get(session_id)
        if room is None:
            room = TranscodingRoom(
                session_id,
                video_codec=video_codec,
                feedback_interval=self.settings.feedback_interval,
            )

            async def on_quality(report: dict[str, dict[str, Any]], sid: str = session_id) -> None:
                if self._listener is not None:
                    await self._listener(sid, "", "quality", report)

            room.on_quality = on_quality
            room.start()
            self.rooms[session_id] = room
        return room

    def _peer_for(self, session_id: str, participant_id: str) -> TranscodingPeer:
        room = self.rooms.get(session_id)
        peer = room.peers.get(participant_id) if room is not None else None
        if peer is None:
            raise Conflict(
                "no media connection for this participant; join first", code="media_not_attached"
            )
        return peer

    def _closed_peer(self, peer: TranscodingPeer) -> None:
        self.forwarded += peer.sent
        for kind in KINDS:
            self.frames[kind] += peer.frames(kind)

    async def _new_peer(
        self, room: TranscodingRoom, participant_id: str, seats: tuple[Seat, ...]
    ) -> dict[str, Any]:
        session_id = room.session_id

        async def on_state(peer: TranscodingPeer, state: PeerState) -> None:
            if state == "connected" and not room.closed:
                room.rewire()  # its tracks are relayed from now on
            if self._listener is not None and room.peers.get(peer.participant_id) is peer:
                await self._listener(session_id, peer.participant_id, "state", {"state": state})

        peer = TranscodingPeer(
            participant_id,
            seats,
            video_codec=room.video_codec,
            ice_timeout=self.settings.ice_timeout,
            announced_address=self.settings.announced_address,
            on_state=on_state,
        )
        peer.on_closed = self._closed_peer
        try:
            offer = await peer.offer()
        except Exception:
            await peer.close()
            raise
        await room.add(peer)
        return offer

    async def attach(
        self,
        session_id: str,
        participant_id: str,
        seats: tuple[Seat, ...],
        *,
        video_codec: str = "vp8",
    ) -> dict[str, Any]:
        await self.start()
        return await self._new_peer(self._room(session_id, video_codec), participant_id, seats)

    async def restart(self, session_id: str, participant_id: str) -> dict[str, Any]:
        old = self._peer_for(session_id, participant_id)
        return await self._new_peer(self.rooms[session_id], participant_id, old.seats)

    async def answer(self, session_id: str, participant_id: str, sdp: str) -> None:
        peer = self._peer_for(session_id, participant_id)
        await peer.accept(sdp)
        self.rooms[session_id].rewire()

    async def candidate(
        self, session_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        await self._peer_for(session_id, participant_id).add_candidate(candidate)

    async def detach(self, session_id: str, participant_id: str) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            return
        await room.remove(participant_id)
        if not room.peers:
            await room.close()
            self.rooms.pop(session_id, None)

    async def route(
        self, session_id: str, holders: Mapping[Seat, str], moderation: Moderation
    ) -> None:
        room = self.rooms.get(session_id)
        if room is not None:
            await room.route(holders, moderation)

    async def end(self, session_id: str) -> None:
        room = self.rooms.pop(session_id, None)
        if room is not None:
            await room.close()

    async def close(self) -> None:
        for session_id in list(self.rooms):
            await self.end(session_id)
        if self._started:
            self.network.uninstall()
            self._started = False

    def counts(self) -> dict[str, int]:
        """For metrics: rooms (as "routers"), peers, fed slots (as "consumers"), RTP packets
        sent ("forwarded", refreshed every STATS_INTERVAL from aiortc's stats), and the frames
        handed to the per-consumer encoders ("video_frames", "audio_frames"): with the number
        of consumers, the frame rate the server kept up with."""
        peers = [p for r in self.rooms.values() for p in r.peers.values() if not p.closed]
        counts = {
            "routers": len(self.rooms),
            "peers": len(peers),
            "consumers": sum(
                1 for p in peers for s in p.slots.values() if s.track.source is not None
            ),
            "forwarded": self.forwarded + sum(p.sent for p in peers),
        }
        for kind in KINDS:
            counts[f"{kind}_frames"] = self.frames[kind] + sum(p.frames(kind) for p in peers)
        return counts

    def room(self, session_id: str) -> TranscodingRoom:
        room = self.rooms.get(session_id)
        if room is None:
            raise NotFound("no media for this session")
        return room
