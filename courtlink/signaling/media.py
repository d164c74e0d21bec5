"""Media negotiation events: ``media.answer``, ``media.candidate``, ``media.restart``.

The payloads are parsed here and carried out by ``live.negotiation.MediaNegotiation``; the
server's offers go out through the hearing's outbox (``media.offer``).
"""

from __future__ import annotations

from typing import Any

from courtlink.live.negotiation import MediaNegotiation
from courtlink.signaling.messages import (
    Handler,
    MediaAnswer,
    MediaCandidate,
    MediaRestart,
    ok_ack,
    parse,
)

__all__ = ["MediaEvents"]


class MediaEvents:
    """The Socket.IO face of media negotiation."""

    def __init__(self, negotiation: MediaNegotiation) -> None:
        self.negotiation = negotiation

    def handlers(self) -> dict[str, Handler]:
        """Event name -> handler."""
        return {
            "media.answer": self._answer,
            "media.candidate": self._candidate,
            "media.restart": self._restart,
        }

    async def _answer(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(MediaAnswer, payload)
        await self.negotiation.answer(sid, request.sdp)
        return ok_ack()

    async def _candidate(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(MediaCandidate, payload)
        await self.negotiation.candidate(sid, request.model_dump())
        return ok_ack()

    async def _restart(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(MediaRestart, payload)
        await self.negotiation.restart(sid)
        return ok_ack()
