"""The judge's controls over a live session: lobby, admit, caucus, mute, remove, end.

Only whoever holds the judge seat (the case's judge, or the judge's own invite) may use them;
anyone else is refused and nothing changes. Each change is stored on the session and audited by
the Clerk, pushed to everyone in presence, and enforced by the SFU (the server stops forwarding;
it does not ask browsers to stop sending).
"""

from __future__ import annotations

from typing import Any

from courtlink.court.clerk import Clerk
from courtlink.court.routing import Caucus
from courtlink.court.seats import Seat
from courtlink.errors import Conflict, Forbidden, NotFound
from courtlink.live.attendee import Attendee
from courtlink.live.hearing import Hearing

__all__ = ["JudgeControls"]


class JudgeControls:
    """The judge's requests; each moderation change returns the session's new moderation
    (``Moderation.encode()``) as everyone was just told it."""

    def __init__(self, hearing: Hearing, clerk: Clerk) -> None:
        self.hearing = hearing
        self.clerk = clerk

    def _judge(self, connection: str) -> tuple[Attendee, str]:
        attendee = self.hearing.attendee(connection)
        if attendee.session_id is None:
            raise Conflict("not in a session")
        if Seat.JUDGE not in attendee.seats:
            raise Forbidden("only the judge may do this")
        return attendee, attendee.session_id

    async def _apply(self, connection: str, **change: Any) -> dict[str, Any]:
        attendee, session_id = self._judge(connection)
        await self.clerk.moderate(attendee.principal, session_id, **change)
        message = await self.hearing.broadcast(session_id)
        moderation: dict[str, Any] = message["moderation"]
        return moderation

    async def lobby(self, connection: str, enabled: bool) -> dict[str, Any]:
        """Creditors wait in the lobby until admitted (on), or come straight in (off)."""
        return await self._apply(connection, action="lobby", value=enabled)

    async def admit(self, connection: str, seat: Seat) -> dict[str, Any]:
        """Let the creditor in from the lobby."""
        return await self._apply(connection, action="admit", seat=seat)

    async def caucus(self, connection: str, side: Caucus | None) -> dict[str, Any]:
        """Talk with one side alone; None ends the caucus."""
        return await self._apply(connection, action="caucus", caucus=side)

    async def mute(self, connection: str, seat: Seat, muted: bool) -> dict[str, Any]:
        """Stop (or resume) forwarding the seat's audio to everyone."""
        return await self._apply(connection, action="mute", seat=seat, value=muted)

    async def remove(self, connection: str, seat: Seat) -> None:
        """Take whoever holds ``seat`` out of the session; the invite they came with is revoked."""
        attendee, session_id = self._judge(connection)
        holder = (await self.hearing.presence.snapshot(session_id)).get(seat)
        if holder is None:
            raise NotFound(f"nobody holds the {seat} seat")
        await self.clerk.remove_participant(attendee.principal, session_id, seat, holder.actor)
        await self.hearing.outbox.send(
            holder.sid, "removed", {"session": session_id, "reason": "removed_by_judge"}
        )
        await self.hearing.evict(session_id, holder, reason="removed")

    async def end(self, connection: str) -> None:
        """End the session for everyone."""
        attendee, session_id = self._judge(connection)
        await self.clerk.end_session(attendee.principal, session_id)
        await self.hearing.end(session_id)
