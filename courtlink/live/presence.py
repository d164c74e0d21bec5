"""Presence: who holds which seat of a live session, and each participant's state.

The generic logic (claiming a seat displaces its previous holder, releasing frees all seats of a
participant) lives in ``Presence``; a backend supplies only ``_transact`` (apply a change to one
session's seat map atomically) and ``_load``. ``MemoryPresence`` serves one process;
``RedisPresence`` serves several nodes, with a heartbeat per node so the seats of a node that
died free themselves.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from courtlink.court.seats import SEATS, Seat

__all__ = ["MemoryPresence", "Occupant", "ParticipantState", "Presence", "SeatMap"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """What others see of a participant besides its seat."""

    audio_muted: bool = False  # muted by the participant
    video_muted: bool = False
    connection: str = "signaling"  # signaling | connecting | connected | reconnecting


@dataclass(frozen=True, slots=True)
class Occupant:
    participant_id: str
    sid: str
    seats: tuple[Seat, ...]
    actor: str
    name: str
    node: str
    joined_at: float = field(default_factory=time.time)
    state: ParticipantState = ParticipantState()

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["seats"] = [str(s) for s in self.seats]
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Occupant:
        return cls(
            participant_id=value["participant_id"],
            sid=value["sid"],
            seats=tuple(Seat(s) for s in value["seats"]),
            actor=value["actor"],
            name=value["name"],
            node=value["node"],
            joined_at=float(value["joined_at"]),
            state=ParticipantState(**value["state"]),
        )


SeatMap = dict[Seat, Occupant]


class Presence:
    """Base class: the seat logic. Subclasses implement ``_transact`` and ``_load``."""

    node: str = "local"

    async def _transact(self, session_id: str, change: Callable[[SeatMap], T]) -> T:
        raise NotImplementedError

    async def _load(self, session_id: str) -> SeatMap:
        raise NotImplementedError

    async def claim(self, session_id: str, occupant: Occupant) -> list[Occupant]:
        """Seat ``occupant``; returns the participants it displaced (told and disconnected by
        the caller). A displaced participant loses every seat it held."""

        def change(seats: SeatMap) -> list[Occupant]:
            displaced: dict[str, Occupant] = {}
            for seat in occupant.seats:
                held = seats.get(seat)
                if held is not None and held.participant_id != occupant.participant_id:
                    displaced[held.participant_id] = held
            for seat in list(seats):
                if (
                    seats[seat].participant_id in displaced
                    or seats[seat].participant_id == occupant.participant_id
                ):
                    del seats[seat]
            for seat in occupant.seats:
                seats[seat] = occupant
            return list(displaced.values())

        return await self._transact(session_id, change)

    async def release(self, session_id: str, participant_id: str) -> Occupant | None:
        """Free every seat the participant holds; None when it held none (already replaced)."""

        def change(seats: SeatMap) -> Occupant | None:
            found = None
            for seat in list(seats):
                if seats[seat].participant_id == participant_id:
                    found = seats.pop(seat)
            return found

        return await self._transact(session_id, change)

    async def update(self, session_id: str, participant_id: str, **state: Any) -> Occupant | None:
        def change(seats: SeatMap) -> Occupant | None:
            updated = None
            for seat, held in list(seats.items()):
                if held.participant_id == participant_id:
                    updated = replace(held, state=replace(held.state, **state))
                    seats[seat] = updated
            return updated

        return await self._transact(session_id, change)

    async def snapshot(self, session_id: str) -> SeatMap:
        return await self._load(session_id)

    async def holder(self, session_id: str, participant_id: str) -> Occupant | None:
        for held in (await self._load(session_id)).values():
            if held.participant_id == participant_id:
                return held
        return None

    async def close(self) -> None:
        """Release resources; idempotent."""


def seat_view(seats: SeatMap) -> dict[str, Any]:
    """The ``seats`` member of a presence message: every seat, empty ones as null."""
    view: dict[str, Any] = {}
    for seat in SEATS:
        held = seats.get(seat)
        view[str(seat)] = (
            None
            if held is None
            else {
                "participant": held.participant_id,
                "name": held.name,
                "seats": [str(s) for s in held.seats],
                "state": asdict(held.state),
            }
        )
    return view


class MemoryPresence(Presence):
    """One process. The lock makes each change atomic across awaits."""

    def __init__(self) -> None:
        self._sessions: dict[str, SeatMap] = {}
        self._lock = asyncio.Lock()

    async def _transact(self, session_id: str, change: Callable[[SeatMap], T]) -> T:
        async with self._lock:
            seats = dict(self._sessions.get(session_id, {}))
            result = change(seats)
            if seats:
                self._sessions[session_id] = seats
            else:
                self._sessions.pop(session_id, None)
            return result

    async def _load(self, session_id: str) -> SeatMap:
        return dict(self._sessions.get(session_id, {}))


def encode(seats: SeatMap) -> str:
    return json.dumps(
        {str(seat): held.to_json() for seat, held in seats.items()}, ensure_ascii=False
    )


def decode(raw: str | bytes | None) -> SeatMap:
    if not raw:
        return {}
    return {Seat(seat): Occupant.from_json(held) for seat, held in json.loads(raw).items()}
