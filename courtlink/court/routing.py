"""The routing policy: who sees and hears whom. Pure functions, enforced by the SFU.

By default everyone in a session sees and hears everyone. The judge changes that:

- **Lobby**: with the lobby on, a creditor who joins waits until the judge admits them; while
  waiting they receive nothing and nobody receives them.
- **Caucus** (背对背调解): the judge talks with one side alone, the detention side (officer and
  debtor) or the creditor. Seats outside the caucus are *on hold*: the caucus neither receives them
  nor is received by them. Seats on hold may still see each other (an officer and a debtor on the
  same side stay together).
- **Mute**: the server stops forwarding a seat's audio to everyone.

A participant may hold two seats (a terminal: officer + debtor, one camera, one microphone). Its
media flows to another participant only if it may flow from *every* seat it holds to *every* seat
the other holds, so muting or holding either seat of a shared terminal silences the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from courtlink.court.seats import SEATS, Seat
from courtlink.errors import InvalidInput

__all__ = [
    "CAUCUS_SIDES",
    "Caucus",
    "Flow",
    "Moderation",
    "SeatStatus",
    "flows",
    "may_flow",
    "participant_may_flow",
    "seat_status",
]

KINDS = ("audio", "video")


class Caucus(StrEnum):
    DETENTION = "detention"  # the officer and the debtor
    CREDITOR = "creditor"


CAUCUS_SIDES: dict[Caucus, frozenset[Seat]] = {
    Caucus.DETENTION: frozenset({Seat.OFFICER, Seat.DEBTOR}),
    Caucus.CREDITOR: frozenset({Seat.CREDITOR}),
}

# Seats the judge may mute or remove (not the judge's own).
MODERATED_SEATS = frozenset({Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR})


@dataclass(frozen=True, slots=True)
class Moderation:
    """The judge's choices for a session."""

    lobby: bool = True
    admitted: frozenset[Seat] = frozenset()
    caucus: Caucus | None = None
    muted: frozenset[Seat] = frozenset()

    def encode(self) -> dict[str, object]:
        return {
            "lobby": self.lobby,
            "admitted": sorted(self.admitted),
            "caucus": None if self.caucus is None else str(self.caucus),
            "muted": sorted(self.muted),
        }


@dataclass(frozen=True, slots=True)
class SeatStatus:
    in_lobby: bool
    on_hold: bool
    muted: bool


def seat_status(moderation: Moderation, seat: Seat) -> SeatStatus:
    in_lobby = moderation.lobby and seat is Seat.CREDITOR and seat not in moderation.admitted
    on_hold = False
    if moderation.caucus is not None:
        on_hold = seat is not Seat.JUDGE and seat not in CAUCUS_SIDES[moderation.caucus]
    return SeatStatus(in_lobby=in_lobby, on_hold=on_hold, muted=seat in moderation.muted)


def _in_caucus(moderation: Moderation, seat: Seat) -> bool:
    assert moderation.caucus is not None
    return seat is Seat.JUDGE or seat in CAUCUS_SIDES[moderation.caucus]


def may_flow(moderation: Moderation, source: Seat, target: Seat, kind: str) -> bool:
    """May ``kind`` media of the participant in ``source`` reach the one in ``target``?"""
    if kind not in KINDS:
        raise InvalidInput(f"unknown media kind {kind!r}")
    if source is target:
        return False
    src, dst = seat_status(moderation, source), seat_status(moderation, target)
    if src.in_lobby or dst.in_lobby:
        return False
    if kind == "audio" and src.muted:
        return False
    if moderation.caucus is None:
        return True
    return _in_caucus(moderation, source) == _in_caucus(moderation, target)


def participant_may_flow(
    moderation: Moderation, sources: Iterable[Seat], targets: Iterable[Seat], kind: str
) -> bool:
    sources, targets = tuple(sources), tuple(targets)
    if set(sources) & set(targets):
        return False
    return all(may_flow(moderation, s, t, kind) for s in sources for t in targets)


@dataclass(frozen=True, slots=True)
class Flow:
    source: str  # participant id
    target: str
    kind: str


def flows(moderation: Moderation, holders: Mapping[Seat, str]) -> frozenset[Flow]:
    """Every (publisher, subscriber, kind) the policy allows among the present participants.

    ``holders`` maps each occupied seat to the participant holding it.
    """
    seats_of: dict[str, list[Seat]] = {}
    for seat in SEATS:
        if seat in holders:
            seats_of.setdefault(holders[seat], []).append(seat)
    allowed = set()
    for source, source_seats in seats_of.items():
        for target, target_seats in seats_of.items():
            if source == target:
                continue
            for kind in KINDS:
                if participant_may_flow(moderation, source_seats, target_seats, kind):
                    allowed.add(Flow(source, target, kind))
    return frozenset(allowed)
