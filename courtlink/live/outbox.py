"""The port through which the live session talks to clients; signaling implements it.

The hearing decides what must be told to whom (a presence message to everyone in a session, a
notice to the participant whose seat was taken) and which connections must close; the edge
carries it over Socket.IO. A connection is named by the edge's id for it (the ``sid`` an
``Occupant`` records), which any node of a cluster can address.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Outbox"]


class Outbox(Protocol):
    """What the live session needs from the transport to its clients."""

    async def send(self, connection: str, event: str, message: dict[str, Any]) -> None:
        """Tell one connection, wherever it is connected."""

    async def publish(self, session_id: str, event: str, message: dict[str, Any]) -> None:
        """Tell every connection that listens to the session."""

    async def listen(self, connection: str, session_id: str) -> None:
        """From now on, ``connection`` receives what is published to the session."""

    async def unlisten(self, connection: str, session_id: str) -> None:
        """``connection`` no longer receives the session's messages; no error if it did not."""

    async def disconnect(self, connection: str, *, grace: float = 0.0) -> None:
        """Close ``connection``; with ``grace`` (seconds), shortly and without waiting, so that
        the answer to the request in progress reaches its client first."""
