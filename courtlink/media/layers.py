"""Per-viewer video: how much of each seat's video a subscriber's link can carry.

Each publisher's VP8 carries temporal layers (browsers are asked for L1T3: TL0 at a quarter of
the frame rate, TL1 adding a quarter, TL2 the other half). Once a second the router gives every
subscriber a budget, its own bandwidth estimate (the REMB its receiver sends), and spends it
over the seats it receives, the judge first: each seat's video gets the most layers that fit,
and a seat whose lowest layer does not fit is paused for that subscriber alone (audio only;
audio is never adapted). The forwarding core (``Slot.layer_target``, ``Slot.paused``) then
leaves the packets out and renumbers the rest. One weak viewer no longer lowers the picture of
the others: publishers are told the best of their viewers' estimates, within a cap.

A receiver's estimate cannot rise far above what it receives (libwebrtc's caps it at 1.5 times
the incoming rate), so a higher layer is only tried, one step at a time, when the estimate has
room above what is forwarded now, and a paused seat is tried again after a back-off that doubles
each time the try fails (8 s up to 64 s). This module is pure: no I/O, no aiortc; the router
calls it with numbers and applies what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "AUDIO_ONLY",
    "FULL",
    "REDUCED",
    "LayerRates",
    "LayerSettings",
    "SlotLevel",
    "ViewerAllocator",
]

FULL = "full"  # every layer the publisher sends
REDUCED = "reduced"  # fewer temporal layers: a lower frame rate
AUDIO_ONLY = "audio_only"  # this seat's video is not sent to this viewer

PAUSED = -1  # a level below TL0: no video


@dataclass(frozen=True, slots=True)
class LayerSettings:
    """``adapt`` False keeps the old relay (every viewer gets everything; publishers are told
    the lowest estimate), for comparison in the benchmark."""

    adapt: bool = True
    # Publishers are never asked for more than this (browsers are also told it as maxBitrate).
    max_video_bps: int = 600_000
    # A level is kept while the budget covers its rate times this; more is spent only when the
    # estimate is this much above what is forwarded now.
    keep_margin: float = 0.9
    probe_margin: float = 1.25
    # Between two steps up for one viewer.
    step_interval: float = 2.0
    # Over budget this many times in a row (once a second) before anything is taken away: an
    # estimate moves with every burst, and taking video away is the costlier mistake.
    patience: int = 2
    # A paused seat is tried again after this, doubled after each failed try, up to probe_max.
    probe_after: float = 8.0
    probe_max: float = 64.0


class LayerRates:
    """One publisher's video rate per cumulative temporal layer, from the forwarding core's
    byte counters (``Source.layer_octets`` and ``Source.bytes``), smoothed."""

    __slots__ = ("_bytes", "_octets", "cumulative", "smoothing")

    def __init__(self, smoothing: float = 0.5) -> None:
        self.smoothing = smoothing
        self._octets: tuple[int, ...] | None = None
        self._bytes: int | None = None
        # bits per second up to and including each layer; one entry for a stream without layers
        self.cumulative: tuple[float, ...] = ()

    def update(self, layer_octets: Sequence[int], total_bytes: int, interval: float) -> None:
        """The counters now, ``interval`` seconds after the previous call."""
        if interval <= 0:
            return
        if self._octets is None or self._bytes is None:
            self._octets, self._bytes = tuple(layer_octets), total_bytes
            return
        per_layer = [
            max(0, a - b) * 8 / interval for a, b in zip(layer_octets, self._octets, strict=True)
        ]
        total = max(0, total_bytes - self._bytes) * 8 / interval
        self._octets, self._bytes = tuple(layer_octets), total_bytes
        top = max((i for i, rate in enumerate(per_layer) if rate > 0), default=-1)
        if top < 0:
            fresh: tuple[float, ...] = (total,)
        else:
            running, sums = 0.0, []
            for rate in per_layer[: top + 1]:
                running += rate
                sums.append(running)
            fresh = tuple(sums)
        if len(fresh) != len(self.cumulative):
            self.cumulative = fresh
        else:
            a = self.smoothing
            self.cumulative = tuple(
                a * n + (1 - a) * o for n, o in zip(fresh, self.cumulative, strict=True)
            )

    @property
    def top(self) -> int:
        """The highest level the publisher sends (0 for a stream without layers)."""
        return max(0, len(self.cumulative) - 1)

    def rate(self, level: int) -> float:
        if level < 0 or not self.cumulative:
            return 0.0
        return self.cumulative[min(level, len(self.cumulative) - 1)]


@dataclass(slots=True)
class SlotLevel:
    """One seat's video toward one viewer: the level chosen (PAUSED, or the highest temporal
    layer; for a stream without layers 0 means all of it) and the back-off of its next try."""

    level: int
    probe_at: float = 0.0
    backoff: float = 0.0  # 0 until a pause; doubled by each pause that follows a failed try
    tried_at: float | None = None  # when it was last stepped up (a try), until it holds

    def state(self, top: int) -> str:
        if self.level == PAUSED:
            return AUDIO_ONLY
        return FULL if self.level >= top else REDUCED


@dataclass
class ViewerAllocator:
    """The levels of the video slots one viewer receives, from its budget (see module doc)."""

    settings: LayerSettings = field(default_factory=LayerSettings)
    slots: dict[str, SlotLevel] = field(default_factory=dict)
    next_step_at: float = 0.0
    over: int = 0  # times in a row over budget

    def allocate(
        self, budget: float | None, seats: Sequence[tuple[str, LayerRates]], now: float
    ) -> dict[str, SlotLevel]:
        """``seats``: (seat, its publisher's rates) in priority order; ``budget``: the viewer's
        estimate for all of them, bits per second. Returns every seat's level; with no budget
        known (no estimate yet) everything is forwarded."""
        known = {seat for seat, _ in seats}
        for gone in set(self.slots) - known:
            del self.slots[gone]
        levels = {seat: self.slots.setdefault(seat, SlotLevel(rates.top)) for seat, rates in seats}
        for seat, rates in seats:
            levels[seat].level = min(levels[seat].level, rates.top)
        if budget is None or not self.settings.adapt:
            for seat, rates in seats:
                levels[seat].level = rates.top
            return levels
        demand = sum(rates.rate(levels[seat].level) for seat, rates in seats)
        self.over = self.over + 1 if demand > budget / self.settings.keep_margin else 0
        if self.over >= self.settings.patience:
            self._step_down(budget, seats, levels, now)
        elif (
            self.over == 0
            and now >= self.next_step_at
            and budget >= demand * self.settings.probe_margin
        ):
            self._step_up(seats, levels, now)
        for slot in levels.values():
            if slot.tried_at is not None and now - slot.tried_at >= 2 * self.settings.probe_after:
                slot.tried_at, slot.backoff = None, 0.0  # the try held: forget the back-off
        return levels

    def _step_down(
        self,
        budget: float,
        seats: Sequence[tuple[str, LayerRates]],
        levels: dict[str, SlotLevel],
        now: float,
    ) -> None:
        """Over budget: keep, seat by seat in priority order, the most layers (never more than
        now) that fit in what is left; what does not fit at TL0 is paused."""
        left = budget * self.settings.keep_margin
        for seat, rates in seats:
            slot = levels[seat]
            level = slot.level
            while level > PAUSED and rates.rate(level) > left:
                level -= 1
            if level < slot.level:
                if level == PAUSED:
                    slot.backoff = (
                        min(self.settings.probe_max, slot.backoff * 2)
                        if slot.backoff
                        else self.settings.probe_after
                    )
                    slot.probe_at = now + slot.backoff
                slot.level = level
                slot.tried_at = None
            left -= rates.rate(level)
        self.next_step_at = now + self.settings.step_interval

    def _step_up(
        self, seats: Sequence[tuple[str, LayerRates]], levels: dict[str, SlotLevel], now: float
    ) -> None:
        """Room above what is forwarded: one seat one level up, the first in priority order
        that can go up (a paused one only once its back-off has passed)."""
        for seat, rates in seats:
            slot = levels[seat]
            if slot.level >= rates.top:
                continue
            if slot.level == PAUSED and now < slot.probe_at:
                continue
            slot.level += 1
            slot.tried_at = now
            self.next_step_at = now + self.settings.step_interval
            return
