"""Consent (同意) of a party to online mediation, stored with its time before the first join."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from courtlink.court.seats import Seat

__all__ = ["CONSENT_SEATS", "CONSENT_TEXT_VERSION", "Consent"]

# Judges and officers act in office; the parties must agree to mediation online.
CONSENT_SEATS: frozenset[Seat] = frozenset({Seat.DEBTOR, Seat.CREDITOR})

# Bumped whenever the wording on the consent page changes, so each record says what was shown.
CONSENT_TEXT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Consent:
    session_id: str
    seat: Seat
    invite_id: str
    at: datetime
    recorded: bool
    text_version: int
    confirmed_by: str | None  # officer account id when the officer confirmed for a detainee
