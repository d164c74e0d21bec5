"""Routers per live session, created when the first participant attaches and closed when the
session ends or empties."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rooms.errors import Conflict
from rooms.seats import Seat

__all__ = ["Router", "Sfu"]


@dataclass
class Router:
    """One live session's media: who is attached, with which seats."""

    session_id: str
    participants: dict[str, tuple[Seat, ...]] = field(default_factory=dict)
    closed: bool = False

    async def close(self) -> None:
        self.participants.clear()
        self.closed = True


class Sfu:
    def __init__(self) -> None:
        self.routers: dict[str, Router] = {}

    async def attach(self, session_id: str, participant_id: str, seats: tuple[Seat, ...]) -> None:
        router = self.routers.setdefault(session_id, Router(session_id))
        router.participants[participant_id] = seats

    async def detach(self, session_id: str, participant_id: str) -> None:
        router = self.routers.get(session_id)
        if router is None:
            return
        router.participants.pop(participant_id, None)
        if not router.participants:
            await router.close()
            del self.routers[session_id]

    async def signal(
        self, session_id: str, participant_id: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        raise Conflict("media is not available on this server yet", code="media_unavailable")

    async def end(self, session_id: str) -> None:
        router = self.routers.pop(session_id, None)
        if router is not None:
            await router.close()

    async def close(self) -> None:
        for session_id in list(self.routers):
            await self.end(session_id)
