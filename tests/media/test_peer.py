"""The participant's side of the SFU (media/peer.py): what its allocator is told."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from courtlink.media.peer import Downlink, downlink_loss


@dataclass
class Slot:
    """What downlink_loss reads of a Consumer (the counting itself: test_reconnect.py)."""

    kind: str
    loss: float | None
    loss_at: float | None
    expected: int = 0
    lost: int = 0
    paused: bool = False
    source: Any = field(default_factory=lambda: SimpleNamespace(uplink_loss=None))

    def take_loss_counts(self) -> tuple[int, int]:
        counts = self.expected, self.lost
        self.expected = self.lost = 0
        return counts


def test_the_video_slots_packets_decide_and_the_sound_says_whether_the_link_is_clean() -> None:
    """Packets lost of packets expected since the last tick: the median over the video slots
    (a full link drops a frame's burst, not the evenly paced sound), the sum over every slot
    for the clean link; a paused slot or one without a publisher does not count; each report
    is taken once."""
    slots = [
        Slot("video", 0.6, 10.5, expected=20, lost=12),
        Slot("video", 0.0, 10.5, expected=10, lost=0),
        Slot("audio", 0.04, 10.5, expected=150, lost=6),
        Slot("audio", 0.02, 10.5, expected=50, lost=1),
        Slot("video", 0.9, 10.5, expected=100, lost=90, paused=True),
        Slot("video", 0.9, 10.5, expected=100, lost=90, source=None),
    ]
    downlink = downlink_loss(slots, since=10.0)
    assert downlink.loss == pytest.approx((12 / 20 + 0 / 10) / 2)
    assert downlink.overall == pytest.approx(19 / 230)
    assert downlink.packets == 230
    assert downlink_loss(slots, since=10.5) == Downlink(None, None)  # nothing new


def test_a_picture_of_few_packets_is_weighed_with_the_sound() -> None:
    slots = [Slot("video", 0.0, 1.0, expected=4, lost=0), Slot("audio", 0.1, 1.0, 50, 5)]
    assert downlink_loss(slots, since=0.0) == Downlink(5 / 54, 5 / 54, 54)


def test_first_reports_give_their_median_and_late_packets_no_negative_loss() -> None:
    first = [Slot("video", 0.1, 5.0), Slot("audio", 0.0, 5.0), Slot("audio", 0.02, 5.0)]
    assert downlink_loss(first, since=4.0) == Downlink(0.02, 0.02)
    assert downlink_loss(first, since=5.0) == Downlink(None, None)
    late = [Slot("video", 0.0, 2.0, expected=30, lost=-2)]
    assert downlink_loss(late, since=1.0) == Downlink(0.0, 0.0, 30)


def test_a_publishers_own_uplink_loss_is_not_the_viewers() -> None:
    """A publisher on a weak uplink: every viewer of its slot reports the packets that never
    reached the SFU. Each slot's loss is net of its publisher's (Producer.uplink_loss), and the
    median over the slots is not moved by one."""
    weak_publisher = SimpleNamespace(uplink_loss=0.3)
    slots = [
        Slot("video", 0.0, 1.0, expected=40, lost=0),
        Slot("video", 0.0, 1.0, expected=40, lost=1),
        Slot("video", 0.3, 1.0, expected=30, lost=10, source=weak_publisher),
        Slot("audio", 0.3, 1.0, expected=50, lost=15, source=weak_publisher),
    ]
    downlink = downlink_loss(slots, since=0.0)
    assert downlink.loss == pytest.approx(1 / 40)
    assert downlink.overall == pytest.approx(2 / 160)
