"""Payloads of the Socket.IO protocol (docs/protocol.md), validated before anything changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from courtlink.court.routing import Caucus
from courtlink.court.seats import Seat
from courtlink.errors import CourtlinkError, InvalidInput

__all__ = [
    "PROTOCOL_VERSION",
    "CaucusRequest",
    "EndRequest",
    "Handler",
    "JoinRequest",
    "LeaveRequest",
    "LobbyRequest",
    "MediaAnswer",
    "MediaCandidate",
    "MediaRestart",
    "MuteRequest",
    "Payload",
    "PresenceRequest",
    "SeatRequest",
    "StateRequest",
    "error_ack",
    "ok_ack",
    "parse",
]

PROTOCOL_VERSION = 1

P = TypeVar("P", bound="Payload")

# An event handler: (sid, payload) -> the ack.
Handler = Callable[[str, Any], Awaitable[dict[str, Any]]]


class Payload(BaseModel):
    # Strict scalars (a number is not a session id, "yes" is not a boolean); seats are matched
    # by value against the Seat enum.
    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinRequest(Payload):
    session: StrictStr = Field(min_length=1, max_length=32)
    # Omitted: every seat the invite holds (a terminal takes officer and debtor at once).
    seats: list[Seat] | None = Field(default=None, min_length=1, max_length=2)


class LeaveRequest(Payload):
    pass


class StateRequest(Payload):
    audio_muted: StrictBool | None = None
    video_muted: StrictBool | None = None


class PresenceRequest(Payload):
    pass


class MediaAnswer(Payload):
    sdp: StrictStr = Field(min_length=1, max_length=65536)


class MediaCandidate(Payload):
    candidate: StrictStr = Field(max_length=1024)
    sdpMid: StrictStr | None = Field(default=None, max_length=32)
    sdpMLineIndex: StrictInt | None = Field(default=None, ge=0, le=64)
    usernameFragment: StrictStr | None = Field(default=None, max_length=256)


class MediaRestart(Payload):
    pass


class LobbyRequest(Payload):
    enabled: StrictBool


class SeatRequest(Payload):
    """``admit`` and ``remove``: the seat they act on."""

    seat: Seat


class CaucusRequest(Payload):
    side: Caucus | None  # null ends the caucus


class MuteRequest(Payload):
    seat: Seat
    muted: StrictBool


class EndRequest(Payload):
    pass


def parse(model: type[P], payload: Any) -> P:
    """Validate ``payload`` (None counts as an empty object); InvalidInput names the field."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        reason = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidInput(f"{where}: {reason}") from None


def ok_ack(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": True, "data": data or {}}


def error_ack(error: CourtlinkError) -> dict[str, Any]:
    return {"ok": False, "error": error.as_dict()}
