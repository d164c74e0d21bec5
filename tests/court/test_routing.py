"""court.routing: who sees and hears whom.

The expected flow sets are written out by hand from the rules in the module docstring
(lobby, caucus, mute, and the "every seat" rule for a participant holding two seats), not
derived from the code under test.
"""

from __future__ import annotations

import itertools

import pytest

from courtlink.court.routing import (
    CAUCUS_SIDES,
    Caucus,
    Flow,
    Moderation,
    SeatStatus,
    flows,
    may_flow,
    participant_may_flow,
    seat_status,
)
from courtlink.court.seats import SEATS, Seat
from courtlink.errors import InvalidInput

J, OF, D, C = Seat.JUDGE, Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR
KINDS = ("audio", "video")

# One participant per seat.
FOUR = {J: "pj", OF: "po", D: "pd", C: "pc"}
# A detention-center terminal holding the officer and the debtor seats.
TERMINAL = {J: "pj", OF: "pt", D: "pt", C: "pc"}

OPEN = Moderation(lobby=False)


def av(source: str, target: str) -> set[Flow]:
    """Audio and video from ``source`` to ``target``."""
    return {Flow(source, target, "audio"), Flow(source, target, "video")}


def both_ways(a: str, b: str) -> set[Flow]:
    return av(a, b) | av(b, a)


def video(source: str, target: str) -> set[Flow]:
    return {Flow(source, target, "video")}


def audio(source: str, target: str) -> set[Flow]:
    return {Flow(source, target, "audio")}


# --- default -------------------------------------------------------------------------------------


def test_everyone_sees_and_hears_everyone_without_moderation() -> None:
    expected = (
        both_ways("pj", "po")
        | both_ways("pj", "pd")
        | both_ways("pj", "pc")
        | both_ways("po", "pd")
        | both_ways("po", "pc")
        | both_ways("pd", "pc")
    )
    assert len(expected) == 24
    assert flows(OPEN, FOUR) == expected
    for source, target in itertools.permutations(SEATS, 2):
        for kind in KINDS:
            assert may_flow(OPEN, source, target, kind)


def test_new_session_starts_with_the_lobby_on() -> None:
    moderation = Moderation()
    assert moderation.lobby is True
    assert moderation.admitted == frozenset()
    assert moderation.caucus is None
    assert moderation.muted == frozenset()
    assert flows(moderation, FOUR) == (
        both_ways("pj", "po") | both_ways("pj", "pd") | both_ways("po", "pd")
    )


def test_fewer_participants() -> None:
    assert flows(OPEN, {}) == frozenset()
    assert flows(OPEN, {J: "pj"}) == frozenset()
    assert flows(OPEN, {J: "pj", C: "pc"}) == both_ways("pj", "pc")
    assert flows(OPEN, {OF: "po", D: "pd"}) == both_ways("po", "pd")


# --- lobby ---------------------------------------------------------------------------------------


def test_lobby_holds_the_creditor_both_directions() -> None:
    lobby = Moderation(lobby=True)
    expected = both_ways("pj", "po") | both_ways("pj", "pd") | both_ways("po", "pd")
    assert flows(lobby, FOUR) == expected
    for seat in (J, OF, D):
        for kind in KINDS:
            assert not may_flow(lobby, C, seat, kind)
            assert not may_flow(lobby, seat, C, kind)
    assert flows(lobby, {J: "pj", C: "pc"}) == frozenset()


def test_lobby_holds_only_the_creditor() -> None:
    # The other seats need no admission: admitted lists only the creditor, if anyone.
    lobby = Moderation(lobby=True, admitted=frozenset())
    for source, target in itertools.permutations((J, OF, D), 2):
        for kind in KINDS:
            assert may_flow(lobby, source, target, kind)


def test_admitted_creditor_joins_everyone() -> None:
    admitted = Moderation(lobby=True, admitted=frozenset({C}))
    assert flows(admitted, FOUR) == flows(OPEN, FOUR)
    assert flows(admitted, FOUR) == (
        both_ways("pj", "po")
        | both_ways("pj", "pd")
        | both_ways("pj", "pc")
        | both_ways("po", "pd")
        | both_ways("po", "pc")
        | both_ways("pd", "pc")
    )


def test_lobby_off_ignores_admission() -> None:
    assert flows(Moderation(lobby=False, admitted=frozenset()), FOUR) == flows(OPEN, FOUR)


# --- caucus --------------------------------------------------------------------------------------


def test_caucus_sides() -> None:
    assert {
        Caucus.DETENTION: frozenset({OF, D}),
        Caucus.CREDITOR: frozenset({C}),
    } == CAUCUS_SIDES


def test_detention_caucus() -> None:
    caucus = Moderation(lobby=False, caucus=Caucus.DETENTION)
    expected = both_ways("pj", "po") | both_ways("pj", "pd") | both_ways("po", "pd")
    assert flows(caucus, FOUR) == expected
    for seat in (J, OF, D):
        for kind in KINDS:
            assert not may_flow(caucus, C, seat, kind)
            assert not may_flow(caucus, seat, C, kind)


def test_creditor_caucus() -> None:
    caucus = Moderation(lobby=False, caucus=Caucus.CREDITOR)
    # Judge and creditor together; officer and debtor on hold but still with each other.
    expected = both_ways("pj", "pc") | both_ways("po", "pd")
    assert flows(caucus, FOUR) == expected
    for held in (OF, D):
        for seat in (J, C):
            for kind in KINDS:
                assert not may_flow(caucus, held, seat, kind)
                assert not may_flow(caucus, seat, held, kind)


def test_creditor_caucus_with_creditor_still_in_lobby() -> None:
    caucus = Moderation(lobby=True, caucus=Caucus.CREDITOR)
    assert flows(caucus, FOUR) == both_ways("po", "pd")


def test_caucus_ends() -> None:
    assert flows(Moderation(lobby=False, caucus=None), FOUR) == flows(OPEN, FOUR)


# --- mute ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("muted", "pid"), [(OF, "po"), (D, "pd"), (C, "pc")])
def test_mute_stops_only_that_seats_audio(muted: Seat, pid: str) -> None:
    moderation = Moderation(lobby=False, muted=frozenset({muted}))
    expected = set(flows(OPEN, FOUR)) - {Flow(pid, other, "audio") for other in FOUR.values()}
    assert flows(moderation, FOUR) == expected
    for other in set(FOUR.values()) - {pid}:
        assert Flow(pid, other, "video") in expected  # still seen
        assert Flow(other, pid, "audio") in expected  # still hears


def test_mute_debtor_explicit() -> None:
    moderation = Moderation(lobby=False, muted=frozenset({D}))
    expected = (
        both_ways("pj", "po")
        | both_ways("pj", "pc")
        | both_ways("po", "pc")
        | av("pj", "pd")
        | av("po", "pd")
        | av("pc", "pd")
        | video("pd", "pj")
        | video("pd", "po")
        | video("pd", "pc")
    )
    assert flows(moderation, FOUR) == expected


def test_mute_two_seats_and_caucus_together() -> None:
    moderation = Moderation(lobby=False, caucus=Caucus.DETENTION, muted=frozenset({OF, C}))
    expected = (
        both_ways("pj", "pd")
        | av("pj", "po")
        | av("pd", "po")
        | video("po", "pj")
        | video("po", "pd")
    )
    assert flows(moderation, FOUR) == expected


# --- a participant holding two seats ("every seat" rule) ------------------------------------------


def test_terminal_without_moderation() -> None:
    assert flows(OPEN, TERMINAL) == (
        both_ways("pj", "pt") | both_ways("pj", "pc") | both_ways("pt", "pc")
    )


@pytest.mark.parametrize("muted", [OF, D], ids=["officer muted", "debtor muted"])
def test_terminal_muting_either_seat_silences_it(muted: Seat) -> None:
    moderation = Moderation(lobby=False, muted=frozenset({muted}))
    expected = (
        both_ways("pj", "pc")
        | av("pj", "pt")
        | av("pc", "pt")
        | video("pt", "pj")
        | video("pt", "pc")
    )
    assert flows(moderation, TERMINAL) == expected
    assert not participant_may_flow(moderation, (OF, D), (J,), "audio")
    assert participant_may_flow(moderation, (OF, D), (J,), "video")
    assert participant_may_flow(moderation, (J,), (OF, D), "audio")


def test_terminal_in_creditor_caucus_is_on_hold() -> None:
    moderation = Moderation(lobby=False, caucus=Caucus.CREDITOR)
    assert flows(moderation, TERMINAL) == both_ways("pj", "pc")


def test_terminal_in_detention_caucus() -> None:
    moderation = Moderation(lobby=False, caucus=Caucus.DETENTION)
    assert flows(moderation, TERMINAL) == both_ways("pj", "pt")


def test_terminal_with_creditor_in_lobby() -> None:
    assert flows(Moderation(lobby=True), TERMINAL) == both_ways("pj", "pt")
    admitted = Moderation(lobby=True, admitted=frozenset({C}))
    assert flows(admitted, TERMINAL) == flows(OPEN, TERMINAL)


def test_every_seat_rule_on_hand_built_seat_sets() -> None:
    # A participant holding a seat in the caucus and one on hold gets nothing through.
    caucus = Moderation(lobby=False, caucus=Caucus.CREDITOR)
    for kind in KINDS:
        assert not participant_may_flow(caucus, (OF, C), (J,), kind)
        assert not participant_may_flow(caucus, (J,), (OF, C), kind)
        assert participant_may_flow(caucus, (C,), (J,), kind)
    # A participant in the lobby as one of its seats receives nothing.
    lobby = Moderation(lobby=True)
    assert not participant_may_flow(lobby, (J,), (D, C), "video")
    assert participant_may_flow(lobby, (J,), (OF, D), "video")


# --- seat_status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moderation", "expected"),
    [
        (
            OPEN,
            {
                J: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                OF: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                D: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                C: SeatStatus(in_lobby=False, on_hold=False, muted=False),
            },
        ),
        (
            Moderation(lobby=True),
            {
                J: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                OF: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                D: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                C: SeatStatus(in_lobby=True, on_hold=False, muted=False),
            },
        ),
        (
            Moderation(lobby=True, admitted=frozenset({C}), muted=frozenset({D})),
            {
                J: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                OF: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                D: SeatStatus(in_lobby=False, on_hold=False, muted=True),
                C: SeatStatus(in_lobby=False, on_hold=False, muted=False),
            },
        ),
        (
            Moderation(lobby=False, caucus=Caucus.DETENTION),
            {
                J: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                OF: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                D: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                C: SeatStatus(in_lobby=False, on_hold=True, muted=False),
            },
        ),
        (
            Moderation(lobby=True, caucus=Caucus.CREDITOR, muted=frozenset({OF, C})),
            {
                J: SeatStatus(in_lobby=False, on_hold=False, muted=False),
                OF: SeatStatus(in_lobby=False, on_hold=True, muted=True),
                D: SeatStatus(in_lobby=False, on_hold=True, muted=False),
                C: SeatStatus(in_lobby=True, on_hold=False, muted=True),
            },
        ),
    ],
    ids=["open", "lobby", "admitted+muted", "detention caucus", "creditor caucus+lobby+muted"],
)
def test_seat_status(moderation: Moderation, expected: dict[Seat, SeatStatus]) -> None:
    assert {seat: seat_status(moderation, seat) for seat in SEATS} == expected


# --- input checks and invariants -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["data", "", "Audio", "VIDEO", "screen"])
def test_unknown_kind_is_invalid_input(kind: str) -> None:
    with pytest.raises(InvalidInput):
        may_flow(OPEN, J, C, kind)
    with pytest.raises(InvalidInput):
        may_flow(OPEN, J, J, kind)
    with pytest.raises(InvalidInput):
        participant_may_flow(OPEN, (OF, D), (J,), kind)


def all_moderations() -> list[Moderation]:
    subsets = [
        frozenset(s) for n in range(len(SEATS) + 1) for s in itertools.combinations(SEATS, n)
    ]
    return [
        Moderation(lobby=lobby, admitted=admitted, caucus=caucus, muted=muted)
        for lobby in (True, False)
        for admitted in (frozenset(), frozenset({C}))
        for caucus in (None, Caucus.DETENTION, Caucus.CREDITOR)
        for muted in subsets
    ]


def test_no_self_flows_under_any_moderation() -> None:
    for moderation in all_moderations():
        for seat in SEATS:
            for kind in KINDS:
                assert not may_flow(moderation, seat, seat, kind)
        assert not participant_may_flow(moderation, (OF, D), (D,), "audio")
        assert not participant_may_flow(moderation, (OF, D), (OF, D), "video")
        for holders in (FOUR, TERMINAL):
            assert all(f.source != f.target for f in flows(moderation, holders))


def test_video_is_symmetric_and_audio_only_lost_to_mute() -> None:
    for moderation in all_moderations():
        for source, target in itertools.permutations(SEATS, 2):
            sees = may_flow(moderation, source, target, "video")
            assert sees == may_flow(moderation, target, source, "video")
            hears = may_flow(moderation, source, target, "audio")
            assert hears == (sees and source not in moderation.muted)


def test_flows_only_between_present_participants() -> None:
    holders = {J: "pj", C: "pc"}
    for moderation in all_moderations():
        for flow in flows(moderation, holders):
            assert {flow.source, flow.target} == {"pj", "pc"}
            assert flow.kind in KINDS


def test_moderation_encode() -> None:
    moderation = Moderation(
        lobby=True,
        admitted=frozenset({C}),
        caucus=Caucus.DETENTION,
        muted=frozenset({OF, D}),
    )
    assert moderation.encode() == {
        "lobby": True,
        "admitted": ["creditor"],
        "caucus": "detention",
        "muted": ["debtor", "officer"],
    }
    assert Moderation().encode() == {"lobby": True, "admitted": [], "caucus": None, "muted": []}
