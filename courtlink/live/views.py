"""What the live session tells clients, as plain dicts (docs/protocol.md): the presence message
and the answer to a join."""

from __future__ import annotations

from typing import Any

from courtlink.court.cases import Case
from courtlink.court.routing import seat_status
from courtlink.court.seats import SEATS, Seat
from courtlink.court.sessions import Session
from courtlink.live.presence import SeatMap, seat_view

__all__ = ["joined_view", "presence_view"]


def presence_view(session: Session, seats: SeatMap) -> dict[str, Any]:
    """The presence message: every seat (empty ones null), each with what the policy does to it
    (in the lobby, on hold in a caucus, muted by the judge), and the moderation itself."""
    view = seat_view(seats)
    moderation = session.moderation
    for seat in SEATS:
        status = seat_status(moderation, seat)
        if view[str(seat)] is not None:
            view[str(seat)]["status"] = {
                "in_lobby": status.in_lobby,
                "on_hold": status.on_hold,
                "muted": status.muted,
            }
    return {
        "session": session.id,
        "state": str(session.state),
        "seats": view,
        "moderation": moderation.encode(),
    }


def joined_view(
    session: Session,
    case: Case,
    participant_id: str,
    seats: tuple[Seat, ...],
    presence: dict[str, Any],
) -> dict[str, Any]:
    """The answer to a join: the participant, its seats, the session and who is in it.

    The state is the one ``presence`` was made with: a join may have just moved it.
    """
    return {
        "participant": participant_id,
        "seats": [str(s) for s in seats],
        "session": {
            "id": session.id,
            "case_number": case.number,
            "state": presence["state"],
            "recorded": session.recorded,
            "lobby": session.lobby,
        },
        "presence": presence,
    }
