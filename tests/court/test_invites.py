"""Invite tokens: signed, bound to one session and its seats, expiring by the injected clock."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from courtlink.court.invites import (
    AUDIENCE,
    ISSUER,
    Invite,
    InviteClaims,
    InviteSigner,
    check_invite_seats,
)
from courtlink.court.seats import SEATS, Seat
from courtlink.errors import InvalidInput, InviteExpired, InviteInvalid, SeatNotAllowed

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
T0 = datetime.now(UTC).replace(microsecond=0)


def invite(
    seats: tuple[Seat, ...] = (Seat.CREDITOR,),
    *,
    created: datetime = T0,
    hours: float = 72,
    session_id: str = "s1",
) -> Invite:
    return Invite(
        id="inv1",
        session_id=session_id,
        seats=seats,
        expires_at=created + timedelta(hours=hours),
        created_by="account:judge",
        created_at=created,
    )


def at(moment: datetime) -> InviteSigner:
    return InviteSigner(KEY, clock=lambda: moment)


@pytest.mark.parametrize(
    "seats",
    [(Seat.JUDGE,), (Seat.OFFICER,), (Seat.DEBTOR,), (Seat.CREDITOR,), (Seat.OFFICER, Seat.DEBTOR)],
)
def test_sign_then_read_gives_back_the_claims(seats: tuple[Seat, ...]) -> None:
    original = invite(seats)
    token = at(T0).sign(original)
    claims = at(T0 + timedelta(hours=1)).read(token)
    assert claims == InviteClaims(
        invite_id="inv1", session_id="s1", seats=seats, expires_at=original.expires_at
    )
    assert claims.expires_at.utcoffset() is not None  # aware, comparable with the database


def test_the_token_carries_no_more_than_it_must() -> None:
    token = at(T0).sign(invite())
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert set(payload) == {"iss", "aud", "jti", "sid", "seats", "iat", "exp"}
    assert payload["aud"] == AUDIENCE
    assert payload["seats"] == ["creditor"]


def test_expiry_is_decided_by_the_injected_clock() -> None:
    token = at(T0).sign(invite(hours=2))
    expires = T0 + timedelta(hours=2)
    assert at(expires - timedelta(seconds=1)).read(token).invite_id == "inv1"
    with pytest.raises(InviteExpired):
        at(expires).read(token)
    with pytest.raises(InviteExpired):
        at(expires + timedelta(days=30)).read(token)


def test_a_clock_ahead_of_the_wall_clock_reads_its_own_tokens() -> None:
    """Issued "in the future" by the wall clock's measure (a node whose clock runs ahead, or a
    test that moved time): the injected clock, not the wall clock, decides."""
    later = T0 + timedelta(days=30)
    token = at(later).sign(invite(created=later, hours=1))
    assert at(later + timedelta(minutes=5)).read(token).invite_id == "inv1"
    with pytest.raises(InviteExpired):
        at(later + timedelta(hours=1)).read(token)


def test_an_already_expired_token_from_the_past_is_expired_not_invalid() -> None:
    past = T0 - timedelta(days=10)
    token = at(past).sign(invite(created=past, hours=1))
    with pytest.raises(InviteExpired):
        at(T0).read(token)


def tamper(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims.update(changes)
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return ".".join([header, base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), signature])


@pytest.mark.parametrize(
    "changes",
    [
        {"seats": ["officer", "debtor", "creditor"]},
        {"seats": ["judge"]},
        {"sid": "s2"},
        {"exp": int((T0 + timedelta(days=300)).timestamp())},
        {"jti": "inv2"},
    ],
)
def test_a_tampered_token_is_invalid(changes: dict[str, object]) -> None:
    token = at(T0).sign(invite())
    with pytest.raises(InviteInvalid):
        at(T0).read(tamper(token, **changes))


def test_a_token_signed_with_another_key_is_invalid() -> None:
    token = InviteSigner(OTHER_KEY, clock=lambda: T0).sign(invite())
    with pytest.raises(InviteInvalid):
        at(T0).read(token)


def encode(claims: dict[str, object], key: bytes = KEY, algorithm: str = "HS256") -> str:
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": "inv1",
        "sid": "s1",
        "seats": ["creditor"],
        "iat": int(T0.timestamp()),
        "exp": int((T0 + timedelta(hours=1)).timestamp()),
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "courtlink:login"},  # a token of ours meant for something else
        {"aud": None},
        {"iss": "someone-else"},
        {"jti": None},
        {"exp": None},
        {"sid": None},
        {"seats": None},
        {"seats": ["bailiff"]},
        {"seats": []},
        {"seats": ["judge", "creditor"]},  # a combination no invite may hold
        {"seats": "officer"},
    ],
)
def test_well_signed_but_wrong_claims_are_invalid(claims: dict[str, object]) -> None:
    with pytest.raises(InviteInvalid):
        at(T0).read(encode(claims))


def test_well_signed_claims_are_accepted_by_the_same_rules() -> None:
    # The builder above makes a valid token when nothing is changed.
    assert at(T0).read(encode({})).seats == (Seat.CREDITOR,)


def test_another_algorithm_is_refused() -> None:
    with pytest.raises(InviteInvalid):
        at(T0).read(encode({}, key=KEY * 2, algorithm="HS512"))
    unsigned = jwt.encode({"aud": AUDIENCE, "iss": ISSUER}, None, algorithm="none")
    with pytest.raises(InviteInvalid):
        at(T0).read(unsigned)


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "..", "eyJhbGciOiJIUzI1NiJ9.e30.", "x" * 3000, "é.ü.ö"]
)
def test_garbage_is_invalid(token: str) -> None:
    with pytest.raises(InviteInvalid):
        at(T0).read(token)


def test_the_key_must_have_256_bits() -> None:
    with pytest.raises(ValueError, match="256"):
        InviteSigner(b"short")


ALLOWED_TOGETHER = {frozenset({Seat.OFFICER, Seat.DEBTOR})}


@pytest.mark.parametrize(
    "seats",
    [
        (a, b)
        for i, a in enumerate(SEATS)
        for b in SEATS[i + 1 :]  # every pair of distinct seats
    ]
    + [tuple(SEATS), (Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR)],
)
def test_only_officer_and_debtor_may_share_an_invite(seats: tuple[Seat, ...]) -> None:
    if frozenset(seats) in ALLOWED_TOGETHER:
        assert check_invite_seats(seats) == seats
    else:
        with pytest.raises(InvalidInput):
            check_invite_seats(seats)


@pytest.mark.parametrize("seat", SEATS)
def test_any_single_seat_may_be_invited(seat: Seat) -> None:
    assert check_invite_seats([seat]) == (seat,)


def test_seat_lists_are_deduplicated_and_must_not_be_empty() -> None:
    assert check_invite_seats([Seat.DEBTOR, Seat.OFFICER, Seat.DEBTOR]) == (
        Seat.DEBTOR,
        Seat.OFFICER,
    )
    assert check_invite_seats([Seat.CREDITOR, Seat.CREDITOR]) == (Seat.CREDITOR,)
    with pytest.raises(InvalidInput):
        check_invite_seats([])


def test_claims_check_session_and_seats() -> None:
    claims = InviteClaims("inv1", "s1", (Seat.OFFICER, Seat.DEBTOR), T0)
    claims.check("s1", (Seat.OFFICER,))
    claims.check("s1", (Seat.OFFICER, Seat.DEBTOR))
    with pytest.raises(SeatNotAllowed, match="another session"):
        claims.check("s2", (Seat.OFFICER,))
    with pytest.raises(SeatNotAllowed, match="creditor"):
        claims.check("s1", (Seat.DEBTOR, Seat.CREDITOR))


def test_invite_revocation_and_actor() -> None:
    live = invite()
    assert not live.revoked()
    assert live.actor == "invite:inv1"
    from dataclasses import replace

    assert replace(live, revoked_at=T0).revoked()
