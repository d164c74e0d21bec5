"""Signaling: the Socket.IO adapter of the live session (connect, the protocol's events and
acks, the outbox, document notifications). Never imports aiortc; the hearing lives in live/."""

from courtlink.signaling.messages import PROTOCOL_VERSION
from courtlink.signaling.server import Authenticate, SignalingServer

__all__ = ["PROTOCOL_VERSION", "Authenticate", "SignalingServer"]
