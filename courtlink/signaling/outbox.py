"""The live session's ``Outbox`` over python-socketio.

A session's listeners are the Socket.IO room ``session:<id>``; a connection is its sid. With the
Redis client manager, emits and disconnects reach connections on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio

__all__ = ["SocketOutbox", "session_room"]

log = logging.getLogger("courtlink.signaling")


def session_room(session_id: str) -> str:
    """The room of everyone seated in the session (and nobody who left it)."""
    return f"session:{session_id}"


class SocketOutbox:
    """Implements ``courtlink.live.outbox.Outbox``; ``close`` cancels delayed disconnects."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self._later: set[asyncio.Task[None]] = set()

    async def send(self, connection: str, event: str, message: dict[str, Any]) -> None:
        """Emit to one sid."""
        await self.sio.emit(event, message, to=connection)

    async def publish(self, session_id: str, event: str, message: dict[str, Any]) -> None:
        """Emit to the session's room."""
        await self.sio.emit(event, message, room=session_room(session_id))

    async def listen(self, connection: str, session_id: str) -> None:
        """Enter the session's room."""
        await self.sio.enter_room(connection, session_room(session_id))

    async def unlisten(self, connection: str, session_id: str) -> None:
        """Leave the session's room; a connection already gone is no error."""
        with contextlib.suppress(ValueError, KeyError):
            await self.sio.leave_room(connection, session_room(session_id))

    async def disconnect(self, connection: str, *, grace: float = 0.0) -> None:
        """Disconnect the sid, now or (with ``grace``) from a task, after the current ack."""
        if grace <= 0:
            await self.sio.disconnect(connection)
            return
        task = asyncio.create_task(self._disconnect_later(connection, grace))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _disconnect_later(self, connection: str, grace: float) -> None:
        await asyncio.sleep(grace)
        try:
            await self.sio.disconnect(connection)
        except Exception:
            log.exception("delayed disconnect failed", extra={"sid": connection})

    async def close(self) -> None:
        """Cancel the disconnects still waiting; idempotent."""
        for task in list(self._later):
            task.cancel()
        for task in list(self._later):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._later.clear()
