"""Presence shared by several nodes through Redis.

Each session's seat map is one JSON value changed under WATCH/MULTI (optimistic, retried), so two
nodes seating the same seat at once cannot both win. Each node refreshes a heartbeat key; seats
held through a node whose heartbeat expired are dropped when read, so a crashed node's seats free
themselves within ``heartbeat_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from courtlink.clock import new_id
from courtlink.errors import Unavailable
from courtlink.live.presence import Presence, SeatMap, decode, encode

__all__ = ["RedisPresence"]

T = TypeVar("T")
PREFIX = "courtlink:presence:"
NODE_PREFIX = "courtlink:node:"


class RedisPresence(Presence):
    def __init__(self, redis: Redis, *, heartbeat_ttl: int = 30, node: str | None = None) -> None:
        self.redis = redis
        self.node = node or new_id()
        self.heartbeat_ttl = heartbeat_ttl
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._beat()
        self._heartbeat = asyncio.create_task(self._beat_forever(), name="presence-heartbeat")

    async def _beat(self) -> None:
        await self.redis.set(NODE_PREFIX + self.node, "1", ex=self.heartbeat_ttl)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_ttl / 3)
            with contextlib.suppress(RedisError):
                await self._beat()

    async def close(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(RedisError):
                await self.redis.delete(NODE_PREFIX + self.node)

    async def _alive(self, seats: SeatMap) -> SeatMap:
        nodes = sorted({held.node for held in seats.values()})
        if not nodes:
            return seats
        flags = await self.redis.mget([NODE_PREFIX + n for n in nodes])
        alive = {n for n, flag in zip(nodes, flags, strict=True) if flag is not None}
        return {seat: held for seat, held in seats.items() if held.node in alive}

    async def _transact(self, session_id: str, change: Callable[[SeatMap], T]) -> T:
        key = PREFIX + session_id
        try:
            for _ in range(50):
                async with self.redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(key)
                        seats = await self._alive(decode(await pipe.get(key)))
                        result = change(seats)
                        pipe.multi()  # type: ignore[no-untyped-call]
                        if seats:
                            pipe.set(key, encode(seats), ex=86400)
                        else:
                            pipe.delete(key)
                        await pipe.execute()
                        return result
                    except WatchError:
                        continue
        except RedisError as exc:
            raise Unavailable(f"presence store unreachable: {type(exc).__name__}") from None
        raise Unavailable("presence store too contended; try again")

    async def _load(self, session_id: str) -> SeatMap:
        try:
            return await self._alive(decode(await self.redis.get(PREFIX + session_id)))
        except RedisError as exc:
            raise Unavailable(f"presence store unreachable: {type(exc).__name__}") from None
