"""courtlink.media.nack.Gaps: which packets of a publisher's stream to ask for again."""

from __future__ import annotations

import pytest

from courtlink.media.nack import MAX_TRACKED, Gaps, Repeats


def feed(gaps: Gaps, *seqs: int) -> list[bool]:
    return [gaps.add(seq) for seq in seqs]


def test_in_order_stream_opens_no_gap() -> None:
    gaps = Gaps()
    assert feed(gaps, *range(100, 200)) == [False] * 100
    assert gaps.missing == set()
    assert gaps.max_seq == 199


def test_a_jump_opens_a_gap_and_late_arrivals_close_it() -> None:
    gaps = Gaps()
    assert feed(gaps, 10, 11, 15) == [False, False, True]
    assert gaps.missing == {12, 13, 14}
    assert feed(gaps, 13) == [False]  # a late (or retransmitted) packet
    assert gaps.missing == {12, 14}
    assert feed(gaps, 16, 12, 14) == [False, False, False]
    assert gaps.missing == set()


def test_gap_across_the_sequence_wrap() -> None:
    gaps = Gaps()
    assert feed(gaps, 65533, 65534, 2) == [False, False, True]
    assert gaps.missing == {65535, 0, 1}
    assert gaps.max_seq == 2


def test_a_long_outage_asks_only_for_the_newest_packets() -> None:
    gaps = Gaps()
    feed(gaps, 1000)
    assert gaps.add(1000 + 1000)
    # The sender keeps about MAX_TRACKED packets; asking for older ones is wasted.
    assert gaps.missing == {2000 - k for k in range(1, MAX_TRACKED + 1)}


def test_old_gaps_are_forgotten_as_the_stream_moves_on() -> None:
    gaps = Gaps()
    feed(gaps, 0, 2)  # 1 is missing
    for seq in range(3, 2 + MAX_TRACKED):
        gaps.add(seq)
    assert gaps.missing == {1}  # still within MAX_TRACKED of the newest
    assert gaps.is_missing(1)
    gaps.add(2 + MAX_TRACKED)  # the sender no longer holds it: not worth asking for
    assert gaps.missing == set()
    assert not gaps.is_missing(1)
    assert gaps.add(4 + MAX_TRACKED)  # a new gap
    assert gaps.missing == {3 + MAX_TRACKED}


def test_a_very_old_packet_does_not_close_a_new_gap() -> None:
    """The bitmap is indexed by sequence number modulo its size: a packet far behind shares a
    bit with a recent one, which must stay missing."""
    gaps = Gaps()
    feed(gaps, 1000, 1002)
    assert gaps.missing == {1001}
    for back in (256, 512, 1024):
        assert gaps.add((1001 - back) & 0xFFFF) is False
    assert gaps.missing == {1001}


def test_bad_sequence_numbers_are_refused() -> None:
    gaps = Gaps()
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        gaps.add(65536)
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        gaps.is_missing(-1)
    assert gaps.max_seq is None


@pytest.mark.parametrize("behind", [1, 100, 0x7FFF])
def test_old_and_duplicate_packets_do_not_move_the_top(behind: int) -> None:
    gaps = Gaps()
    feed(gaps, 5000, 5001)
    assert gaps.add((5001 - behind) & 0xFFFF) is False
    assert gaps.add(5001) is False  # a duplicate
    assert gaps.max_seq == 5001
    assert gaps.missing == set()


def test_repeats_hold_count_and_forget() -> None:
    """One sequence number is repeated at most once per hold, ``most`` times, and counts as
    never repeated once ``forget`` seconds old (the numbers wrap)."""
    repeats = Repeats(most=2, forget=10.0)
    assert repeats.due(7, 0.0, hold=0.5)
    repeats.note(7, 0.0)
    assert not repeats.due(7, 0.4, hold=0.5)
    assert repeats.due(7, 0.5, hold=0.5)
    repeats.note(7, 0.5)
    assert not repeats.due(7, 5.0, hold=0.5)  # twice already
    assert repeats.due(8, 5.0, hold=0.5)  # another number
    assert repeats.due(7, 10.5, hold=0.5)  # forgotten
    repeats.note(7, 10.5)
    assert repeats.due(7, 11.0, hold=0.5)  # counted from one again
    unlimited = Repeats()
    for t in range(5):
        assert unlimited.due(1, float(t), hold=1.0)
        unlimited.note(1, float(t))
