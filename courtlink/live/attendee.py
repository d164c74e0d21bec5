"""One client connected to this node, and the seats it holds through that connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from courtlink.court.cases import Case
from courtlink.court.policy import AccountPrincipal, Principal
from courtlink.court.seats import Seat

__all__ = ["Attendee", "Reauthenticate", "display_name"]

# Authenticates the client again with what it connected with: an invite may have been revoked,
# or have expired, or an account logged out, since the connection was opened.
Reauthenticate = Callable[[], Awaitable[Principal]]


@dataclass
class Attendee:
    """A connection known to the hearing. ``participant_id`` is set while it holds seats."""

    connection: str
    principal: Principal
    reauthenticate: Reauthenticate = field(repr=False)
    participant_id: str | None = None
    session_id: str | None = None
    case_id: str | None = None
    seats: tuple[Seat, ...] = ()
    # One join at a time per connection: a second join sent before the first was answered
    # would otherwise displace the first, that is, the connection itself.
    joining: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def unseat(self) -> tuple[str | None, str | None]:
        """Forget the seat (the caller frees it); returns the session and participant it was."""
        held = self.session_id, self.participant_id
        self.participant_id = self.session_id = None
        return held


def display_name(principal: Principal, seats: tuple[Seat, ...], case: Case) -> str:
    """How others see the participant: an account's name, else the names the case gives the
    seats (the creditor's and debtor's names; the officer seat by its name)."""
    if isinstance(principal, AccountPrincipal):
        return principal.account.display_name
    names = {Seat.CREDITOR: case.creditor_name, Seat.DEBTOR: case.debtor_name}
    return " / ".join(names.get(seat, str(seat)) for seat in seats)
