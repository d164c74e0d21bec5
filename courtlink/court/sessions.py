"""Sessions: one video room for one case, with four seats."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from courtlink.court.routing import Caucus, Moderation
from courtlink.court.seats import Seat
from courtlink.errors import Conflict, InvalidInput

__all__ = ["VIDEO_CODECS", "Session", "SessionState"]

# VP8 by default; H.264 constrained baseline for sessions whose terminal can only do that.
VIDEO_CODECS = ("vp8", "h264")


def check_video_codec(value: str) -> str:
    if value not in VIDEO_CODECS:
        raise InvalidInput(f"video codec must be one of {', '.join(VIDEO_CODECS)}")
    return value


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
    video_codec: str = "vp8"
    # The judge's moderation (court/routing.py); ``lobby`` above is whether the lobby is on.
    admitted: frozenset[Seat] = frozenset()
    caucus: Caucus | None = None
    muted: frozenset[Seat] = frozenset()

    @property
    def moderation(self) -> Moderation:
        return Moderation(
            lobby=self.lobby, admitted=self.admitted, caucus=self.caucus, muted=self.muted
        )

    def moderated(self, moderation: Moderation) -> Session:
        return replace(
            self,
            lobby=moderation.lobby,
            admitted=moderation.admitted,
            caucus=moderation.caucus,
            muted=moderation.muted,
        )

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
