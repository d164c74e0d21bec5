"""The meeting point of the live session and media/.

The hearing (live/hearing.py) decides who is in a session and what the judge allows; media moves
the audio and video. Neither imports the other: live calls a ``MediaPort`` and media implements
one; web/ hands the implementation to the hearing at start-up. Offers and answers cross as plain
dicts, so signaling never sees aiortc and media never sees Socket.IO.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from courtlink.court.routing import Moderation
from courtlink.court.seats import Seat

__all__ = ["MediaListener", "MediaPort", "RecordingPort", "RecordingStopped"]

# media -> live: (session id, participant id, event name, payload), e.g. a peer that failed.
MediaListener = Callable[[str, str, str, dict[str, Any]], Awaitable[None]]

# Called once a session's recording stopped and its manifest is written: (session id, its
# directory). Sealing the recording goes behind it.
RecordingStopped = Callable[[str, Path], Awaitable[None]]


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


@runtime_checkable
class RecordingPort(Protocol):
    """A media server that records sessions (the SFU); one that does not (the benchmark's
    transcoding baseline) simply lacks these. A recorder that stops by itself (a full disk, a
    failure) tells the MediaListener: event "recording", ``{"recording": False, "reason"}``."""

    async def record(
        self,
        session_id: str,
        directory: Path,
        *,
        case_id: str,
        case_number: str,
        video_codec: str = "vp8",
    ) -> None:
        """Record every seat's audio and video into ``directory`` until ``stop_recording``.
        Raises OSError (errno ENOSPC: too little free space) when it cannot start."""

    async def stop_recording(self, session_id: str, reason: str = "ended") -> bool:
        """Stop: every file closed, the manifest written; whether it was recording."""
