"""Signaling: the python-socketio server (join, leave, presence, replacement; later media
negotiation, moderation and document notifications). Never imports aiortc."""

from courtlink.signaling.messages import PROTOCOL_VERSION
from courtlink.signaling.server import Authenticate, SignalingServer

__all__ = ["PROTOCOL_VERSION", "Authenticate", "SignalingServer"]
