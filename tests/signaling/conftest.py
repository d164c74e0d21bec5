"""Fixtures for the signaling tests: the real app on loopback, a world built in it, and
python-socketio clients that record every event they receive.

Every wait is bounded (``WAIT``); every client and server opened here is closed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio

from courtlink.config import Settings
from courtlink.court.audit import AuditEvent
from courtlink.court.clerk import Clerk
from courtlink.court.hashing import SecretHasher
from courtlink.court.policy import InvitePrincipal
from courtlink.live.presence import Presence, seat_view
from courtlink.web.keys import AUDITOR, CLERK, PRESENCE, SERVICES, STORE
from courtlink.web.services import Services
from tests.conftest import LiveServer, start_server
from tests.helpers import PASSWORD, PIN, World, build_world

WAIT = 5.0  # seconds any single expected event may take
QUIET = 0.3  # how long to listen for an event that must not come

SEATS = ("judge", "officer", "debtor", "creditor")


class Refused(Exception):
    """A connection the server refused; ``error`` is the server's {"code", "message"}."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("code"))
        self.error = error

    @property
    def code(self) -> str:
        return str(self.error.get("code"))


class Peer:
    """One python-socketio client and everything it received, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.connect_errors: list[Any] = []
        self._cursor: dict[str, int] = {}
        self._arrived = asyncio.Event()
        self.sio.on("*", self._any)
        self.sio.on("connect_error", self._connect_error)
        self.sio.on("disconnect", self._disconnect)

    def __repr__(self) -> str:
        return f"<Peer {self.name}>"

    def _push(self, event: str, data: Any) -> None:
        self.received.append((event, data))
        self._arrived.set()

    async def _any(self, event: str, *args: Any) -> None:
        self._push(event, args[0] if len(args) == 1 else list(args))

    async def _connect_error(self, data: Any = None) -> None:
        self.connect_errors.append(data)
        self._push("connect_error", data)

    async def _disconnect(self, reason: Any = None) -> None:
        self._push("disconnect", reason)

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    async def connect(
        self,
        url: str,
        *,
        auth: Any = None,
        headers: dict[str, str] | None = None,
        transports: list[str] | None = None,
    ) -> None:
        """Connect; raise ``Refused`` with the server's error data when it refuses."""
        try:
            await self.sio.connect(
                url,
                auth=auth,
                headers=headers or {},
                transports=transports or ["websocket"],
                wait_timeout=WAIT,
            )
        except socketio.exceptions.ConnectionError:
            if self.connect_errors:
                data = self.connect_errors[-1]
                # The server raises ConnectionRefusedError(message, {"code", "message"}).
                if isinstance(data, dict) and isinstance(data.get("data"), dict):
                    raise Refused(data["data"]) from None
                raise Refused({"code": None, "raw": data}) from None
            raise

    async def call(self, event: str, *payload: Any, limit: float = WAIT) -> dict[str, Any]:
        """Emit with an ack and return the ack. Several payloads are sent as several arguments."""
        data: Any = payload[0] if len(payload) == 1 else (tuple(payload) if payload else None)
        ack = await self.sio.call(event, data, timeout=limit)
        assert isinstance(ack, dict), f"{event}: ack is not an object: {ack!r}"
        return ack

    async def ok(self, event: str, *payload: Any) -> dict[str, Any]:
        """Call and require an ok ack; returns its ``data``."""
        ack = await self.call(event, *payload)
        assert ack.get("ok") is True, f"{self.name} {event} {payload!r}: {ack!r}"
        assert set(ack) == {"ok", "data"}
        assert isinstance(ack["data"], dict)
        return ack["data"]

    async def refused(self, event: str, *payload: Any) -> dict[str, Any]:
        """Call and require an error ack; returns its ``error`` ({"code", "message"})."""
        ack = await self.call(event, *payload)
        assert ack.get("ok") is False, f"{self.name} {event} {payload!r}: {ack!r}"
        assert set(ack) == {"ok", "error"}
        error = ack["error"]
        assert set(error) == {"code", "message"}
        assert isinstance(error["message"], str)
        assert error["message"]
        return dict(error)

    async def wait(
        self,
        event: str,
        where: Callable[[Any], bool] | None = None,
        limit: float = WAIT,
    ) -> Any:
        """The next ``event`` (after the last one this method returned) matching ``where``."""

        async def find() -> Any:
            while True:
                for i in range(self._cursor.get(event, 0), len(self.received)):
                    name, data = self.received[i]
                    if name == event and (where is None or where(data)):
                        self._cursor[event] = i + 1
                        return data
                self._arrived.clear()
                await self._arrived.wait()

        try:
            return await asyncio.wait_for(find(), limit)
        except TimeoutError:
            seen = [name for name, _ in self.received]
            last = [d for name, d in self.received if name == event][-3:]
            raise AssertionError(
                f"{self.name}: no {event!r} within {limit}s; got {seen}; last: {last}"
            ) from None

    async def presence(self, **expected: Any) -> dict[str, Any]:
        """Wait for a presence message whose seats match ``expected`` (see ``seats_match``);
        ``state=`` matches the session state."""
        return dict(await self.wait("presence", lambda m: presence_matches(m, **expected)))

    async def disconnected(self) -> Any:
        reason = await self.wait("disconnect")
        for _ in range(50):  # the client flips ``connected`` just after the handler
            if not self.connected:
                break
            await asyncio.sleep(0.02)
        assert not self.connected
        return reason

    async def quiet(self, event: str, within: float = QUIET) -> None:
        """Assert that no new ``event`` arrives within ``within`` seconds."""
        start = self._cursor.get(event, 0)
        await asyncio.sleep(within)
        late = [d for name, d in self.received[start:] if name == event]
        assert not late, f"{self.name}: unexpected {event}: {late}"

    def skip_past(self, event: str) -> None:
        """Forget ``event``s received so far (wait() only sees later ones)."""
        self._cursor[event] = len(self.received)

    def all(self, event: str) -> list[Any]:
        return [data for name, data in self.received if name == event]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), WAIT)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.shutdown(), WAIT)


def holders(message: dict[str, Any]) -> dict[str, str | None]:
    """seat -> participant id (or None) of a presence message or a seat view."""
    seats = message.get("seats", message)
    return {seat: (None if held is None else held["participant"]) for seat, held in seats.items()}


def presence_matches(message: dict[str, Any], **expected: Any) -> bool:
    """``expected``: seat=None (empty), seat=True (anyone), seat="<participant id>";
    ``state=`` the session state; other seats are not checked."""
    if set(message["seats"]) != set(SEATS):
        return False
    for key, want in expected.items():
        if key == "state":
            if message["state"] != want:
                return False
            continue
        held = message["seats"][key]
        if want is None and held is not None:
            return False
        if want is True and held is None:
            return False
        if isinstance(want, str) and (held is None or held["participant"] != want):
            return False
    return True


@dataclass
class Login:
    cookie: str  # the cl_session value
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"cl_session={self.cookie}", "X-CSRF-Token": self.csrf}


@dataclass
class Room:
    """A running server with a world in it, and the clients a test opened."""

    live: LiveServer
    settings: Settings
    world: World
    services: Services
    peers: list[Peer] = field(default_factory=list)

    @classmethod
    async def open(cls, live: LiveServer, settings: Settings, world: World | None = None) -> Room:
        app = live.app
        services = app[SERVICES]
        if world is None:
            world = await build_world(services)
        return cls(live, settings, world, services)

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def session_id(self) -> str:
        return self.world.session.id

    @property
    def clerk(self) -> Clerk:
        return self.live.app[CLERK]

    @property
    def presence_store(self) -> Presence:
        return self.live.app[PRESENCE]

    def token(self, who: str) -> str:
        return self.world.tokens[who]

    async def consent(self, who: str) -> None:
        """The party (or, for the terminal, the officer with the PIN) consents."""
        claims = await self.clerk.check_invite(self.token(who))
        extra: dict[str, str] = {}
        if who == "terminal":
            extra = {"officer_username": "officer", "officer_pin": PIN}
        await self.clerk.give_consent(InvitePrincipal(claims), **extra)

    async def peer(
        self,
        name: str = "peer",
        *,
        auth: Any = None,
        headers: dict[str, str] | None = None,
        transports: list[str] | None = None,
        url: str | None = None,
    ) -> Peer:
        """A connected client (``Refused`` if the server refuses it; it is still cleaned up)."""
        peer = Peer(name)
        self.peers.append(peer)
        await peer.connect(url or self.url, auth=auth, headers=headers, transports=transports)
        return peer

    async def invitee(self, who: str, *, url: str | None = None) -> Peer:
        """Connected with ``who``'s invite token in the auth payload."""
        return await self.peer(who, auth={"invite": self.token(who)}, url=url)

    async def joined(
        self, who: str, *, seats: list[str] | None = None, url: str | None = None
    ) -> tuple[Peer, dict[str, Any]]:
        """Connected by invite and joined; returns the client and the ack's data."""
        peer = await self.invitee(who, url=url)
        payload: dict[str, Any] = {"session": self.session_id}
        if seats is not None:
            payload["seats"] = seats
        return peer, await peer.ok("join", payload)

    async def refused_connect(
        self, *, auth: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Connect expecting a refusal; returns the server's error data."""
        with pytest.raises(Refused) as caught:
            await self.peer("refused", auth=auth, headers=headers)
        error = caught.value.error
        assert set(error) == {"code", "message"}, error
        return error

    async def login(self, username: str = "judge", password: str = PASSWORD) -> Login:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.url}/api/login", json={"username": username, "password": password}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            body = await response.json()
            return Login(response.cookies["cl_session"].value, body["csrf"])

    async def api(self, method: str, path: str, login: Login, json: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{self.url}{path}", headers=login.headers, json=json) as r,
        ):
            return r.status, await r.json(content_type=None)

    async def judge_by_account(self, login: Login | None = None) -> Peer:
        login = login or await self.login()
        return await self.peer(
            "judge-account",
            auth={"as": "account"},
            headers={"Cookie": f"cl_session={login.cookie}"},
        )

    async def snapshot(self) -> dict[str, Any]:
        """The seat view of the session as presence holds it now."""
        return seat_view(await self.presence_store.snapshot(self.session_id))

    async def audit(self, *kinds: str) -> list[AuditEvent]:
        async with self.live.app[STORE].read() as tx:
            events = await tx.audit_events(session_id=self.session_id)
        return [e for e in events if not kinds or e.kind in kinds]

    async def session_state(self) -> str:
        async with self.live.app[STORE].read() as tx:
            return str((await tx.session(self.session_id)).state)

    async def verify_audit(self) -> None:
        report = await self.live.app[AUDITOR].verify()
        assert report.ok, report.summary()

    async def close(self) -> None:
        await asyncio.gather(*(peer.close() for peer in self.peers))


RoomFactory = Callable[..., Awaitable[Room]]


@pytest.fixture
async def make_room(settings: Settings, fast_hasher: SecretHasher) -> AsyncIterator[RoomFactory]:
    """Start a server (``start_server`` keyword arguments, e.g. ``clock=``) and build a world."""
    opened: list[Room] = []

    async def make(**kwargs: Any) -> Room:
        chosen = kwargs.pop("settings", settings)
        live = await start_server(chosen, fast_hasher, **kwargs)
        try:
            room = await Room.open(live, chosen)
        except BaseException:
            await live.close()
            raise
        opened.append(room)
        return room

    yield make
    for room in reversed(opened):
        await room.close()
        await room.live.close()


@pytest.fixture
async def room(make_room: RoomFactory) -> Room:
    return await make_room()
