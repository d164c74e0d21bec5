"""Session states after a change of presence (docs/protocol.md: scheduled = nobody has joined
yet, open = someone is in, live = the judge and at least one other party are in, ended = final).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from courtlink.court.sessions import Session, SessionState
from courtlink.errors import Conflict

S, OP, L, E = (
    SessionState.SCHEDULED,
    SessionState.OPEN,
    SessionState.LIVE,
    SessionState.ENDED,
)
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def session(state: SessionState) -> Session:
    return Session(
        id="s1",
        case_id="c1",
        scheduled_at=T0,
        state=state,
        lobby=True,
        recorded=False,
        created_by="account:judge",
        created_at=T0 - timedelta(days=1),
    )


# (state before, judge in, other parties in) -> state after
TRANSITIONS = {
    # Nobody has been in yet.
    (S, False, 0): S,
    (S, True, 0): OP,
    (S, False, 1): OP,
    (S, False, 3): OP,
    (S, True, 1): L,
    (S, True, 3): L,
    # Someone is in, the room is not complete.
    (OP, False, 0): OP,  # everyone left: somebody has been in, so never scheduled again
    (OP, True, 0): OP,
    (OP, False, 2): OP,
    (OP, True, 1): L,
    (OP, True, 2): L,
    # Live needs the judge and another party; when either side leaves it is open again.
    (L, True, 1): L,
    (L, True, 3): L,
    (L, True, 0): OP,
    (L, False, 1): OP,
    (L, False, 0): OP,
    # Ended is final.
    (E, False, 0): E,
    (E, True, 0): E,
    (E, False, 1): E,
    (E, True, 3): E,
}


@pytest.mark.parametrize(
    ("before", "judge_in", "others_in", "after"),
    [(b, j, o, a) for (b, j, o), a in TRANSITIONS.items()],
)
def test_state_after_presence(
    before: SessionState, judge_in: bool, others_in: int, after: SessionState
) -> None:
    assert session(before).after_presence(judge_in, others_in) is after


def test_every_state_has_transitions() -> None:
    assert {before for before, _, _ in TRANSITIONS} == set(SessionState)


def test_a_full_session_day() -> None:
    """The creditor waits, the judge comes, the creditor drops out and back, all leave."""
    steps = [
        ((False, 1), OP),
        ((True, 1), L),
        ((True, 0), OP),
        ((True, 2), L),
        ((False, 0), OP),
    ]
    current = session(S)
    for (judge_in, others_in), expected in steps:
        current = replace(current, state=current.after_presence(judge_in, others_in))
        assert current.state is expected


def test_ending_sets_the_time_and_is_final() -> None:
    ended = session(L).ended(T0 + timedelta(hours=1))
    assert ended.state is E
    assert ended.ended_at == T0 + timedelta(hours=1)
    with pytest.raises(Conflict):
        ended.ended(T0 + timedelta(hours=2))


@pytest.mark.parametrize("state", [S, OP, L])
def test_any_state_but_ended_can_end(state: SessionState) -> None:
    assert session(state).ended(T0).state is E
