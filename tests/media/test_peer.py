"""The participant's side of the SFU (media/peer.py): what its allocator is told."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from courtlink.media.peer import downlink_loss


def slot(loss: float | None, at: float | None, *, paused: bool = False, fed: bool = True) -> Any:
    return SimpleNamespace(loss=loss, loss_at=at, paused=paused, source=object() if fed else None)


def test_downlink_loss_weighs_each_report_once() -> None:
    """The median of the reports that came after the last tick; a report already weighed, one
    from a paused slot or from a slot with no publisher does not count; none at all is None
    (the allocator then holds: media/layers.py)."""
    slots = [
        slot(0.0, 10.2),
        slot(0.04, 10.6),
        slot(0.3, 10.8, paused=True),
        slot(0.5, 10.9, fed=False),
    ]
    assert downlink_loss(slots, since=10.0) == 0.02
    assert downlink_loss(slots, since=10.2) == 0.04
    assert downlink_loss(slots, since=10.6) is None
    assert downlink_loss([slot(None, None)], since=0.0) is None
