"""The npm socket.io-client (what the browser pages use) against the real server, from node."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.signaling.conftest import WAIT, Room

SCRIPT = Path(__file__).with_name("node_client.mjs")
Line = dict[str, Any]

pytestmark = pytest.mark.node


class NodeClient:
    """One ``node node_client.mjs`` process; its JSON lines as they come."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: list[Line] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, node: str, url: str, options: dict[str, Any], name: str) -> NodeClient:
        process = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(options).encode())  # options on stdin
        await process.stdin.drain()
        process.stdin.close()
        return cls(process, name)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(json.loads(raw))
            self._arrived.set()
        self._arrived.set()

    async def until(self, where: Callable[[Line], bool], limit: float = WAIT) -> Line:
        async def find() -> Line:
            while True:
                for line in self.lines:
                    if where(line):
                        return line
                if self._reader.done():
                    raise AssertionError(f"{self.name} ended: {self.lines}")
                self._arrived.clear()
                await self._arrived.wait()

        try:
            return await asyncio.wait_for(find(), limit)
        except TimeoutError:
            raise AssertionError(f"{self.name}: not seen within {limit}s: {self.lines}") from None

    async def ack(self, event: str) -> Any:
        line = await self.until(lambda x: x["type"] == "ack" and x["event"] == event)
        return line["ack"]

    async def event(self, event: str, where: Callable[[Any], bool] | None = None) -> Any:
        line = await self.until(
            lambda x: (
                x["type"] == "event" and x["event"] == event and (where is None or where(x["data"]))
            )
        )
        return line["data"]

    async def finish(self, limit: float = 10.0) -> int:
        """Wait for the process to end (killed after ``limit`` seconds); its exit status."""
        try:
            await asyncio.wait_for(self.process.wait(), limit)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"{self.name} did not finish: {self.lines}") from None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reader, WAIT)
        return self.process.returncode or 0

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@pytest.fixture
async def run_node(node: str, room: Room) -> AsyncIterator[Callable[..., Any]]:
    started: list[NodeClient] = []

    async def run(options: dict[str, Any], name: str = "node") -> NodeClient:
        client = await NodeClient.start(node, room.url, options, name)
        started.append(client)
        return client

    yield run
    for client in started:
        await client.kill()


def join(room: Room, **extra: Any) -> dict[str, Any]:
    return {"emit": "join", "args": [{"session": room.session_id, **extra}]}


async def test_join_and_presence(room: Room, run_node: Any) -> None:
    judge, j = await room.joined("judge")
    client = await run_node(
        {
            "auth": {"invite": room.token("officer")},
            "actions": [
                join(room),
                {"wait": "presence"},
                {"emit": "state", "args": [{"audio_muted": True}]},
            ],
        }
    )
    welcome = await client.event("welcome")
    assert welcome["principal"]["seats"] == ["officer"]
    ack = await client.ack("join")
    assert ack["ok"] is True
    assert set(ack["data"]) == {"participant", "seats", "session", "presence"}
    o = ack["data"]["participant"]
    presence = await client.event("presence")
    assert presence["seats"]["judge"]["participant"] == j["participant"]
    assert presence["seats"]["officer"]["participant"] == o
    assert presence["state"] == "live"
    assert await client.ack("state") == {"ok": True, "data": {}}
    assert await client.finish() == 0
    # The Python client saw the node client arrive, mute and (process gone) leave.
    await judge.presence(officer=o)
    await judge.wait(
        "presence",
        lambda m: (
            m["seats"]["officer"] is not None
            and m["seats"]["officer"]["state"]["audio_muted"] is True
        ),
    )
    await judge.presence(officer=None)


async def test_join_by_cookie_over_polling(room: Room, run_node: Any) -> None:
    await room.consent("creditor")
    client = await run_node(
        {
            "cookie": f"cl_invite={room.token('creditor')}",
            "transports": ["polling"],
            "actions": [join(room), {"emit": "leave"}],
        }
    )
    ack = await client.ack("join")
    assert ack["ok"] is True
    assert ack["data"]["seats"] == ["creditor"]
    assert await client.ack("leave") == {"ok": True, "data": {}}
    assert await client.finish() == 0


async def test_second_node_client_replaces_the_first(room: Room, run_node: Any) -> None:
    judge, _ = await room.joined("judge")
    auth = {"invite": room.token("officer")}
    first = await run_node(
        {"auth": auth, "actions": [join(room), {"wait": "replaced"}, {"wait": "disconnect"}]},
        "first",
    )
    a = (await first.ack("join"))["data"]["participant"]
    await judge.presence(officer=a)
    second = await run_node({"auth": auth, "actions": [join(room), {"wait": "presence"}]}, "second")
    b = (await second.ack("join"))["data"]["participant"]
    assert a != b

    replaced = await first.event("replaced")
    assert replaced["reason"] == "seat_taken"
    assert replaced["seats"] == ["officer"]
    gone = await first.until(lambda x: x["type"] == "disconnect")
    assert gone["reason"] == "io server disconnect"  # the server closed it
    assert await first.finish() == 0
    await judge.presence(officer=b)
    assert await second.finish() == 0


async def test_bad_token_is_refused_with_its_code(room: Room, run_node: Any) -> None:
    client = await run_node({"auth": {"invite": "not-a-token"}, "actions": [join(room)]})
    refused = await client.until(lambda x: x["type"] == "connect_error")
    assert refused["data"] == {"code": "invite_invalid", "message": refused["message"]}
    assert await client.finish() == 2
    assert not any(line["type"] == "ack" for line in client.lines)
    cookie = await run_node({"cookie": "cl_invite=forged", "actions": []})
    assert (await cookie.until(lambda x: x["type"] == "connect_error"))["data"]["code"] == (
        "invite_invalid"
    )
    nothing = await run_node({"actions": []})
    assert (await nothing.until(lambda x: x["type"] == "connect_error"))["data"]["code"] == (
        "not_authenticated"
    )
    assert await room.snapshot() == {s: None for s in ("judge", "officer", "debtor", "creditor")}


async def test_malformed_join(room: Room, run_node: Any) -> None:
    actions = [
        {"emit": "join", "args": ["not an object"]},
        {"emit": "join", "args": [{"session": 42}]},
        {"emit": "join", "args": [{"session": room.session_id, "seats": ["usher"]}]},
        {"emit": "join", "args": [{"session": room.session_id, "role": "judge"}]},
        {"emit": "join", "args": [{"session": room.session_id}, "extra"]},
        {"emit": "join", "args": []},
        {"emit": "state", "args": [{"audio_muted": "yes"}]},
    ]
    client = await run_node({"auth": {"invite": room.token("officer")}, "actions": actions})
    assert await client.finish() == 0
    acks = [line["ack"] for line in client.lines if line["type"] == "ack"]
    assert len(acks) == len(actions)
    for ack in acks:
        assert ack["ok"] is False
        assert ack["error"]["code"] == "invalid_input", ack
    messages = [ack["error"]["message"] for ack in acks]
    assert messages[1].startswith("session: ")
    assert messages[2].startswith("seats.0: ")
    assert messages[3] == "role: unknown field"
    assert messages[5].startswith("session: ")  # no payload: an empty object
    assert messages[6].startswith("audio_muted: ")
    assert await room.audit("participant.joined") == []
    assert await room.snapshot() == {s: None for s in ("judge", "officer", "debtor", "creditor")}
