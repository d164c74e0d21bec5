"""Judicial detention (司法拘留): periods, renewal and release.

A detention is a list of periods. The first comes from the detention decision (拘留决定书); each
renewal (续拘) adds one that starts when the current one ends. No period may be longer than the
legal maximum, which is configuration (15 days by law) and passed in, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from courtlink.errors import Conflict, InvalidInput

__all__ = ["Detention", "DetentionStatus", "Period", "check_period_days"]


class DetentionStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    days: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def check_period_days(days: int, max_days: int) -> int:
    if not 1 <= days <= max_days:
        raise InvalidInput(f"a detention period must be 1 to {max_days} days, not {days}")
    return days


@dataclass(frozen=True, slots=True)
class Detention:
    """The detention of a case's debtor at one detention center."""

    id: str
    case_id: str
    debtor_name: str
    center: str
    periods: tuple[Period, ...]
    released_at: datetime | None = None
    created_at: datetime | None = field(default=None, compare=False)

    @property
    def ends_at(self) -> datetime:
        return self.periods[-1].end

    def status(self, now: datetime) -> DetentionStatus:
        if self.released_at is not None:
            return DetentionStatus.RELEASED
        if now >= self.ends_at:
            return DetentionStatus.EXPIRED
        return DetentionStatus.ACTIVE

    def days_left(self, now: datetime) -> float:
        """Days until the current period ends (0 once released or expired)."""
        if self.status(now) is not DetentionStatus.ACTIVE:
            return 0.0
        return (self.ends_at - now).total_seconds() / 86400

    def expiring_soon(self, now: datetime, within_days: int) -> bool:
        return self.status(now) is DetentionStatus.ACTIVE and self.days_left(now) <= within_days

    def renewed(self, days: int, max_days: int, now: datetime) -> Detention:
        """A renewal: a new period from the end of the current one (never overlapping it)."""
        check_period_days(days, max_days)
        if self.status(now) is not DetentionStatus.ACTIVE:
            raise Conflict(f"detention is {self.status(now)}, it cannot be renewed")
        return replace(self, periods=(*self.periods, Period(self.ends_at, days)))

    def released(self, at: datetime) -> Detention:
        if self.released_at is not None:
            raise Conflict("detention is already released")
        return replace(self, released_at=at)
