"""Payloads of the Socket.IO protocol (docs/protocol.md), validated before anything changes."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from rooms.errors import CourtlinkError, InvalidInput
from rooms.seats import Seat

__all__ = [
    "PROTOCOL_VERSION",
    "JoinRequest",
    "LeaveRequest",
    "Payload",
    "PresenceRequest",
    "StateRequest",
    "error_ack",
    "ok_ack",
    "parse",
]

PROTOCOL_VERSION = 1

P = TypeVar("P", bound="Payload")


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
