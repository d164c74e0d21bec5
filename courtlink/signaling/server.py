"""The Socket.IO adapter: connect, the events of docs/protocol.md, and their acks.

Every handler validates its payload first, hands the request to the live session
(``courtlink.live``: the hearing, the judge's controls, media negotiation) and answers with an ack
``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {"code", "message"}}``; a refused
request changes nothing. What the live session tells clients goes out through ``SocketOutbox``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import socketio

from courtlink.court.clerk import Clerk
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal, TerminalPrincipal
from courtlink.errors import CourtlinkError, InvalidInput
from courtlink.live.hearing import Hearing
from courtlink.live.moderation import JudgeControls
from courtlink.live.negotiation import MediaNegotiation
from courtlink.metrics import Metrics
from courtlink.signaling.documents import inbox_rooms
from courtlink.signaling.media import MediaEvents
from courtlink.signaling.messages import (
    PROTOCOL_VERSION,
    Handler,
    JoinRequest,
    LeaveRequest,
    PresenceRequest,
    StateRequest,
    error_ack,
    ok_ack,
    parse,
)
from courtlink.signaling.moderation import ModerationEvents
from courtlink.signaling.outbox import SocketOutbox

__all__ = ["Authenticate", "SignalingServer", "socket_server"]

log = logging.getLogger("courtlink.signaling")

# Resolves a connecting client to a principal from its request (cookies) and auth payload.
Authenticate = Callable[[Mapping[str, Any], Any], Awaitable[Principal]]


def socket_server(
    *,
    client_manager: socketio.AsyncManager | None = None,
    cors_allowed_origins: list[str] | None = None,
) -> socketio.AsyncServer:
    """The python-socketio server, with the timeouts a hearing needs."""
    return socketio.AsyncServer(
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


class SignalingServer:
    """Serves the live session over the outbox's python-socketio server; ``attach`` mounts it
    on the aiohttp app. Without ``negotiation`` (no media server) the media events are unknown.
    """

    def __init__(
        self,
        outbox: SocketOutbox,
        hearing: Hearing,
        *,
        controls: JudgeControls,
        negotiation: MediaNegotiation | None = None,
        clerk: Clerk,
        authenticate: Authenticate,
        metrics: Metrics,
    ) -> None:
        self.outbox = outbox
        self.sio = outbox.sio
        self.hearing = hearing
        self.clerk = clerk
        self.authenticate = authenticate
        self.metrics = metrics
        self.moderation = ModerationEvents(controls)
        self.media = None if negotiation is None else MediaEvents(negotiation)
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
            "presence": self._presence,
        }
        handlers.update(self.moderation.handlers())
        if self.media is not None:
            handlers.update(self.media.handlers())
        return handlers

    def attach(self, app: Any) -> None:
        """Serve Socket.IO at ``/socket.io`` of the aiohttp ``app``."""
        self.sio.attach(app, socketio_path="socket.io")

    async def close(self) -> None:
        """Disconnect every client of this node (the hearing frees their seats) and cancel the
        disconnects still waiting; idempotent."""
        await self.hearing.close()
        await self.outbox.close()

    # Called by web/ ---------------------------------------------------------------------

    async def end_session(self, session_id: str) -> None:
        """The judge ended the session over HTTP: everyone in it is told and disconnected."""
        await self.hearing.end(session_id)

    async def invite_revoked(self, session_id: str, invite_id: str) -> None:
        """Disconnect whoever holds a seat through the revoked invite."""
        await self.hearing.invite_revoked(session_id, invite_id)

    # Plumbing ---------------------------------------------------------------------------

    def _wrap(self, event: str, handler: Handler) -> Handler:
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

    async def _on_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        try:
            principal = await self.authenticate(environ, auth)
        except CourtlinkError as exc:
            self.metrics.errors.labels(where="connect", code=exc.code).inc()
            log.info("connection refused: %s", exc.code, extra={"sid": sid, "code": exc.code})
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.as_dict()) from None

        async def reauthenticate() -> Principal:
            return await self.authenticate(environ, auth)

        self.hearing.connect(sid, principal, reauthenticate)
        for room in await inbox_rooms(self.clerk, principal):
            await self.sio.enter_room(sid, room)
        await self.sio.emit(
            "welcome",
            {"protocol": PROTOCOL_VERSION, "principal": _principal_view(principal)},
            to=sid,
        )

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        await self.hearing.disconnect(sid)

    # Handlers ---------------------------------------------------------------------------

    async def _join(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(JoinRequest, payload)
        return ok_ack(await self.hearing.join(sid, request.session, request.seats))

    async def _leave(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(LeaveRequest, payload)
        await self.hearing.leave(sid)
        return ok_ack()

    async def _state(self, sid: str, payload: Any) -> dict[str, Any]:
        request = parse(StateRequest, payload)
        await self.hearing.change_state(
            sid, audio_muted=request.audio_muted, video_muted=request.video_muted
        )
        return ok_ack()

    async def _presence(self, sid: str, payload: Any) -> dict[str, Any]:
        parse(PresenceRequest, payload)
        return ok_ack(await self.hearing.presence_of(sid))
