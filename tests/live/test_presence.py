"""Presence: who holds which seat. The same behaviour from the in-memory and the Redis backend;
Redis also across nodes, with heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from courtlink.court.seats import Seat
from courtlink.live.presence import MemoryPresence, Occupant, ParticipantState, Presence, seat_view
from courtlink.live.redis_presence import NODE_PREFIX, RedisPresence

J, OF, D, C = Seat.JUDGE, Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR
SID = "session-1"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def node_factory(redis: Redis) -> AsyncIterator[Callable[..., Awaitable[RedisPresence]]]:
    """Started RedisPresence nodes, closed at the end."""
    made: list[RedisPresence] = []

    async def make(**kwargs: object) -> RedisPresence:
        node = RedisPresence(redis, **kwargs)  # type: ignore[arg-type]
        await node.start()
        made.append(node)
        return node

    yield make
    for node in made:
        await node.close()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for memory; the Redis URL (from tests/conftest.py, keys cleared) for Redis."""
    # Resolved here, in a plain fixture: an async fixture cannot ask for another by name.
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def presence(backend: str | None) -> AsyncIterator[Presence]:
    if backend is None:
        made: Presence = MemoryPresence()
        yield made
        await made.close()
        return
    client = Redis.from_url(backend)
    node = RedisPresence(client, heartbeat_ttl=10)
    await node.start()
    yield node
    await node.close()
    await client.aclose()


def occupant(presence: Presence, pid: str, *seats: Seat, sid: str | None = None) -> Occupant:
    return Occupant(
        participant_id=pid,
        sid=sid or f"sid-{pid}",
        seats=seats,
        actor=f"invite:{pid}",
        name=pid,
        node=presence.node,
        joined_at=1_767_000_000.25,
    )


async def test_claim_a_free_seat(presence: Presence) -> None:
    creditor = occupant(presence, "p1", C)
    assert await presence.claim(SID, creditor) == []
    assert await presence.snapshot(SID) == {C: creditor}
    assert await presence.holder(SID, "p1") == creditor
    assert await presence.holder(SID, "nobody") is None


async def test_sessions_are_independent(presence: Presence) -> None:
    await presence.claim(SID, occupant(presence, "p1", C))
    assert await presence.snapshot("session-2") == {}
    assert await presence.claim("session-2", occupant(presence, "p2", C)) == []
    assert (await presence.snapshot(SID))[C].participant_id == "p1"


async def test_a_second_claim_of_a_seat_displaces_its_holder(presence: Presence) -> None:
    first = occupant(presence, "p1", C)
    second = occupant(presence, "p2", C)
    await presence.claim(SID, first)
    assert await presence.claim(SID, second) == [first]
    assert await presence.snapshot(SID) == {C: second}


async def test_a_displaced_terminal_loses_every_seat_it_held(presence: Presence) -> None:
    terminal = occupant(presence, "terminal", OF, D)
    judge = occupant(presence, "judge", J)
    await presence.claim(SID, terminal)
    await presence.claim(SID, judge)
    assert await presence.snapshot(SID) == {OF: terminal, D: terminal, J: judge}

    debtor = occupant(presence, "debtor-phone", D)
    assert await presence.claim(SID, debtor) == [terminal]
    # The officer seat is free too: the terminal was disconnected as a whole.
    assert await presence.snapshot(SID) == {D: debtor, J: judge}


async def test_one_claim_can_displace_two_holders(presence: Presence) -> None:
    officer = occupant(presence, "officer", OF)
    debtor = occupant(presence, "debtor", D)
    await presence.claim(SID, officer)
    await presence.claim(SID, debtor)
    terminal = occupant(presence, "terminal", OF, D)
    displaced = await presence.claim(SID, terminal)
    assert sorted(o.participant_id for o in displaced) == ["debtor", "officer"]
    assert await presence.snapshot(SID) == {OF: terminal, D: terminal}


async def test_reclaiming_by_the_same_participant_displaces_nobody(presence: Presence) -> None:
    await presence.claim(SID, occupant(presence, "terminal", OF, D, sid="old"))
    again = occupant(presence, "terminal", D, sid="new")  # reconnected, now only the debtor
    assert await presence.claim(SID, again) == []
    assert await presence.snapshot(SID) == {D: again}


async def test_release_frees_every_seat(presence: Presence) -> None:
    terminal = occupant(presence, "terminal", OF, D)
    creditor = occupant(presence, "creditor", C)
    await presence.claim(SID, terminal)
    await presence.claim(SID, creditor)
    assert await presence.release(SID, "terminal") == terminal
    assert await presence.snapshot(SID) == {C: creditor}
    assert await presence.release(SID, "creditor") == creditor
    assert await presence.snapshot(SID) == {}


async def test_release_of_a_displaced_participant_returns_none(presence: Presence) -> None:
    first = occupant(presence, "p1", C)
    second = occupant(presence, "p2", C)
    await presence.claim(SID, first)
    await presence.claim(SID, second)
    # The old connection closes after being replaced: it must not free the new holder's seat.
    assert await presence.release(SID, "p1") is None
    assert await presence.snapshot(SID) == {C: second}
    assert await presence.release(SID, "never-here") is None
    assert await presence.release(SID, "p2") == second
    assert await presence.release(SID, "p2") is None


async def test_update_changes_the_state_on_every_seat_held(presence: Presence) -> None:
    terminal = occupant(presence, "terminal", OF, D)
    await presence.claim(SID, terminal)
    updated = await presence.update(SID, "terminal", audio_muted=True, connection="connected")
    expected_state = ParticipantState(audio_muted=True, video_muted=False, connection="connected")
    assert updated == replace(terminal, state=expected_state)
    seats = await presence.snapshot(SID)
    assert seats[OF].state == seats[D].state == expected_state
    # A later update keeps what it does not mention.
    await presence.update(SID, "terminal", video_muted=True)
    assert (await presence.snapshot(SID))[D].state == replace(expected_state, video_muted=True)
    assert await presence.update(SID, "nobody", audio_muted=True) is None


async def test_seat_view_lists_all_four_seats(presence: Presence) -> None:
    await presence.claim(SID, occupant(presence, "terminal", OF, D))
    view = seat_view(await presence.snapshot(SID))
    assert list(view) == ["judge", "officer", "debtor", "creditor"]
    assert view["judge"] is None
    assert view["creditor"] is None
    assert view["officer"] == view["debtor"]
    assert view["officer"]["participant"] == "terminal"
    assert view["officer"]["seats"] == ["officer", "debtor"]


async def test_concurrent_claims_of_one_seat_leave_exactly_one_holder(presence: Presence) -> None:
    pids = [f"p{i}" for i in range(25)]
    results = await asyncio.gather(
        *(presence.claim(SID, occupant(presence, pid, C)) for pid in pids)
    )
    seats = await presence.snapshot(SID)
    assert list(seats) == [C]
    winner = seats[C].participant_id
    displaced = [o.participant_id for found in results for o in found]
    # Each claim displaced the one before it: everyone but the last holder exactly once.
    assert len(displaced) == len(pids) - 1
    assert sorted([*displaced, winner]) == sorted(pids)


async def test_concurrent_claims_and_releases_keep_the_map_consistent(
    presence: Presence,
) -> None:
    async def visit(pid: str, seat: Seat) -> None:
        await presence.claim(SID, occupant(presence, pid, seat))
        await presence.release(SID, pid)

    await asyncio.gather(*(visit(f"p{i}", (OF, D, C)[i % 3]) for i in range(24)))
    await presence.claim(SID, occupant(presence, "last", J))
    assert await presence.snapshot(SID) == {J: await presence.holder(SID, "last")}


# Redis only: several nodes ----------------------------------------------------------------


async def test_nodes_share_seats(node_factory: Callable[..., Awaitable[RedisPresence]]) -> None:
    a = await node_factory(node="node-a")
    b = await node_factory(node="node-b")
    on_a = occupant(a, "p1", C)
    await a.claim(SID, on_a)
    assert await b.snapshot(SID) == {C: on_a}
    on_b = occupant(b, "p2", C)
    assert await b.claim(SID, on_b) == [on_a]
    assert await a.snapshot(SID) == {C: on_b}


async def test_seats_of_a_node_whose_heartbeat_expired_disappear(
    redis: Redis, node_factory: Callable[..., Awaitable[RedisPresence]]
) -> None:
    live = await node_factory(node="node-live", heartbeat_ttl=30)
    # A node that beat once and then died: its heartbeat key lives one second.
    dead = RedisPresence(redis, heartbeat_ttl=1, node="node-dead")
    await dead._beat()  # what start() does first; the refreshing task never runs
    terminal = occupant(dead, "terminal", OF, D)
    judge = occupant(live, "judge", J)
    await dead.claim(SID, terminal)
    await live.claim(SID, judge)
    assert await live.snapshot(SID) == {OF: terminal, D: terminal, J: judge}

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while await redis.exists(NODE_PREFIX + "node-dead"):
        assert loop.time() < deadline, "heartbeat key did not expire"
        await asyncio.sleep(0.05)

    assert await live.snapshot(SID) == {J: judge}
    assert await live.holder(SID, "terminal") is None
    # The seat is free: claiming it displaces nobody (nobody to tell on a dead node).
    assert await live.claim(SID, occupant(live, "debtor", D)) == []


async def test_a_started_node_keeps_its_heartbeat(
    redis: Redis, node_factory: Callable[..., Awaitable[RedisPresence]]
) -> None:
    node = await node_factory(node="node-beating", heartbeat_ttl=1)
    await node.claim(SID, occupant(node, "p1", C))
    # Several heartbeat lifetimes: the refresh every ttl/3 keeps the seats alive.
    await asyncio.sleep(1.2)
    assert await redis.exists(NODE_PREFIX + "node-beating") == 1
    assert (await node.snapshot(SID))[C].participant_id == "p1"


async def test_close_removes_the_node_key_and_frees_its_seats(
    redis: Redis, node_factory: Callable[..., Awaitable[RedisPresence]]
) -> None:
    other = await node_factory(node="node-other")
    closing = RedisPresence(redis, node="node-closing")
    await closing.start()
    await closing.claim(SID, occupant(closing, "p1", C))
    assert await redis.exists(NODE_PREFIX + "node-closing") == 1
    await closing.close()
    assert await redis.exists(NODE_PREFIX + "node-closing") == 0
    assert await other.snapshot(SID) == {}
    await closing.close()  # idempotent
