"""Media negotiation of a seated participant: the answers and candidates its browser sends, a
restart when its network dropped, and what the SFU reports about its peer.

The server is the only offerer: the hearing sends the first offer after a join; ``restart``
replaces the participant's peer connection with a new one for the same seats and slots (aiortc
cannot restart ICE) and sends that one's offer.
"""

from __future__ import annotations

from typing import Any

from courtlink.live.hearing import Hearing
from courtlink.live.media_port import MediaPort

__all__ = ["MediaNegotiation"]


class MediaNegotiation:
    """Between a participant's client and the SFU; listens to the SFU from construction on."""

    def __init__(self, hearing: Hearing, media: MediaPort) -> None:
        self.hearing = hearing
        self.media = media
        media.listen(self.on_media_event)

    async def answer(self, connection: str, sdp: str) -> None:
        """The participant's answer to the latest offer."""
        _, session_id, participant_id = self.hearing.seated(connection)
        await self.media.answer(session_id, participant_id, sdp)
        await self.hearing.presence.update(session_id, participant_id, connection="connecting")

    async def candidate(self, connection: str, candidate: dict[str, Any]) -> None:
        """A trickled ICE candidate of the participant's browser."""
        _, session_id, participant_id = self.hearing.seated(connection)
        await self.media.candidate(session_id, participant_id, candidate)

    async def restart(self, connection: str) -> None:
        """A new peer connection for the participant, and its offer; others see it
        reconnecting until it is connected again."""
        _, session_id, participant_id = self.hearing.seated(connection)
        offer = await self.media.restart(session_id, participant_id)
        await self.hearing.send_offer(connection, participant_id, offer)
        await self.hearing.presence.update(session_id, participant_id, connection="reconnecting")
        await self.hearing.broadcast(session_id)

    async def on_media_event(
        self, session_id: str, participant_id: str, kind: str, data: dict[str, Any]
    ) -> None:
        """From the SFU: a peer's state changed, the periodic quality report, or a recording
        that stopped by itself (a full disk, a failure)."""
        outbox = self.hearing.outbox
        if kind == "recording":
            await self.hearing.recording_stopped(session_id, str(data.get("reason", "failed")))
            return
        if kind == "quality":
            await outbox.publish(session_id, "media.quality", data)
            return
        if kind == "state":
            state = str(data.get("state"))
            held = await self.hearing.presence.update(session_id, participant_id, connection=state)
            if held is None:
                return
            if state == "failed":
                await outbox.send(held.sid, "media.state", {"state": "failed"})
            await self.hearing.broadcast(session_id)
