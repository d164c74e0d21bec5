"""The hearing: who may take which seat of a live session, and what follows when they do.

``Hearing`` carries out every change of a live session, whatever transport brought it: it
authorizes a join through the Clerk, claims the seats in ``Presence`` (displacing an older
holder), writes the audit events, attaches the participant's media through the ``MediaPort``,
settles the session's state, and tells the clients through the ``Outbox`` what changed. It keeps
the connections of this node (``Attendee``); seat occupancy lives in ``Presence``, shared by every
node. A refused request raises a ``CourtlinkError`` and changes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.cases import Case
from courtlink.court.clerk import Clerk
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal
from courtlink.court.seats import Seat
from courtlink.court.sessions import Session, SessionState
from courtlink.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated
from courtlink.live.attendee import Attendee, Reauthenticate, display_name
from courtlink.live.media_port import MediaPort, RecordingPort, RecordingStopped
from courtlink.live.outbox import Outbox
from courtlink.live.presence import Occupant, Presence, SeatMap
from courtlink.live.turn import BrowserIce
from courtlink.live.views import joined_view, presence_view
from courtlink.metrics import Metrics

__all__ = ["ENDED_GRACE", "Hearing", "Seated"]

# Seconds between "session_ended" and closing the connections: the judge's own request (the
# one that ended the session) is answered first.
ENDED_GRACE = 0.2

Seated = tuple[Attendee, str, str]  # the attendee, its session id, its participant id

log = logging.getLogger("courtlink.live")


class Hearing:
    """The live sessions as seen from one node. Long-lived: ``close`` when done."""

    def __init__(
        self,
        *,
        clerk: Clerk,
        presence: Presence,
        outbox: Outbox,
        metrics: Metrics,
        media: MediaPort | None = None,
        ice: BrowserIce | None = None,
        recorder: RecordingPort | None = None,
        recordings_dir: Path | None = None,
        on_recording_stopped: RecordingStopped | None = None,
    ) -> None:
        self.clerk = clerk
        self.presence = presence
        self.outbox = outbox
        self.metrics = metrics
        self.media = media
        self.ice = ice or BrowserIce()
        # Recorded sessions are recorded by this node's media into <recordings_dir>/<id>/
        # (both needed); the hook is called once a recording stopped and its manifest is
        # written (sealing goes there).
        self.recorder = recorder
        self.recordings_dir = recordings_dir
        self.on_recording_stopped = on_recording_stopped
        self._attendees: dict[str, Attendee] = {}
        self._cases: dict[str, Case] = {}  # the case of each session joined here
        self._recording: dict[str, Path] = {}  # sessions recording now: their directory
        self._record_tried: set[str] = set()  # a session is recorded once (one directory)

    # Connections ------------------------------------------------------------------------

    def connect(
        self, connection: str, principal: Principal, reauthenticate: Reauthenticate
    ) -> Attendee:
        """An authenticated client connected; it holds no seat yet."""
        attendee = Attendee(connection, principal, reauthenticate)
        self._attendees[connection] = attendee
        self.metrics.connections.inc()
        return attendee

    def attendee(self, connection: str) -> Attendee:
        """The connection's attendee; NotAuthenticated when it is not (or no longer) known."""
        attendee = self._attendees.get(connection)
        if attendee is None:
            raise NotAuthenticated("not connected")
        return attendee

    def seated(self, connection: str) -> Seated:
        """The attendee, its session and its participant; Conflict when it holds no seat."""
        attendee = self.attendee(connection)
        if attendee.participant_id is None or attendee.session_id is None:
            raise Conflict("not in a session")
        return attendee, attendee.session_id, attendee.participant_id

    def _current(self, attendee: Attendee) -> bool:
        """Is ``attendee`` still connected (its disconnect not yet handled)?"""
        return self._attendees.get(attendee.connection) is attendee

    async def disconnect(self, connection: str) -> None:
        """The client went away: free its seats, if it still holds them. A connection refused
        at connect, or already gone, is no error."""
        attendee = self._attendees.pop(connection, None)
        if attendee is None:
            return
        self.metrics.connections.dec()
        if attendee.participant_id is not None:
            await self._vacate(attendee, reason="disconnected")

    async def close(self) -> None:
        """Stop this node's recordings (files whole, manifests written), disconnect every
        client of this node (their seats are freed as they go); idempotent."""
        for session_id in list(self._recording):
            await self.stop_recording(session_id)
        for connection in list(self._attendees):
            with contextlib.suppress(Exception):
                await self.outbox.disconnect(connection)
        self._attendees.clear()

    # Presence ---------------------------------------------------------------------------

    async def broadcast(self, session_id: str, seats: SeatMap | None = None) -> dict[str, Any]:
        """Tell everyone in the session who is in and what they may see and hear, and have the
        SFU forward exactly that; returns the presence message."""
        if seats is None:
            seats = await self.presence.snapshot(session_id)
        session = await self._settle_state(session_id, seats)
        await self._record(session)
        message = presence_view(session, seats)
        await self.outbox.publish(session_id, "presence", message)
        if self.media is not None:
            holders = {seat: held.participant_id for seat, held in seats.items()}
            await self.media.route(session_id, holders, session.moderation)
        return message

    async def presence_of(self, connection: str) -> dict[str, Any]:
        """The presence message of the connection's session (asked for, not pushed)."""
        attendee = self.attendee(connection)
        if attendee.session_id is None:
            raise Conflict("not in a session")
        return await self._presence_message(attendee.session_id)

    async def change_state(
        self,
        connection: str,
        *,
        audio_muted: bool | None = None,
        video_muted: bool | None = None,
    ) -> None:
        """The participant muted or unmuted itself: shown to everyone in presence."""
        _, session_id, participant_id = self.seated(connection)
        changes = {
            name: value
            for name, value in (("audio_muted", audio_muted), ("video_muted", video_muted))
            if value is not None
        }
        if not changes:
            raise InvalidInput("payload: nothing to change")
        await self.presence.update(session_id, participant_id, **changes)
        await self.broadcast(session_id)

    async def _presence_message(self, session_id: str) -> dict[str, Any]:
        seats = await self.presence.snapshot(session_id)
        session = await self._settle_state(session_id, seats)
        return presence_view(session, seats)

    async def _settle_state(self, session_id: str, seats: SeatMap) -> Session:
        judge_in = Seat.JUDGE in seats
        others = len(
            {held.participant_id for seat, held in seats.items() if seat is not Seat.JUDGE}
        )
        return await self.clerk.note_presence(session_id, judge_in=judge_in, others_in=others)

    # Joining and leaving ----------------------------------------------------------------

    async def join(
        self, connection: str, session_id: str, seats: Sequence[Seat] | None = None
    ) -> dict[str, Any]:
        """Seat the connection's client in ``seats`` (by default every seat its invite holds,
        or the judge's for a judge's account); returns the answer to the join."""
        attendee = self.attendee(connection)
        async with attendee.joining:
            return await self._join(attendee, session_id, _seats_for(attendee.principal, seats))

    async def _join(
        self, attendee: Attendee, session_id: str, seats: tuple[Seat, ...]
    ) -> dict[str, Any]:
        if attendee.participant_id is not None:
            if attendee.session_id == session_id and attendee.seats == seats:
                # A repeated join (say, after an ack timed out) gets the same answer again.
                session, case = await self.clerk.authorize_join(
                    attendee.principal, session_id, seats
                )
                message = await self._presence_message(session.id)
                return joined_view(session, case, attendee.participant_id, seats, message)
            raise Conflict("this connection already holds a seat; leave first")
        # Checked again at every join, not only at connect (revoked, expired, logged out).
        attendee.principal = await attendee.reauthenticate()
        session, case = await self._authorize(attendee.principal, session_id, seats)
        self._cases[session.id] = case
        participant_id = new_id()
        occupant = Occupant(
            participant_id=participant_id,
            sid=attendee.connection,
            seats=seats,
            actor=attendee.principal.actor,
            name=display_name(attendee.principal, seats, case),
            node=self.presence.node,
        )
        if not self._current(attendee):
            raise Conflict("the connection closed while joining")
        displaced = await self.presence.claim(session.id, occupant)
        attendee.participant_id, attendee.session_id = participant_id, session.id
        attendee.case_id, attendee.seats = case.id, seats
        # Closed during the claim: its disconnect saw no seat yet, so it is freed below.
        gone = not self._current(attendee)
        if not gone:
            await self.outbox.listen(attendee.connection, session.id)
        self.metrics.participants.inc(len(seats))
        for old in displaced:
            await self._replace(session, case, old, occupant)
        await self.clerk.record(
            AuditKind.JOINED,
            attendee.principal.actor,
            session_id=session.id,
            case_id=case.id,
            data={"participant": participant_id, "seats": [str(s) for s in seats]},
        )
        await self._attach_media(attendee, session, participant_id)
        if gone:
            await self._vacate(attendee, reason="disconnected")
            raise Conflict("the connection closed while joining")
        message = await self.broadcast(session.id)
        return joined_view(session, case, participant_id, seats, message)

    async def _attach_media(
        self, attendee: Attendee, session: Session, participant_id: str
    ) -> None:
        """Make the participant's peer connection and send its offer, unless the participant
        already left (a disconnect while the join was recorded vacated it)."""
        if self.media is None or attendee.participant_id != participant_id:
            return
        offer = await self.media.attach(
            session.id, participant_id, attendee.seats, video_codec=session.video_codec
        )
        if attendee.participant_id != participant_id:  # it left while media was attaching
            await self.media.detach(session.id, participant_id)
        else:
            await self.send_offer(attendee.connection, participant_id, offer)

    async def _authorize(
        self, principal: Principal, session_id: str, seats: tuple[Seat, ...]
    ) -> tuple[Session, Case]:
        """The Clerk's decision; a refusal is audited (who tried which seats, and why)."""
        try:
            return await self.clerk.authorize_join(principal, session_id, seats)
        except (Forbidden, Conflict) as exc:
            await self.clerk.record(
                AuditKind.INVITE_REFUSED,
                principal.actor,
                session_id=session_id if isinstance(principal, InvitePrincipal) else None,
                data={"seats": [str(s) for s in seats], "code": exc.code},
            )
            raise

    async def send_offer(self, connection: str, participant_id: str, offer: dict[str, Any]) -> None:
        """Send the SFU's offer to the participant's client, with the ICE servers to use."""
        await self.outbox.send(connection, "media.offer", self.ice.offer(offer, participant_id))

    async def _replace(self, session: Session, case: Case, old: Occupant, new: Occupant) -> None:
        """``new`` took a seat ``old`` held: ``old`` loses every seat and its connection."""
        if old.node == self.presence.node:  # otherwise its own node uncounts it (_vacate)
            self.metrics.participants.dec(len(old.seats))
        await self.clerk.record(
            AuditKind.REPLACED,
            new.actor,
            session_id=session.id,
            case_id=case.id,
            data={
                "participant": old.participant_id,
                "by": new.participant_id,
                "seats": [str(s) for s in old.seats],
            },
        )
        if self.media is not None:
            await self.media.detach(session.id, old.participant_id)
        await self.outbox.send(
            old.sid,
            "replaced",
            {
                "session": session.id,
                "seats": [str(s) for s in old.seats],
                "reason": "seat_taken",
                "message": "this seat was taken by a newer connection",
            },
        )
        self._forget_seat(old.sid)
        await self.outbox.disconnect(old.sid)

    def _forget_seat(self, connection: str) -> None:
        """The seat held through ``connection`` (if on this node) was freed by someone else:
        its disconnect must not free or audit it again."""
        local = self._attendees.get(connection)
        if local is not None:
            local.unseat()

    async def leave(self, connection: str) -> None:
        """The participant leaves its seats and stays connected (it may join again)."""
        attendee = self.attendee(connection)
        if attendee.participant_id is None:
            raise Conflict("not in a session")
        await self._vacate(attendee, reason="left")

    async def _vacate(self, attendee: Attendee, *, reason: str) -> None:
        """Free the attendee's seats (if it still holds them) and tell the session."""
        session_id, participant_id = attendee.unseat()
        if session_id is None or participant_id is None:
            return
        await self.outbox.unlisten(attendee.connection, session_id)
        held = await self.presence.release(session_id, participant_id)
        if self.media is not None:
            await self.media.detach(session_id, participant_id)
        if held is None:
            # Released on another node (replaced or ended there), which told everyone; the
            # seats were counted here, where they were held.
            self.metrics.participants.dec(len(attendee.seats))
            return
        self.metrics.participants.dec(len(held.seats))
        await self.clerk.record(
            AuditKind.LEFT,
            attendee.principal.actor,
            session_id=session_id,
            case_id=attendee.case_id,
            data={
                "participant": participant_id,
                "seats": [str(s) for s in held.seats],
                "reason": reason,
            },
        )
        await self.broadcast(session_id)

    # Ended, removed, revoked ------------------------------------------------------------

    async def end(self, session_id: str) -> None:
        """The session was ended (the Clerk recorded it): stop its recording, tell everyone in
        it, free every seat, close its media, and disconnect them shortly after."""
        await self.stop_recording(session_id)
        self._cases.pop(session_id, None)
        await self.outbox.publish(session_id, "session_ended", {"session": session_id})
        seats = await self.presence.snapshot(session_id)
        holders = list({h.participant_id: h for h in seats.values()}.values())
        for held in holders:
            await self.presence.release(session_id, held.participant_id)
            if held.node == self.presence.node:  # otherwise its own node uncounts it (_vacate)
                self.metrics.participants.dec(len(held.seats))
            self._forget_seat(held.sid)
            await self._record_left(session_id, held, "session_ended")
        if self.media is not None:
            await self.media.end(session_id)
        for held in holders:
            await self.outbox.disconnect(held.sid, grace=ENDED_GRACE)

    async def evict(self, session_id: str, held: Occupant, *, reason: str) -> None:
        """Take ``held`` out of the session (removed by the judge) and disconnect it."""
        released = await self.presence.release(session_id, held.participant_id)
        if self.media is not None:
            await self.media.detach(session_id, held.participant_id)
        self._forget_seat(held.sid)
        if released is not None:
            if held.node == self.presence.node:
                self.metrics.participants.dec(len(held.seats))
            await self._record_left(session_id, held, reason)
        await self.outbox.disconnect(held.sid)
        await self.broadcast(session_id)

    async def invite_revoked(self, session_id: str, invite_id: str) -> None:
        """Disconnect whoever holds a seat through a revoked invite (its disconnect frees it)."""
        actor = f"invite:{invite_id}"
        seats = await self.presence.snapshot(session_id)
        for held in {h.participant_id: h for h in seats.values()}.values():
            if held.actor == actor:
                await self.outbox.send(
                    held.sid, "removed", {"session": session_id, "reason": "invite_revoked"}
                )
                await self.outbox.disconnect(held.sid)

    # Recording ----------------------------------------------------------------------------

    async def _record(self, session: Session) -> None:
        """A recorded session that is live starts recording here, once: from then on until it
        ends (a party stepping out, the session falling back to open, does not stop it)."""
        if (
            not session.recorded
            or session.state is not SessionState.LIVE
            or self.recorder is None
            or self.recordings_dir is None
            or session.id in self._record_tried
        ):
            return
        case = self._cases.get(session.id)
        if case is None:
            return
        self._record_tried.add(session.id)
        directory = self.recordings_dir / session.id
        try:
            await self.recorder.record(
                session.id,
                directory,
                case_id=case.id,
                case_number=case.number,
                video_codec=session.video_codec,
            )
        except OSError as exc:
            log.error("session %s: the recording did not start: %s", session.id, exc)
            reason = "disk_full" if exc.errno == errno.ENOSPC else "failed"
            await self.outbox.publish(
                session.id, "recording", {"recording": False, "reason": reason}
            )
            return
        self._recording[session.id] = directory
        await self.outbox.publish(session.id, "recording", {"recording": True, "reason": "started"})

    def recording(self, session_id: str) -> bool:
        """Is the session being recorded on this node now?"""
        return session_id in self._recording

    async def stop_recording(self, session_id: str) -> None:
        """Stop the session's recording (it ended, or the server closes); idempotent."""
        if session_id not in self._recording or self.recorder is None:
            return
        if await self.recorder.stop_recording(session_id, "ended"):
            await self.recording_stopped(session_id, "ended")
        # Otherwise it had stopped by itself just before: media's report says why.

    async def recording_stopped(self, session_id: str, reason: str) -> None:
        """The session's recording stopped (``reason``: ended, disk_full, failed) and its
        manifest is written: tell the session (the judge's page alerts on a full disk) and
        call the hook. Once per recording."""
        directory = self._recording.pop(session_id, None)
        if directory is None:
            return
        await self.outbox.publish(session_id, "recording", {"recording": False, "reason": reason})
        if self.on_recording_stopped is not None:
            try:
                await self.on_recording_stopped(session_id, directory)
            except Exception:
                log.exception("session %s: after the recording stopped", session_id)

    async def _record_left(self, session_id: str, held: Occupant, reason: str) -> None:
        await self.clerk.record(
            AuditKind.LEFT,
            held.actor,
            session_id=session_id,
            data={
                "participant": held.participant_id,
                "seats": [str(s) for s in held.seats],
                "reason": reason,
            },
        )


def _seats_for(principal: Principal, asked: Sequence[Seat] | None) -> tuple[Seat, ...]:
    """The seats a join asks for: those named (once each), else the principal's own."""
    if asked:
        return tuple(dict.fromkeys(asked))
    if isinstance(principal, InvitePrincipal):
        return principal.claims.seats
    if isinstance(principal, AccountPrincipal):
        return (Seat.JUDGE,)
    raise InvalidInput("seats: required for this connection")
