"""The media of one live session: its participants' connections, and what feeds each slot.

``SessionRouter`` holds the session's connections and applies the routing policy
(courtlink.court.routing.flows) to every slot, whatever feeds a slot; ``Router`` is the SFU's
(slots fed by Producers through Consumers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from courtlink.court.routing import Flow, Moderation, flows
from courtlink.court.seats import Seat
from courtlink.media.connection import SlotConnection
from courtlink.media.layers import LayerSettings
from courtlink.media.peer import Peer
from courtlink.media.recording import Recorder

__all__ = ["Router", "SessionRouter"]

log = logging.getLogger("courtlink.media")

QualityListener = Callable[[dict[str, dict[str, Any]]], Awaitable[None]]
P = TypeVar("P", bound=SlotConnection)


class SessionRouter(Generic[P]):
    """Holds one session's connections and feeds every slot from the publisher the policy
    allows, or from nothing. Subclasses say how a slot is fed (``_feed``) and what runs in the
    background while the session lives (``_loop``)."""

    def __init__(
        self, session_id: str, *, video_codec: str = "vp8", feedback_interval: float = 1.0
    ) -> None:
        self.session_id = session_id
        self.video_codec = video_codec
        self.feedback_interval = feedback_interval
        self.peers: dict[str, P] = {}
        self.holders: dict[Seat, str] = {}
        self.moderation = Moderation()
        self.allowed: frozenset[Flow] = frozenset()
        self.on_quality: QualityListener | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def _feed(self, subscriber: P, seat: Seat, kind: str, publisher: P | None) -> None:
        raise NotImplementedError

    async def _loop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"router-{self.session_id}")

    async def add(self, peer: P) -> None:
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
        """Feed every slot of every connection from the publisher the policy allows, or from
        nothing."""
        self.allowed = flows(self.moderation, self.holders)
        for subscriber in self.peers.values():
            for seat, kind in subscriber.slot_transceivers:
                holder = self.holders.get(seat)
                publisher = self.peers.get(holder) if holder is not None else None
                # A participant holding two seats feeds only the slot of its first seat; a peer
                # closed after failing neither feeds nor is fed until it is replaced.
                allowed = (
                    publisher is not None
                    and not publisher.closed
                    and not subscriber.closed
                    and publisher.seats
                    and publisher.seats[0] == seat
                    and Flow(publisher.participant_id, subscriber.participant_id, kind)
                    in self.allowed
                )
                self._feed(subscriber, seat, kind, publisher if allowed else None)

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


class Router(SessionRouter[Peer]):
    """The SFU's: wires Consumers to Producers, and once a second sends REMB and reports each
    connection's quality (each Peer sends its own RTCP reports). While the session is recorded
    it also hands every publisher's Producers to the ``recorder``, by the publisher's first
    seat, whatever the routing forwards (the record is of what each seat sent)."""

    recorder: Recorder | None = None

    def __init__(
        self,
        session_id: str,
        *,
        video_codec: str = "vp8",
        feedback_interval: float = 1.0,
        layers: LayerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(session_id, video_codec=video_codec, feedback_interval=feedback_interval)
        self.layers = layers or LayerSettings()
        self.clock = clock
        self._measured_at: float | None = None

    def adapt(self) -> None:
        """Once a second: each publisher's rate per layer, then each subscriber's share of it
        (media/layers.py)."""
        now = self.clock()
        interval = now - self._measured_at if self._measured_at is not None else 0.0
        self._measured_at = now
        peers = [peer for peer in self.peers.values() if not peer.closed]
        for peer in peers:
            for producer in peer.producers.values():
                producer.measure(interval, self.layers)
        for peer in peers:
            peer.adapt(now)

    def rewire(self) -> None:
        super().rewire()
        self.feed_recorder()

    def feed_recorder(self) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        for peer in self.peers.values():
            if peer.closed or not peer.seats:
                continue
            for kind, producer in peer.producers.items():
                if recorder.feed(str(peer.seats[0]), kind, producer) and kind == "video":
                    producer.want_keyframe()  # the file starts at a key frame

    def _feed(self, subscriber: Peer, seat: Seat, kind: str, publisher: Peer | None) -> None:
        source = publisher.producers[kind] if publisher is not None else None
        subscriber.consumers[(seat, kind)].switch(source)

    async def route(self, holders: Mapping[Seat, str], moderation: Moderation) -> None:
        await super().route(holders, moderation)
        # New subscriptions start on a key frame; ask publishers right away.
        for peer in self.peers.values():
            for consumer in peer.consumers.values():
                if consumer.waiting_keyframe and consumer.source is not None:
                    consumer.source.want_keyframe()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.feedback_interval)
            try:
                report: dict[str, dict[str, Any]] = {}
                self.adapt()
                for peer in list(self.peers.values()):
                    await peer.producers["video"].send_remb(self.layers)
                    report[peer.participant_id] = peer.quality()
                if self.on_quality is not None and report:
                    await self.on_quality(report)
            except Exception:
                log.exception("router feedback failed")
