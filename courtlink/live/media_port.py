"""The meeting point of the live session and media/.

The hearing (live/hearing.py) decides who is in a session and what the judge allows; media moves
the audio and video. Neither imports the other: live calls a ``MediaPort`` and media implements
one; web/ hands the implementation to the hearing at start-up. Offers and answers cross as plain
dicts, so signaling never sees aiortc and media never sees Socket.IO.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from courtlink.court.routing import Moderation
from courtlink.court.seats import Seat

__all__ = ["MediaListener", "MediaPort"]

# media -> live: (session id, participant id, event name, payload), e.g. a peer that failed.
MediaListener = Callable[[str, str, str, dict[str, Any]], Awaitable[None]]


class MediaPort(Protocol):
    """What the live session needs from a media server (the SFU implements it)."""

    def listen(self, listener: MediaListener) -> None:
        """Where media reports peer state changes and connection quality."""

    async def attach(
        self,
        session_id: str,
        participant_id: str,
        seats: tuple[Seat, ...],
        *,
        video_codec: str = "vp8",
    ) -> dict[str, Any]:
        """A participant took ``seats``: make its peer connection and return the server's offer
        (``{"type": "offer", "sdp", "slots": [{"mid", "seat", "kind"}], "own": {...}}``)."""

    async def restart(self, session_id: str, participant_id: str) -> dict[str, Any]:
        """Replace the participant's peer connection (its network dropped); a new offer."""

    async def answer(self, session_id: str, participant_id: str, sdp: str) -> None:
        """The participant's answer to the latest offer."""

    async def candidate(
        self, session_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        """A trickled ICE candidate of the participant."""

    async def detach(self, session_id: str, participant_id: str) -> None:
        """A participant left, dropped or was replaced: close its peer, producers, consumers."""

    async def route(
        self, session_id: str, holders: Mapping[Seat, str], moderation: Moderation
    ) -> None:
        """Who holds which seat and what the judge allows: start and stop forwarding to match."""

    async def end(self, session_id: str) -> None:
        """The session ended: close its router and every peer in it."""

    async def close(self) -> None:
        """Close everything; idempotent."""

    def counts(self) -> dict[str, int]:
        """Numbers for metrics (routers, peers, consumers, codec attempts)."""
