"""Media negotiation over Socket.IO: the server's offers out, the participant's answers and
candidates in, and a restart when a participant's network dropped.

The server is the only offerer. After a join it sends ``media.offer`` with the slots (which mid
carries which seat's audio or video) and the ICE servers the browser should use; the client
answers with ``media.answer``. ``media.restart`` replaces the participant's peer connection with a
new one for the same seats and slots (aiortc cannot restart ICE).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from courtlink.errors import Conflict
from courtlink.live.media_port import MediaPort
from courtlink.signaling.messages import MediaAnswer, MediaCandidate, MediaRestart, ok_ack, parse

if TYPE_CHECKING:
    from courtlink.signaling.server import Connection, SignalingServer

__all__ = ["IceServers", "MediaSignaling"]

log = logging.getLogger("courtlink.signaling")

# participant id -> the ICE servers (STUN, TURN with fresh credentials) for its browser
IceServers = Callable[[str], list[dict[str, Any]]]


class MediaSignaling:
    def __init__(
        self,
        server: SignalingServer,
        media: MediaPort,
        *,
        ice_servers: IceServers | None = None,
        ice_transport_policy: str = "all",
    ) -> None:
        self.server = server
        self.media = media
        self.ice_servers = ice_servers or (lambda _participant: [])
        self.ice_transport_policy = ice_transport_policy
        media.listen(self.on_media_event)

    def handlers(self) -> dict[str, Any]:
        return {
            "media.answer": self._answer,
            "media.candidate": self._candidate,
            "media.restart": self._restart,
        }

    def _seated(self, sid: str) -> tuple[Connection, str, str]:
        """The connection, its session and its participant; Conflict when not seated."""
        conn = self.server._connection(sid)
        if conn.participant_id is None or conn.session_id is None:
            raise Conflict("not in a session")
        return conn, conn.session_id, conn.participant_id

    async def send_offer(self, sid: str, participant_id: str, offer: dict[str, Any]) -> None:
        message = dict(offer)
        message["ice_servers"] = self.ice_servers(participant_id)
        message["ice_transport_policy"] = self.ice_transport_policy
        await self.server.sio.emit("media.offer", message, to=sid)

    async def _answer(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(MediaAnswer, payload)
        _, session_id, participant_id = self._seated(sid)
        await self.media.answer(session_id, participant_id, request.sdp)
        await self.server.presence.update(session_id, participant_id, connection="connecting")
        return ok_ack()

    async def _candidate(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(MediaCandidate, payload)
        _, session_id, participant_id = self._seated(sid)
        await self.media.candidate(session_id, participant_id, request.model_dump())
        return ok_ack()

    async def _restart(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(MediaRestart, payload)
        _, session_id, participant_id = self._seated(sid)
        offer = await self.media.restart(session_id, participant_id)
        await self.send_offer(sid, participant_id, offer)
        await self.server.presence.update(session_id, participant_id, connection="reconnecting")
        await self.server.broadcast(session_id)
        return ok_ack()

    async def on_media_event(
        self, session_id: str, participant_id: str, kind: str, data: dict[str, Any]
    ) -> None:
        """From the SFU: a peer's state changed, or the periodic quality report."""
        if kind == "quality":
            await self.server.sio.emit("media.quality", data, room=f"session:{session_id}")
            return
        if kind == "state":
            state = str(data.get("state"))
            held = await self.server.presence.update(session_id, participant_id, connection=state)
            if held is None:
                return
            if state == "failed":
                await self.server.sio.emit("media.state", {"state": "failed"}, to=held.sid)
            await self.server.broadcast(session_id)
