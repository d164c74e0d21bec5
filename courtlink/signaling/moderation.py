"""The judge's events: ``lobby``, ``admit``, ``caucus``, ``mute``, ``remove``, ``end``.

The payloads are parsed here and carried out by ``live.moderation.JudgeControls``, which refuses
anyone but the holder of the judge seat.
"""

from __future__ import annotations

from typing import Any

from courtlink.live.moderation import JudgeControls
from courtlink.signaling.messages import (
    CaucusRequest,
    EndRequest,
    Handler,
    LobbyRequest,
    MuteRequest,
    SeatRequest,
    ok_ack,
    parse,
)

__all__ = ["ModerationEvents"]


class ModerationEvents:
    """The Socket.IO face of the judge's controls."""

    def __init__(self, controls: JudgeControls) -> None:
        self.controls = controls

    def handlers(self) -> dict[str, Handler]:
        """Event name -> handler."""
        return {
            "lobby": self._lobby,
            "admit": self._admit,
            "caucus": self._caucus,
            "mute": self._mute,
            "remove": self._remove,
            "end": self._end,
        }

    async def _lobby(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(LobbyRequest, payload)
        return ok_ack({"moderation": await self.controls.lobby(sid, request.enabled)})

    async def _admit(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(SeatRequest, payload)
        return ok_ack({"moderation": await self.controls.admit(sid, request.seat)})

    async def _caucus(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(CaucusRequest, payload)
        return ok_ack({"moderation": await self.controls.caucus(sid, request.side)})

    async def _mute(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(MuteRequest, payload)
        moderation = await self.controls.mute(sid, request.seat, request.muted)
        return ok_ack({"moderation": moderation})

    async def _remove(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(SeatRequest, payload)
        await self.controls.remove(sid, request.seat)
        return ok_ack()

    async def _end(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(EndRequest, payload)
        await self.controls.end(sid)
        return ok_ack()
