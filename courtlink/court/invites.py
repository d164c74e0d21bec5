"""Invites: signed, expiring, revocable tokens bound to one session and its seats.

The token is a JWT (PyJWT, HS256 with the server's secret). Its signature proves Courtlink
issued it; the database row proves it has not been revoked. Both are checked on every use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from courtlink.clock import Clock, system_clock
from courtlink.court.seats import Seat
from courtlink.errors import InvalidInput, InviteExpired, InviteInvalid, SeatNotAllowed

__all__ = ["Invite", "InviteClaims", "InviteSigner", "check_invite_seats"]

AUDIENCE = "courtlink:invite"
ISSUER = "courtlink"
# A terminal may hold the officer and the detainee seats at once (one screen for both).
_SHARED = frozenset({Seat.OFFICER, Seat.DEBTOR})


def check_invite_seats(seats: list[Seat] | tuple[Seat, ...]) -> tuple[Seat, ...]:
    chosen = tuple(dict.fromkeys(seats))
    if not chosen:
        raise InvalidInput("an invite needs at least one seat")
    if len(chosen) > 1 and not frozenset(chosen) <= _SHARED:
        raise InvalidInput("only the officer and debtor seats may share one invite")
    return chosen


@dataclass(frozen=True, slots=True)
class Invite:
    id: str
    session_id: str
    seats: tuple[Seat, ...]
    expires_at: datetime
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None
    label: str = ""

    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def actor(self) -> str:
        return f"invite:{self.id}"


@dataclass(frozen=True, slots=True)
class InviteClaims:
    """What a verified token says (before the revocation check against the database)."""

    invite_id: str
    session_id: str
    seats: tuple[Seat, ...]
    expires_at: datetime

    def check(self, session_id: str, seats: tuple[Seat, ...]) -> None:
        if session_id != self.session_id:
            raise SeatNotAllowed("this invite is for another session")
        extra = [seat for seat in seats if seat not in self.seats]
        if extra:
            raise SeatNotAllowed(f"this invite does not hold the {extra[0]} seat")


class InviteSigner:
    def __init__(self, key: bytes, clock: Clock = system_clock) -> None:
        if len(key) < 32:
            raise ValueError("invite key must have at least 256 bits")
        self._key = key
        self._clock = clock

    def sign(self, invite: Invite) -> str:
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "jti": invite.id,
            "sid": invite.session_id,
            "seats": [str(seat) for seat in invite.seats],
            "iat": int(invite.created_at.timestamp()),
            "exp": int(invite.expires_at.timestamp()),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def read(self, token: str) -> InviteClaims:
        """Verify signature, audience and expiry. Raises InviteInvalid or InviteExpired."""
        if not token or len(token) > 2048:
            raise InviteInvalid("invite token is missing or malformed")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                # Time is judged below against the injected clock; PyJWT would read the wall
                # clock (and refuse an "iat" ahead of it: a node whose clock runs ahead).
                options={
                    "require": ["exp", "jti", "aud", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise InviteInvalid("invite token is not valid") from None
        now = self._clock().timestamp()
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise InviteExpired("this invite has expired")
        try:
            seats = tuple(Seat(seat) for seat in claims["seats"])
            return InviteClaims(
                invite_id=str(claims["jti"]),
                session_id=str(claims["sid"]),
                seats=check_invite_seats(seats),
                expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
            )
        except (KeyError, ValueError, TypeError, InvalidInput):
            raise InviteInvalid("invite token is not valid") from None


def expiry(now: datetime, hours: float) -> datetime:
    return now + timedelta(hours=hours)
