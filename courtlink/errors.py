"""The project's exceptions. One root, translated to a Socket.IO error ack or an HTTP problem
only at the edge (signaling/, web/).

::

    CourtlinkError                  500  internal
    ├── ConfigError                      config_invalid     (start-up only)
    ├── InvalidInput                422  invalid_input
    ├── NotAuthenticated            401  not_authenticated
    │   ├── InviteInvalid                invite_invalid     (bad signature, malformed, unknown)
    │   ├── InviteExpired                invite_expired
    │   └── InviteRevoked                invite_revoked
    ├── Forbidden                   403  forbidden
    │   └── SeatNotAllowed               seat_not_allowed   (wrong seat or wrong session)
    ├── NotFound                    404  not_found
    ├── Conflict                    409  conflict           (the state does not allow it)
    ├── RateLimited                 429  rate_limited
    └── Unavailable                 503  unavailable        (database or Redis unreachable)

Every class carries a stable machine ``code`` (documented in docs/protocol.md) and an HTTP
``status``; the message is for people and never contains secrets.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConfigError",
    "Conflict",
    "CourtlinkError",
    "Forbidden",
    "InvalidInput",
    "InviteExpired",
    "InviteInvalid",
    "InviteRevoked",
    "NotAuthenticated",
    "NotFound",
    "RateLimited",
    "SeatNotAllowed",
    "Unavailable",
]


class CourtlinkError(Exception):
    """Root of every error Courtlink raises on purpose."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance refinement of the class code

    def as_dict(self) -> dict[str, str]:
        """The ``error`` member of a Socket.IO ack."""
        return {"code": self.code, "message": self.message}


class ConfigError(CourtlinkError):
    code = "config_invalid"


class InvalidInput(CourtlinkError):
    code = "invalid_input"
    status = 422


class NotAuthenticated(CourtlinkError):
    code = "not_authenticated"
    status = 401


class InviteInvalid(NotAuthenticated):
    code = "invite_invalid"


class InviteExpired(NotAuthenticated):
    code = "invite_expired"


class InviteRevoked(NotAuthenticated):
    code = "invite_revoked"


class Forbidden(CourtlinkError):
    code = "forbidden"
    status = 403


class SeatNotAllowed(Forbidden):
    code = "seat_not_allowed"


class NotFound(CourtlinkError):
    code = "not_found"
    status = 404


class Conflict(CourtlinkError):
    code = "conflict"
    status = 409


class RateLimited(CourtlinkError):
    code = "rate_limited"
    status = 429


class Unavailable(CourtlinkError):
    code = "unavailable"
    status = 503
