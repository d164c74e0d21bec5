"""A Router: the media of one live session (its Peers, and what feeds each slot)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from media.peer import Peer
from rooms.routing import Flow, Moderation, flows
from rooms.seats import Seat

__all__ = ["Router"]

log = logging.getLogger("courtlink.media")

QualityListener = Callable[[dict[str, dict[str, Any]]], Awaitable[None]]


class Router:
    """Holds the session's peers and wires Consumers to Producers as the policy allows."""

    def __init__(
        self, session_id: str, *, video_codec: str = "vp8", feedback_interval: float = 1.0
    ) -> None:
        self.session_id = session_id
        self.video_codec = video_codec
        self.feedback_interval = feedback_interval
        self.peers: dict[str, Peer] = {}
        self.holders: dict[Seat, str] = {}
        self.moderation = Moderation()
        self.allowed: frozenset[Flow] = frozenset()
        self.on_quality: QualityListener | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                self._feedback_loop(), name=f"router-{self.session_id}"
            )

    async def add(self, peer: Peer) -> None:
        old = self.peers.get(peer.participant_id)
        self.peers[peer.participant_id] = peer
        if old is not None and old is not peer:
            await old.close()
        self.rewire()

    async def remove(self, participant_id: str) -> None:
        peer = self.peers.pop(participant_id, None)
        if peer is not None:
            await peer.close()
        self.rewire()

    async def route(self, holders: Mapping[Seat, str], moderation: Moderation) -> None:
        self.holders = dict(holders)
        self.moderation = moderation
        self.rewire()
        # New subscriptions start on a key frame; ask publishers right away.
        for peer in self.peers.values():
            for consumer in peer.consumers.values():
                if consumer.waiting_keyframe and consumer.source is not None:
                    consumer.source.want_keyframe()

    def rewire(self) -> None:
        """Point every slot of every peer at the producer the policy allows, or at nothing."""
        self.allowed = flows(self.moderation, self.holders)
        for subscriber in self.peers.values():
            for (seat, kind), consumer in subscriber.consumers.items():
                source = None
                holder = self.holders.get(seat)
                publisher = self.peers.get(holder) if holder is not None else None
                # A participant holding two seats feeds only the slot of its first seat; a peer
                # closed after failing neither feeds nor is fed until it is replaced.
                if (
                    publisher is not None
                    and not publisher.closed
                    and not subscriber.closed
                    and publisher.seats
                    and publisher.seats[0] == seat
                    and Flow(publisher.participant_id, subscriber.participant_id, kind)
                    in self.allowed
                ):
                    source = publisher.producers[kind]
                consumer.switch(source)

    async def _feedback_loop(self) -> None:
        while True:
            await asyncio.sleep(self.feedback_interval)
            try:
                report: dict[str, dict[str, Any]] = {}
                for peer in list(self.peers.values()):
                    await peer.producers["video"].send_remb()
                    for consumer in peer.consumers.values():
                        consumer.sync_reports()
                    report[peer.participant_id] = peer.quality()
                if self.on_quality is not None and report:
                    await self.on_quality(report)
            except Exception:
                log.exception("router feedback failed")

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
