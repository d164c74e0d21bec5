"""The Socket.IO server: connect, join, leave, presence, replacement.

Every handler validates its payload first and answers with an ack
``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {"code", "message"}}``; a refused
request changes nothing. Connection state lives on this object, keyed by Socket.IO sid; seat
occupancy lives in ``Presence`` (shared through Redis when there are several nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import socketio

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.cases import Case
from courtlink.court.clerk import Clerk
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal, TerminalPrincipal
from courtlink.court.seats import SEATS, AccountRole, Seat
from courtlink.court.sessions import Session
from courtlink.errors import Conflict, CourtlinkError, Forbidden, InvalidInput, NotAuthenticated
from courtlink.live.media_port import MediaPort
from courtlink.live.presence import Occupant, Presence, SeatMap, seat_view
from courtlink.live.routing import seat_status
from courtlink.metrics import Metrics
from courtlink.signaling.media import IceServers, MediaSignaling
from courtlink.signaling.messages import (
    PROTOCOL_VERSION,
    JoinRequest,
    LeaveRequest,
    PresenceRequest,
    StateRequest,
    error_ack,
    ok_ack,
    parse,
)
from courtlink.signaling.moderation import Moderation

__all__ = ["Authenticate", "Connection", "SignalingServer"]

log = logging.getLogger("courtlink.signaling")

# Resolves a connecting client to a principal from its request (cookies) and auth payload.
Authenticate = Callable[[Mapping[str, Any], Any], Awaitable[Principal]]
Handler = Callable[[str, Any], Awaitable[dict[str, Any]]]


@dataclass
class Connection:
    sid: str
    principal: Principal
    # What the client connected with, to authenticate it again when it joins: an invite may
    # have been revoked, or have expired, since the connection was opened.
    environ: Mapping[str, Any] = field(default_factory=dict, repr=False)
    auth: Any = field(default=None, repr=False)
    participant_id: str | None = None
    session_id: str | None = None
    case_id: str | None = None
    seats: tuple[Seat, ...] = field(default_factory=tuple)
    joining: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


def _room(session_id: str) -> str:
    return f"session:{session_id}"


def _principal_view(principal: Principal) -> dict[str, Any]:
    match principal:
        case AccountPrincipal(account=account):
            return {"kind": "account", "role": str(account.role), "name": account.display_name}
        case InvitePrincipal(claims=claims):
            return {
                "kind": "invite",
                "session": claims.session_id,
                "seats": [str(s) for s in claims.seats],
            }
        case TerminalPrincipal(terminal=terminal):
            return {"kind": "terminal", "name": terminal.name, "center": terminal.center}
    return {}  # pragma: no cover


def _presence(session: Session, seats: SeatMap) -> dict[str, Any]:
    """The presence message: every seat (empty ones null), each with what the policy does to it
    (in the lobby, on hold in a caucus, muted by the judge), and the moderation itself."""
    view = seat_view(seats)
    moderation = session.moderation
    for seat in SEATS:
        status = seat_status(moderation, seat)
        if view[str(seat)] is not None:
            view[str(seat)]["status"] = {
                "in_lobby": status.in_lobby,
                "on_hold": status.on_hold,
                "muted": status.muted,
            }
    return {
        "session": session.id,
        "state": str(session.state),
        "seats": view,
        "moderation": moderation.encode(),
    }


def _display_name(principal: Principal, seats: tuple[Seat, ...], case: Case) -> str:
    if isinstance(principal, AccountPrincipal):
        return principal.account.display_name
    names = {Seat.CREDITOR: case.creditor_name, Seat.DEBTOR: case.debtor_name}
    return " / ".join(names.get(seat, str(seat)) for seat in seats)


class SignalingServer:
    """Owns the python-socketio ``AsyncServer``; ``attach`` mounts it on the aiohttp app."""

    def __init__(
        self,
        *,
        clerk: Clerk,
        presence: Presence,
        authenticate: Authenticate,
        metrics: Metrics,
        media: MediaPort | None = None,
        client_manager: socketio.AsyncManager | None = None,
        cors_allowed_origins: list[str] | None = None,
        ice_servers: IceServers | None = None,
        ice_transport_policy: str = "all",
    ) -> None:
        self.clerk = clerk
        self.presence = presence
        self.authenticate = authenticate
        self.metrics = metrics
        self.media = media
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=client_manager,
            cors_allowed_origins=cors_allowed_origins,
            logger=False,
            engineio_logger=False,
            # A network drop of ten seconds or so (a phone between cells) must not cost the
            # participant its seat: with a 10 s timeout, a ping sent as the network dropped
            # went unanswered in time and the seat was freed. Dead clients go within 30 s.
            ping_interval=10,
            ping_timeout=20,
            max_http_buffer_size=256 * 1024,
        )
        self._connections: dict[str, Connection] = {}
        self.media_signaling = (
            MediaSignaling(
                self, media, ice_servers=ice_servers, ice_transport_policy=ice_transport_policy
            )
            if media is not None
            else None
        )
        self.moderation = Moderation(self)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        for event, handler in self.handlers().items():
            self.sio.on(event, self._wrap(event, handler))

    def handlers(self) -> dict[str, Handler]:
        """Every client-to-server event and its handler (docs/protocol.md lists the same)."""
        handlers: dict[str, Handler] = {
            "join": self._join,
            "leave": self._leave,
            "state": self._state,
            "presence": self._presence_request,
        }
        handlers.update(self.moderation.handlers())
        if self.media_signaling is not None:
            handlers.update(self.media_signaling.handlers())
        return handlers

    def attach(self, app: Any) -> None:
        self.sio.attach(app, socketio_path="socket.io")

    async def close(self) -> None:
        """Disconnect every client of this node; idempotent."""
        for sid in list(self._connections):
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid)
        self._connections.clear()

    # Plumbing ---------------------------------------------------------------------------

    def _wrap(
        self, event: str, handler: Handler
    ) -> Callable[[str, Any], Awaitable[dict[str, Any]]]:
        async def wrapped(sid: str, *args: Any) -> dict[str, Any]:
            self.metrics.events.labels(event=event).inc()
            try:
                if len(args) > 1:
                    # Without this the handler's TypeError would leave the client without an ack.
                    raise InvalidInput("payload: send one JSON object")
                return await handler(sid, args[0] if args else None)
            except CourtlinkError as exc:
                self.metrics.errors.labels(where="signaling", code=exc.code).inc()
                log.info(
                    "refused %s: %s",
                    event,
                    exc.code,
                    extra={"sid": sid, "event": event, "code": exc.code},
                )
                return error_ack(exc)
            except Exception:
                self.metrics.errors.labels(where="signaling", code="internal").inc()
                log.exception("handler %s failed", event, extra={"sid": sid, "event": event})
                return error_ack(CourtlinkError("internal error; the request was not carried out"))

        return wrapped

    def _connection(self, sid: str) -> Connection:
        conn = self._connections.get(sid)
        if conn is None:
            raise NotAuthenticated("not connected")
        return conn

    async def _on_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        try:
            principal = await self.authenticate(environ, auth)
        except CourtlinkError as exc:
            self.metrics.errors.labels(where="connect", code=exc.code).inc()
            log.info("connection refused: %s", exc.code, extra={"sid": sid, "code": exc.code})
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.as_dict()) from None
        self._connections[sid] = Connection(sid, principal, environ, auth)
        self.metrics.connections.inc()
        for room in await self._inbox_rooms(principal):
            await self.sio.enter_room(sid, room)
        await self.sio.emit(
            "welcome",
            {"protocol": PROTOCOL_VERSION, "principal": _principal_view(principal)},
            to=sid,
        )

    async def _inbox_rooms(self, principal: Principal) -> list[str]:
        """The rooms a connection listens in for documents (signaling/documents.py)."""
        match principal:
            case AccountPrincipal(account=account):
                rooms = [f"account:{account.id}"]
                if account.role in (AccountRole.JUDGE, AccountRole.APPROVER):
                    rooms.append("staff")
                return rooms
            case TerminalPrincipal(terminal=terminal):
                return [f"terminal:{terminal.id}"]
            case InvitePrincipal(claims=claims):
                try:
                    session, _ = await self.clerk.session(principal, claims.session_id)
                except CourtlinkError:
                    return []
                return [f"seat:{session.case_id}:{seat}" for seat in claims.seats]
        return []

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self._connections.pop(sid, None)
        if conn is None:
            return
        self.metrics.connections.dec()
        if conn.participant_id is not None:
            await self._vacate(conn, reason="disconnected")

    # Presence ---------------------------------------------------------------------------

    async def broadcast(self, session_id: str, seats: SeatMap | None = None) -> dict[str, Any]:
        """Tell everyone in the session who is in and what they may see and hear, and have the
        SFU forward exactly that."""
        if seats is None:
            seats = await self.presence.snapshot(session_id)
        session = await self._settle_state(session_id, seats)
        message = _presence(session, seats)
        await self.sio.emit("presence", message, room=_room(session_id))
        if self.media is not None:
            holders = {seat: held.participant_id for seat, held in seats.items()}
            await self.media.route(session_id, holders, session.moderation)
        return message

    _broadcast = broadcast

    async def _settle_state(self, session_id: str, seats: SeatMap) -> Session:
        judge_in = Seat.JUDGE in seats
        others = len(
            {held.participant_id for seat, held in seats.items() if seat is not Seat.JUDGE}
        )
        return await self.clerk.note_presence(session_id, judge_in=judge_in, others_in=others)

    async def _vacate(self, conn: Connection, *, reason: str) -> None:
        """Free the seats of ``conn``'s participant (if it still holds them) and tell the room."""
        session_id, participant_id = conn.session_id, conn.participant_id
        conn.participant_id = conn.session_id = None
        if session_id is None or participant_id is None:
            return
        with contextlib.suppress(ValueError, KeyError):
            await self.sio.leave_room(conn.sid, _room(session_id))
        held = await self.presence.release(session_id, participant_id)
        if self.media is not None:
            await self.media.detach(session_id, participant_id)
        if held is None:
            # Released on another node (replaced or ended there), which told everyone; the
            # seats were counted here, where they were held.
            self.metrics.participants.dec(len(conn.seats))
            return
        self.metrics.participants.dec(len(held.seats))
        await self.clerk.record(
            AuditKind.LEFT,
            conn.principal.actor,
            session_id=session_id,
            case_id=conn.case_id,
            data={
                "participant": participant_id,
                "seats": [str(s) for s in held.seats],
                "reason": reason,
            },
        )
        await self._broadcast(session_id)

    # Handlers ---------------------------------------------------------------------------

    def _seats_for(self, principal: Principal, asked: list[Seat] | None) -> tuple[Seat, ...]:
        if asked:
            return tuple(dict.fromkeys(asked))
        if isinstance(principal, InvitePrincipal):
            return principal.claims.seats
        if isinstance(principal, AccountPrincipal):
            return (Seat.JUDGE,)
        raise InvalidInput("seats: required for this connection")

    async def _join(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(JoinRequest, payload)
        conn = self._connection(sid)
        # One join at a time per connection: a second join sent before the first was answered
        # would otherwise displace the first, that is, the connection itself.
        async with conn.joining:
            return await self._join_one(sid, conn, request)

    async def _join_one(self, sid: str, conn: Connection, request: JoinRequest) -> dict[str, Any]:
        seats = self._seats_for(conn.principal, request.seats)
        if conn.participant_id is not None:
            if conn.session_id == request.session and conn.seats == seats:
                # A repeated join (say, after an ack timed out) gets the same answer again.
                session, case = await self.clerk.authorize_join(
                    conn.principal, request.session, seats
                )
                message = await self._presence_message(session.id)
                return self._join_ack(session, case, conn.participant_id, seats, message)
            raise Conflict("this connection already holds a seat; leave first")
        # Checked again at every join, not only at connect (revoked, expired, logged out).
        conn.principal = await self.authenticate(conn.environ, conn.auth)
        try:
            session, case = await self.clerk.authorize_join(conn.principal, request.session, seats)
        except (Forbidden, Conflict) as exc:
            await self.clerk.record(
                AuditKind.INVITE_REFUSED,
                conn.principal.actor,
                session_id=request.session if isinstance(conn.principal, InvitePrincipal) else None,
                data={"seats": [str(s) for s in seats], "code": exc.code},
            )
            raise
        participant_id = new_id()
        occupant = Occupant(
            participant_id=participant_id,
            sid=sid,
            seats=seats,
            actor=conn.principal.actor,
            name=_display_name(conn.principal, seats, case),
            node=self.presence.node,
        )
        if self._connections.get(sid) is not conn:
            raise Conflict("the connection closed while joining")
        displaced = await self.presence.claim(session.id, occupant)
        conn.participant_id, conn.session_id, conn.case_id, conn.seats = (
            participant_id,
            session.id,
            case.id,
            seats,
        )
        # Closed during the claim: its disconnect handler saw no seat yet, so free it below.
        gone = self._connections.get(sid) is not conn
        if not gone:
            await self.sio.enter_room(sid, _room(session.id))
        self.metrics.participants.inc(len(seats))
        for old in displaced:
            await self._replace(session, case, old, occupant)
        await self.clerk.record(
            AuditKind.JOINED,
            conn.principal.actor,
            session_id=session.id,
            case_id=case.id,
            data={"participant": participant_id, "seats": [str(s) for s in seats]},
        )
        # Unless it already left (a disconnect while the join was recorded vacated it).
        if self.media is not None and conn.participant_id == participant_id:
            offer = await self.media.attach(
                session.id, participant_id, seats, video_codec=session.video_codec
            )
            if conn.participant_id != participant_id:  # it left while media was attaching
                await self.media.detach(session.id, participant_id)
            elif self.media_signaling is not None:
                await self.media_signaling.send_offer(sid, participant_id, offer)
        if gone:
            await self._vacate(conn, reason="disconnected")
            raise Conflict("the connection closed while joining")
        message = await self._broadcast(session.id)
        return self._join_ack(session, case, participant_id, seats, message)

    def _join_ack(
        self,
        session: Session,
        case: Case,
        participant_id: str,
        seats: tuple[Seat, ...],
        message: dict[str, Any],
    ) -> dict[str, Any]:
        return ok_ack(
            {
                "participant": participant_id,
                "seats": [str(s) for s in seats],
                "session": {
                    "id": session.id,
                    "case_number": case.number,
                    "state": message["state"],
                    "recorded": session.recorded,
                    "lobby": session.lobby,
                },
                "presence": message,
            }
        )

    async def _replace(self, session: Session, case: Case, old: Occupant, new: Occupant) -> None:
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
        await self.sio.emit(
            "replaced",
            {
                "session": session.id,
                "seats": [str(s) for s in old.seats],
                "reason": "seat_taken",
                "message": "this seat was taken by a newer connection",
            },
            to=old.sid,
        )
        local = self._connections.get(old.sid)
        if local is not None:
            local.participant_id = local.session_id = None
        await self.sio.disconnect(old.sid)

    async def _leave(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(LeaveRequest, payload)
        conn = self._connection(sid)
        if conn.participant_id is None:
            raise Conflict("not in a session")
        await self._vacate(conn, reason="left")
        return ok_ack()

    async def _state(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(StateRequest, payload)
        conn = self._connection(sid)
        if conn.participant_id is None or conn.session_id is None:
            raise Conflict("not in a session")
        changes = request.model_dump(exclude_none=True)
        if not changes:
            raise InvalidInput("payload: nothing to change")
        await self.presence.update(conn.session_id, conn.participant_id, **changes)
        await self._broadcast(conn.session_id)
        return ok_ack()

    async def _presence_request(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(PresenceRequest, payload)
        conn = self._connection(sid)
        if conn.session_id is None:
            raise Conflict("not in a session")
        return ok_ack(await self._presence_message(conn.session_id))

    async def _presence_message(self, session_id: str) -> dict[str, Any]:
        seats = await self.presence.snapshot(session_id)
        session = await self._settle_state(session_id, seats)
        return _presence(session, seats)

    # Called by web/ ---------------------------------------------------------------------

    async def end_session(self, session_id: str) -> None:
        """The judge ended the session: tell everyone in it and disconnect them (shortly, so that
        the judge's own request is answered first)."""
        await self.sio.emit("session_ended", {"session": session_id}, room=_room(session_id))
        seats = await self.presence.snapshot(session_id)
        holders = list({h.participant_id: h for h in seats.values()}.values())
        for held in holders:
            await self.presence.release(session_id, held.participant_id)
            if held.node == self.presence.node:  # otherwise its own node uncounts it (_vacate)
                self.metrics.participants.dec(len(held.seats))
            local = self._connections.get(held.sid)
            if local is not None:
                local.participant_id = local.session_id = None
            await self.clerk.record(
                AuditKind.LEFT,
                held.actor,
                session_id=session_id,
                data={
                    "participant": held.participant_id,
                    "seats": [str(s) for s in held.seats],
                    "reason": "session_ended",
                },
            )
        if self.media is not None:
            await self.media.end(session_id)

        async def disconnect_all() -> None:
            await asyncio.sleep(0.2)
            for held in holders:
                await self.sio.disconnect(held.sid)

        self.sio.start_background_task(disconnect_all)

    async def evict(self, session_id: str, held: Occupant, *, reason: str) -> None:
        """Take ``held`` out of the session (removed by the judge) and disconnect it."""
        released = await self.presence.release(session_id, held.participant_id)
        if self.media is not None:
            await self.media.detach(session_id, held.participant_id)
        local = self._connections.get(held.sid)
        if local is not None:
            local.participant_id = local.session_id = None
        if released is not None and held.node == self.presence.node:
            self.metrics.participants.dec(len(held.seats))
        if released is not None:
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
        await self.sio.disconnect(held.sid)
        await self.broadcast(session_id)

    async def invite_revoked(self, session_id: str, invite_id: str) -> None:
        """Disconnect whoever holds a seat through a revoked invite."""
        actor = f"invite:{invite_id}"
        for held in {
            h.participant_id: h for h in (await self.presence.snapshot(session_id)).values()
        }.values():
            if held.actor == actor:
                await self.sio.emit(
                    "removed", {"session": session_id, "reason": "invite_revoked"}, to=held.sid
                )
                await self.sio.disconnect(held.sid)
