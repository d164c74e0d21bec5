"""The judge's controls over a live session: lobby, admit, caucus, mute, remove, end.

Only whoever holds the judge seat (the case's judge, or the judge's own invite) may use them;
anyone else gets an error ack and nothing changes. Each change is stored on the session and
audited by the Clerk, pushed to everyone in presence, and enforced by the SFU (the server stops
forwarding; it does not ask browsers to stop sending).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from courtlink.court.seats import Seat
from courtlink.errors import Conflict, Forbidden, NotFound
from courtlink.signaling.messages import (
    CaucusRequest,
    EndRequest,
    LobbyRequest,
    MuteRequest,
    SeatRequest,
    ok_ack,
    parse,
)

if TYPE_CHECKING:
    from courtlink.signaling.server import Connection, SignalingServer

__all__ = ["Moderation"]


class Moderation:
    def __init__(self, server: SignalingServer) -> None:
        self.server = server

    def handlers(self) -> dict[str, Any]:
        return {
            "lobby": self._lobby,
            "admit": self._admit,
            "caucus": self._caucus,
            "mute": self._mute,
            "remove": self._remove,
            "end": self._end,
        }

    def _judge(self, sid: str) -> Connection:
        conn = self.server._connection(sid)
        if conn.session_id is None:
            raise Conflict("not in a session")
        if Seat.JUDGE not in conn.seats:
            raise Forbidden("only the judge may do this")
        return conn

    async def _apply(self, conn: Connection, **change: Any) -> dict[str, Any]:
        assert conn.session_id is not None
        await self.server.clerk.moderate(conn.principal, conn.session_id, **change)
        message = await self.server.broadcast(conn.session_id)
        return ok_ack({"moderation": message["moderation"]})

    async def _lobby(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(LobbyRequest, payload)
        return await self._apply(self._judge(sid), action="lobby", value=request.enabled)

    async def _admit(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(SeatRequest, payload)
        return await self._apply(self._judge(sid), action="admit", seat=request.seat)

    async def _caucus(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(CaucusRequest, payload)
        return await self._apply(self._judge(sid), action="caucus", caucus=request.side)

    async def _mute(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(MuteRequest, payload)
        return await self._apply(
            self._judge(sid), action="mute", seat=request.seat, value=request.muted
        )

    async def _remove(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(SeatRequest, payload)
        conn = self._judge(sid)
        assert conn.session_id is not None
        holder = (await self.server.presence.snapshot(conn.session_id)).get(request.seat)
        if holder is None:
            raise NotFound(f"nobody holds the {request.seat} seat")
        await self.server.clerk.remove_participant(
            conn.principal, conn.session_id, request.seat, holder.actor
        )
        await self.server.sio.emit(
            "removed", {"session": conn.session_id, "reason": "removed_by_judge"}, to=holder.sid
        )
        await self.server.evict(conn.session_id, holder, reason="removed")
        return ok_ack()

    async def _end(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(EndRequest, payload)
        conn = self._judge(sid)
        assert conn.session_id is not None
        await self.server.clerk.end_session(conn.principal, conn.session_id)
        await self.server.end_session(conn.session_id)
        return ok_ack()
