"""The meeting point of signaling/ and media/.

Signaling decides who is in a session; media moves their audio and video. Neither imports the
other: signaling calls a ``MediaPort`` and media implements one; web/ hands the implementation
to signaling at start-up. Messages crossing the port are plain dicts validated on each side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from rooms.seats import Seat

__all__ = ["MediaPort", "SendToParticipant"]

# How media pushes a message (an SDP offer, a stats update) to one participant's connection.
SendToParticipant = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class MediaPort(Protocol):
    async def attach(self, session_id: str, participant_id: str, seats: tuple[Seat, ...]) -> None:
        """A participant took ``seats``; media may start negotiating with it."""

    async def detach(self, session_id: str, participant_id: str) -> None:
        """A participant left, dropped or was replaced; close its peer connection and tracks."""

    async def signal(
        self, session_id: str, participant_id: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        """A negotiation message from the participant (answer, candidate, restart)."""

    async def end(self, session_id: str) -> None:
        """The session ended; close its router."""

    async def close(self) -> None:
        """Close everything; idempotent."""
