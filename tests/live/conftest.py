"""Fixtures for the live session's unit tests: a ``Hearing`` on the domain's SQLite services
(tests/court/conftest.py), ``MemoryPresence``, and fakes for the two ports it talks through: an
outbox that records what clients were told, and a media port that records what media was asked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from courtlink.court.audit import AuditEvent
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal
from courtlink.court.routing import Moderation
from courtlink.court.seats import Seat
from courtlink.live.hearing import Hearing
from courtlink.live.media_port import MediaListener
from courtlink.live.moderation import JudgeControls
from courtlink.live.negotiation import MediaNegotiation
from courtlink.live.presence import MemoryPresence
from courtlink.live.turn import BrowserIce
from courtlink.metrics import Metrics
from courtlink.web.services import Services
from tests.court.conftest import clock, world_services, world_template
from tests.helpers import PIN, World

__all__ = ["FakeMedia", "FakeOutbox", "Live", "clock", "world_services", "world_template"]


class FakeOutbox:
    """Records what the hearing tells clients. A connection that is disconnected without grace
    is handed to ``on_disconnect`` at once, as python-socketio does for a local client."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.listening: dict[str, set[str]] = {}
        self.disconnected: list[tuple[str, float]] = []
        self.on_disconnect: Hearing | None = None

    async def send(self, connection: str, event: str, message: dict[str, Any]) -> None:
        self.sent.append((connection, event, message))

    async def publish(self, session_id: str, event: str, message: dict[str, Any]) -> None:
        self.published.append((session_id, event, message))

    async def listen(self, connection: str, session_id: str) -> None:
        self.listening.setdefault(session_id, set()).add(connection)

    async def unlisten(self, connection: str, session_id: str) -> None:
        self.listening.get(session_id, set()).discard(connection)

    async def disconnect(self, connection: str, *, grace: float = 0.0) -> None:
        self.disconnected.append((connection, grace))
        if grace == 0 and self.on_disconnect is not None:
            await self.on_disconnect.disconnect(connection)

    def to(self, connection: str, event: str) -> list[dict[str, Any]]:
        """What ``connection`` was sent as ``event``, in order."""
        return [m for c, e, m in self.sent if c == connection and e == event]

    def presence(self) -> list[dict[str, Any]]:
        """Every presence message published, in order."""
        return [m for _, e, m in self.published if e == "presence"]


@dataclass
class FakeMedia:
    """A MediaPort that answers every attach and restart with an offer and records each call."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    routes: list[tuple[str, dict[Seat, str], Moderation]] = field(default_factory=list)
    listener: MediaListener | None = None

    def listen(self, listener: MediaListener) -> None:
        self.listener = listener

    async def attach(
        self,
        session_id: str,
        participant_id: str,
        seats: tuple[Seat, ...],
        *,
        video_codec: str = "vp8",
    ) -> dict[str, Any]:
        self.calls.append(("attach", session_id, participant_id))
        return {"type": "offer", "sdp": f"offer for {participant_id}", "slots": [], "own": {}}

    async def restart(self, session_id: str, participant_id: str) -> dict[str, Any]:
        self.calls.append(("restart", session_id, participant_id))
        return {"type": "offer", "sdp": f"again for {participant_id}", "slots": [], "own": {}}

    async def answer(self, session_id: str, participant_id: str, sdp: str) -> None:
        self.calls.append(("answer", session_id, participant_id, sdp))

    async def candidate(
        self, session_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        self.calls.append(("candidate", session_id, participant_id, candidate["candidate"]))

    async def detach(self, session_id: str, participant_id: str) -> None:
        self.calls.append(("detach", session_id, participant_id))

    async def route(
        self, session_id: str, holders: Mapping[Seat, str], moderation: Moderation
    ) -> None:
        self.routes.append((session_id, dict(holders), moderation))

    async def end(self, session_id: str) -> None:
        self.calls.append(("end", session_id))

    async def close(self) -> None:
        return None

    def counts(self) -> dict[str, int]:
        return {}

    def did(self, what: str) -> list[str]:
        """The participants ``what`` (attach, detach, restart...) was done to, in order."""
        return [call[2] for call in self.calls if call[0] == what]


@dataclass
class Live:
    """A hearing with its fakes, the judge's controls and media negotiation, on a built world."""

    services: Services
    world: World
    hearing: Hearing
    controls: JudgeControls
    negotiation: MediaNegotiation
    outbox: FakeOutbox
    media: FakeMedia
    metrics: Metrics
    _connections: int = 0

    @property
    def session_id(self) -> str:
        return self.world.session.id

    async def principal(self, who: str) -> Principal:
        """``judge-account`` (the judge's login), or the invite of ``who``."""
        if who == "judge-account":
            return AccountPrincipal(self.world.judge)
        return InvitePrincipal(await self.services.clerk.check_invite(self.world.tokens[who]))

    async def consent(self, who: str) -> None:
        """The party (for the terminal, the officer with the PIN) consents."""
        extra: dict[str, str] = {}
        if who == "terminal":
            extra = {"officer_username": "officer", "officer_pin": PIN}
        principal = await self.principal(who)
        assert isinstance(principal, InvitePrincipal)
        await self.services.clerk.give_consent(principal, **extra)

    async def connect(self, who: str) -> str:
        """A connection authenticated as ``who`` (authenticated again at each join, as the edge
        does: a revoked invite fails then)."""
        self._connections += 1
        connection = f"{who}#{self._connections}"

        async def reauthenticate() -> Principal:
            return await self.principal(who)

        self.hearing.connect(connection, await self.principal(who), reauthenticate)
        return connection

    async def joined(self, who: str, seats: list[Seat] | None = None) -> tuple[str, dict[str, Any]]:
        """Connected and joined; the connection and the answer to the join."""
        connection = await self.connect(who)
        return connection, await self.hearing.join(connection, self.session_id, seats)

    async def audit(self, *kinds: str) -> list[AuditEvent]:
        async with self.services.store.read() as tx:
            events = await tx.audit_events(session_id=self.session_id)
        return [e for e in events if not kinds or e.kind in kinds]

    def gauge(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(name)
        return 0.0 if value is None else value


def ice(participant: str) -> list[dict[str, Any]]:
    return [{"urls": ["stun:stun.example"], "username": participant}]


@pytest.fixture
async def live(world_services: tuple[Services, World]) -> AsyncIterator[Live]:
    services, world = world_services
    outbox, media, metrics = FakeOutbox(), FakeMedia(), Metrics()
    presence = MemoryPresence()
    hearing = Hearing(
        clerk=services.clerk,
        presence=presence,
        outbox=outbox,
        metrics=metrics,
        media=media,
        ice=BrowserIce(servers=ice, transport_policy="relay"),
    )
    outbox.on_disconnect = hearing
    controls = JudgeControls(hearing, services.clerk)
    negotiation = MediaNegotiation(hearing, media)
    yield Live(services, world, hearing, controls, negotiation, outbox, media, metrics)
    await hearing.close()
    await hearing.close()  # idempotent
    await presence.close()
