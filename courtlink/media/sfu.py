"""The SFU: one Router per live session; implements courtlink.live.media_port.MediaPort."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from courtlink.court.routing import Moderation
from courtlink.court.seats import Seat
from courtlink.errors import Conflict, NotFound
from courtlink.live.media_port import MediaListener
from courtlink.media.connection import PeerState, SlotConnection
from courtlink.media.guard import CodecGuard
from courtlink.media.layers import LayerSettings
from courtlink.media.network import NetworkPolicy
from courtlink.media.peer import Peer
from courtlink.media.recording import Recorder, RecordingInfo, RecordingWriter
from courtlink.media.router import Router, SessionRouter

__all__ = ["MediaServer", "MediaSettings", "Sfu"]

log = logging.getLogger("courtlink.media")


@dataclass(frozen=True)
class MediaSettings:
    ice_timeout: float = 20.0
    announced_address: str = ""
    host_address: str = ""
    port_min: int = 0
    port_max: int = 0
    feedback_interval: float = 1.0
    # Refuse codecs in this process (off where the same process also runs aiortc clients that
    # decode, as some tests do).
    guard_codecs: bool = True
    # A recording stops (and refuses to start) below this much free space on its disk.
    min_free_mb: int = 0
    # Per-viewer video layers (media/layers.py).
    layers: LayerSettings = field(default_factory=LayerSettings)


R = TypeVar("R", bound=SessionRouter[Any])
P = TypeVar("P", bound=SlotConnection)


class MediaServer(Generic[R, P]):
    """courtlink.live.media_port.MediaPort over one router per live session and one connection per
    participant: the port's bookkeeping (attach, restart, answer, candidates, detach, route,
    end), apart from how media moves. Subclasses (``Sfu``) make the routers and connections and
    count what they did."""

    def __init__(self, settings: MediaSettings | None = None) -> None:
        self.settings = settings or MediaSettings()
        self.routers: dict[str, R] = {}
        self.network = NetworkPolicy(
            host_address=self.settings.host_address,
            port_min=self.settings.port_min,
            port_max=self.settings.port_max,
        )
        self._listener: MediaListener | None = None
        self._started = False

    # What subclasses fill in --------------------------------------------------------------

    def _make_router(self, session_id: str, video_codec: str) -> R:
        raise NotImplementedError

    def _make_peer(
        self,
        router: R,
        participant_id: str,
        seats: tuple[Seat, ...],
        on_state: Callable[[Any, PeerState], Awaitable[None]],
    ) -> P:
        raise NotImplementedError

    def _starting(self) -> None:
        """Once, when the first session's media starts."""

    def _stopping(self) -> None:
        """When the server closes, after every session ended."""

    def _retiring(self, peer: P) -> None:
        """A participant leaves: count what its connection did."""

    def counts(self) -> dict[str, int]:
        raise NotImplementedError

    # The port ---------------------------------------------------------------------------

    def listen(self, listener: MediaListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        """Install the network policy (bind address, port range) in the running loop."""
        if not self._started:
            self.network.install()
            self._starting()
            self._started = True

    def _router(self, session_id: str, video_codec: str = "vp8") -> R:
        router = self.routers.get(session_id)
        if router is None:
            router = self._make_router(session_id, video_codec)

            async def on_quality(report: dict[str, dict[str, Any]], sid: str = session_id) -> None:
                if self._listener is not None:
                    await self._listener(sid, "", "quality", report)

            router.on_quality = on_quality
            router.start()
            self.routers[session_id] = router
        return router

    def _peer_for(self, session_id: str, participant_id: str) -> P:
        router = self.routers.get(session_id)
        peer: P | None = router.peers.get(participant_id) if router is not None else None
        if peer is None:
            raise Conflict(
                "no media connection for this participant; join first", code="media_not_attached"
            )
        return peer

    async def _new_peer(
        self, router: R, participant_id: str, seats: tuple[Seat, ...]
    ) -> dict[str, Any]:
        session_id = router.session_id

        async def on_state(peer: P, state: PeerState) -> None:
            if self._listener is not None and router.peers.get(peer.participant_id) is peer:
                await self._listener(session_id, peer.participant_id, "state", {"state": state})

        peer = self._make_peer(router, participant_id, seats, on_state)
        try:
            offer = await peer.offer()
        except Exception:
            await peer.close()
            raise
        await router.add(peer)
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
        return await self._new_peer(self._router(session_id, video_codec), participant_id, seats)

    async def restart(self, session_id: str, participant_id: str) -> dict[str, Any]:
        old = self._peer_for(session_id, participant_id)
        return await self._new_peer(self.routers[session_id], participant_id, old.seats)

    async def answer(self, session_id: str, participant_id: str, sdp: str) -> None:
        peer = self._peer_for(session_id, participant_id)
        await peer.accept(sdp)
        self.routers[session_id].rewire()

    async def candidate(
        self, session_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        await self._peer_for(session_id, participant_id).add_candidate(candidate)

    async def detach(self, session_id: str, participant_id: str) -> None:
        router = self.routers.get(session_id)
        if router is None:
            return
        peer = router.peers.get(participant_id)
        if peer is not None:
            self._retiring(peer)
        await router.remove(participant_id)
        if not router.peers:
            await router.close()
            self.routers.pop(session_id, None)

    async def route(
        self, session_id: str, holders: Mapping[Seat, str], moderation: Moderation
    ) -> None:
        router = self.routers.get(session_id)
        if router is not None:
            await router.route(holders, moderation)

    async def end(self, session_id: str) -> None:
        router = self.routers.pop(session_id, None)
        if router is not None:
            await router.close()

    async def close(self) -> None:
        for session_id in list(self.routers):
            await self.end(session_id)
        if self._started:
            self.network.uninstall()
            self._stopping()
            self._started = False

    def router(self, session_id: str) -> R:
        router = self.routers.get(session_id)
        if router is None:
            raise NotFound("no media for this session")
        return router


class Sfu(MediaServer[Router, Peer]):
    """The product's media path: RTP forwarded without decoding (docs/architecture.md)."""

    def __init__(
        self,
        settings: MediaSettings | None = None,
        *,
        observe_latency: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(settings)
        # Called with the server-added latency (seconds, receive to last send) of sampled packets.
        self.observe_latency = observe_latency
        self.guard = CodecGuard()
        self.forwarded = 0  # by peers already closed (live ones are summed in ``counts``)
        self.recordings: dict[str, Recorder] = {}
        # One thread writes every recording (it runs while there is one).
        self.recording_writer = RecordingWriter()
        self._tasks: set[asyncio.Future[None]] = set()

    def _make_router(self, session_id: str, video_codec: str) -> Router:
        router = Router(
            session_id,
            video_codec=video_codec,
            feedback_interval=self.settings.feedback_interval,
            layers=self.settings.layers,
        )
        # The session's participants all left and one came back: a new router, the same
        # recording.
        router.recorder = self.recordings.get(session_id)
        return router

    # Recording (courtlink.live.media_port.RecordingPort) ---------------------------------

    async def record(
        self,
        session_id: str,
        directory: Path,
        *,
        case_id: str,
        case_number: str,
        video_codec: str = "vp8",
    ) -> None:
        """Record the session into ``directory`` from now until ``stop_recording``; a second
        call is a no-op. Raises OSError (ENOSPC when the disk has less than
        ``min_free_mb`` free; FileExistsError when the directory holds a finished
        recording)."""
        if session_id in self.recordings:
            return
        info = RecordingInfo(session_id, case_id, case_number, video_codec)

        def on_stopped(reason: str) -> None:
            self._recording_stopped(session_id, recorder, reason)

        recorder = Recorder(
            directory,
            info,
            min_free_mb=self.settings.min_free_mb,
            on_stopped=on_stopped,
            writer=self.recording_writer,
        )
        await recorder.start()
        self.recordings[session_id] = recorder
        router = self.routers.get(session_id)
        if router is not None:
            router.recorder = recorder
            router.feed_recorder()

    async def stop_recording(self, session_id: str, reason: str = "ended") -> bool:
        """Stop the session's recording (files closed, manifest written); whether there was
        one. Idempotent."""
        recorder = self.recordings.pop(session_id, None)
        if recorder is None:
            return False
        router = self.routers.get(session_id)
        if router is not None:
            router.recorder = None
        await recorder.stop(reason)
        return True

    def _recording_stopped(self, session_id: str, recorder: Recorder, reason: str) -> None:
        """The recorder stopped by itself (a full disk, a failure): let it go, and tell the
        live session."""
        if self.recordings.get(session_id) is not recorder:
            return
        del self.recordings[session_id]
        router = self.routers.get(session_id)
        if router is not None:
            router.recorder = None
        if self._listener is not None:
            task = asyncio.ensure_future(
                self._listener(session_id, "", "recording", {"recording": False, "reason": reason})
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def end(self, session_id: str) -> None:
        await self.stop_recording(session_id)
        await super().end(session_id)

    async def close(self) -> None:
        """Stop every recording (files whole, manifests written), then close every session;
        idempotent."""
        for session_id in list(self.recordings):
            await self.stop_recording(session_id)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().close()

    def _make_peer(
        self,
        router: Router,
        participant_id: str,
        seats: tuple[Seat, ...],
        on_state: Callable[[Any, PeerState], Awaitable[None]],
    ) -> Peer:
        return Peer(
            participant_id,
            seats,
            video_codec=router.video_codec,
            ice_timeout=self.settings.ice_timeout,
            announced_address=self.settings.announced_address,
            on_state=on_state,
            observe_latency=self.observe_latency,
            layers=self.settings.layers,
        )

    def _starting(self) -> None:
        if self.settings.guard_codecs:
            self.guard.install()

    def _stopping(self) -> None:
        self.guard.uninstall()

    def _retiring(self, peer: Peer) -> None:
        self.forwarded += sum(c.forwarded for c in peer.consumers.values())

    def counts(self) -> dict[str, int]:
        """For metrics: routers, peers, producers and consumers fed, codec attempts."""
        # A failed peer stays in its router, closed, until the participant restarts or leaves.
        peers = [p for r in self.routers.values() for p in r.peers.values() if not p.closed]
        return {
            "routers": len(self.routers),
            "peers": len(peers),
            "consumers": sum(
                1 for p in peers for c in p.consumers.values() if c.source is not None
            ),
            "codec_attempts": self.guard.attempts,
        }
