"""Judicial detention: periods, status, days left, renewal and release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from courtlink.court.detentions import Detention, DetentionStatus, Period, check_period_days
from courtlink.errors import Conflict, InvalidInput

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MAX = 15


def detention(*periods: Period, released_at: datetime | None = None) -> Detention:
    return Detention(
        id="d1",
        case_id="c1",
        debtor_name="李某",
        center="盐城市拘留所",
        periods=periods or (Period(T0, 15),),
        released_at=released_at,
    )


def test_a_period_ends_whole_days_after_it_starts() -> None:
    assert Period(T0, 15).end == datetime(2026, 3, 16, 8, 0, tzinfo=UTC)
    assert Period(T0, 1).end - T0 == timedelta(days=1)


@pytest.mark.parametrize(
    ("now", "status"),
    [
        (T0 - timedelta(days=1), DetentionStatus.ACTIVE),  # ordered, not yet begun
        (T0, DetentionStatus.ACTIVE),
        (T0 + timedelta(days=14, hours=23, minutes=59), DetentionStatus.ACTIVE),
        (T0 + timedelta(days=15), DetentionStatus.EXPIRED),  # the end itself is over
        (T0 + timedelta(days=40), DetentionStatus.EXPIRED),
    ],
)
def test_status_follows_the_end_of_the_last_period(now: datetime, status: DetentionStatus) -> None:
    assert detention().status(now) is status


def test_a_released_detention_is_released_before_and_after_its_end() -> None:
    released = detention().released(T0 + timedelta(days=3))
    assert released.status(T0 + timedelta(days=4)) is DetentionStatus.RELEASED
    assert released.status(T0 + timedelta(days=30)) is DetentionStatus.RELEASED


@pytest.mark.parametrize(
    ("after", "left"),
    [
        (timedelta(0), 15.0),
        (timedelta(days=2, hours=12), 12.5),
        (timedelta(days=14, hours=18), 0.25),
        (timedelta(days=15), 0.0),
        (timedelta(days=20), 0.0),
    ],
)
def test_days_left_counts_down_to_the_end(after: timedelta, left: float) -> None:
    assert detention().days_left(T0 + after) == pytest.approx(left)


def test_days_left_is_zero_once_released() -> None:
    released = detention().released(T0 + timedelta(days=1))
    assert released.days_left(T0 + timedelta(days=2)) == 0.0


def test_expiring_soon_within_the_given_days_only_while_active() -> None:
    d = detention()
    end = d.ends_at
    assert d.expiring_soon(end - timedelta(days=3), within_days=3)  # the boundary counts
    assert d.expiring_soon(end - timedelta(hours=1), within_days=3)
    assert not d.expiring_soon(end - timedelta(days=3, seconds=1), within_days=3)
    assert d.expiring_soon(end - timedelta(days=5), within_days=7)
    assert not d.expiring_soon(end, within_days=3)  # expired, no longer "soon"
    released = d.released(end - timedelta(days=2))
    assert not released.expiring_soon(end - timedelta(days=1), within_days=3)


def test_renewal_adds_a_period_starting_when_the_current_one_ends() -> None:
    d = detention()
    now = T0 + timedelta(days=13)  # renewed two days before the end
    renewed = d.renewed(10, MAX, now)
    assert renewed.periods == (Period(T0, 15), Period(T0 + timedelta(days=15), 10))
    assert renewed.ends_at == T0 + timedelta(days=25)
    assert renewed.status(T0 + timedelta(days=20)) is DetentionStatus.ACTIVE
    assert renewed.days_left(now) == pytest.approx(12.0)
    # The original is a frozen value and does not change.
    assert d.periods == (Period(T0, 15),)


def test_renewals_chain_without_gaps_or_overlaps() -> None:
    d = detention(Period(T0, 5))
    d = d.renewed(15, MAX, T0 + timedelta(days=1))
    d = d.renewed(3, MAX, T0 + timedelta(days=2))
    for before, after in zip(d.periods, d.periods[1:], strict=False):
        assert after.start == before.end
    assert d.ends_at == T0 + timedelta(days=23)


@pytest.mark.parametrize("days", [MAX + 1, 30, 0, -1])
def test_a_renewal_outside_1_to_max_days_is_refused(days: int) -> None:
    with pytest.raises(InvalidInput):
        detention().renewed(days, MAX, T0 + timedelta(days=1))


def test_the_maximum_is_configuration_not_assumed() -> None:
    assert detention().renewed(MAX, MAX, T0).periods[-1].days == MAX
    with pytest.raises(InvalidInput):
        detention().renewed(8, 7, T0)
    assert detention().renewed(20, 20, T0).periods[-1].days == 20


def test_a_released_detention_cannot_be_renewed() -> None:
    released = detention().released(T0 + timedelta(days=2))
    with pytest.raises(Conflict):
        released.renewed(5, MAX, T0 + timedelta(days=3))


def test_an_expired_detention_cannot_be_renewed() -> None:
    with pytest.raises(Conflict):
        detention().renewed(5, MAX, T0 + timedelta(days=15))


def test_release_records_the_time_once() -> None:
    at = T0 + timedelta(days=4, hours=3)
    released = detention().released(at)
    assert released.released_at == at
    assert released.periods == detention().periods
    with pytest.raises(Conflict):
        released.released(at + timedelta(hours=1))


@pytest.mark.parametrize(("days", "ok"), [(1, True), (15, True), (0, False), (16, False)])
def test_check_period_days(days: int, ok: bool) -> None:
    if ok:
        assert check_period_days(days, MAX) == days
    else:
        with pytest.raises(InvalidInput):
            check_period_days(days, MAX)
