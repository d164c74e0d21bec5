"""Sessions: one video room for one case, with four seats."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from rooms.errors import Conflict

__all__ = ["Session", "SessionState"]


class SessionState(StrEnum):
    SCHEDULED = "scheduled"  # created, nobody in yet
    OPEN = "open"  # someone is in, waiting for the judge or a party
    LIVE = "live"  # the judge and at least one other party are in
    ENDED = "ended"  # the judge ended it; nobody can join again


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    case_id: str
    scheduled_at: datetime
    state: SessionState
    lobby: bool
    recorded: bool
    created_by: str
    created_at: datetime
    ended_at: datetime | None = None

    def after_presence(self, judge_in: bool, others_in: int) -> SessionState:
        """The state a change of presence leads to (docs/protocol.md). Ended is final; live
        means the judge and another party are in, so it falls back to open when either side
        leaves, and never to scheduled (somebody has been in)."""
        if self.state is SessionState.ENDED:
            return self.state
        if judge_in and others_in > 0:
            return SessionState.LIVE
        if not judge_in and others_in == 0 and self.state is SessionState.SCHEDULED:
            return SessionState.SCHEDULED
        return SessionState.OPEN

    def ended(self, at: datetime) -> Session:
        if self.state is SessionState.ENDED:
            raise Conflict("session has already ended")
        return replace(self, state=SessionState.ENDED, ended_at=at)
