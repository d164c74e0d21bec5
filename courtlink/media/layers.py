"""Per-viewer video: how much of each seat's video a subscriber's link can carry.

Each publisher's VP8 carries temporal layers (browsers are asked for L1T3: TL0 at a quarter of
the frame rate, TL1 adding a quarter, TL2 the other half). Once a second the router lets every
subscriber's allocator weigh its own signals, its bandwidth estimate (the REMB its receiver
sends) and the loss it reports, and choose for each seat it receives the most layers its link
carries; a seat whose lowest layer does not fit is paused for that subscriber alone (audio only;
audio is never adapted). The forwarding core (``Slot.layer_target``, ``Slot.paused``) then
leaves the packets out and renumbers the rest. One weak viewer no longer lowers the picture of
the others: publishers are told the best of their viewers' estimates, within a cap.

This module is pure: no I/O, no aiortc; the router calls it with numbers and applies what it
returns.
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
ALL = 3  # every layer the publisher sends, whichever it adds later (TIDs are 0..3)


@dataclass(frozen=True, slots=True)
class LayerSettings:
    """``adapt`` False keeps the old relay (every viewer gets everything; publishers are told
    the lowest estimate), for comparison in the benchmark."""

    adapt: bool = True
    # Publishers are never asked for more than this (browsers are also told it as maxBitrate).
    max_video_bps: int = 600_000
    # A viewer whose last picture (the judge's lowest layer, say) still does not fit asks that
    # seat's publisher for no more than this before the picture is paused: the others keep
    # every frame at a lower bitrate, the weak viewer keeps a picture ("squeezed").
    min_video_bps: int = 150_000
    # A viewer down to one picture at its lowest layer that keeps losing more than ``loss_low``
    # (not enough to count as congestion) for this many ticks squeezes its publisher too: on a
    # link just too small for that layer the picture froze for seconds at a time.
    squeeze_after: int = 3
    # The last picture is paused (for loss above ``loss_pause``) only once its publisher has
    # been squeezed this long: the publisher's page needs a moment to send less, and a link
    # that just fell is flooded for a few seconds whatever is cut.
    squeeze_grace: float = 6.0
    # Congestion: the estimate fell below this share of what is forwarded, or the viewer
    # reports more loss than ``loss_high``; what is forwarded is then cut to fit the estimate
    # (or the loss). Room: loss at most ``loss_low`` and an estimate that is not falling.
    keep_margin: float = 0.85
    loss_high: float = 0.10
    loss_low: float = 0.05
    # A falling estimate alone counts only with some loss beside it (a busy receiver's
    # estimate jitters on a clean link), and the last picture a viewer has is paused only for
    # loss above ``loss_pause``: a weak viewer keeps the judge's lowest layer while it can.
    loss_seen: float = 0.02
    loss_pause: float = 0.2
    # A viewer that keeps asking for key frames cannot decode what it gets (it lost what the
    # frames after depend on): this many requests in a tick, over its video slots, count as
    # congestion, and none may come for a step up.
    stall_asks: int = 1
    # A viewer whose receiver reports stop coming while it is sent media (its uplink is as
    # choked as its downlink: a phone on a weak cell) is congested too.
    silent_after: float = 3.0
    # An estimate counts as falling when it drops below this share of the previous one (a
    # receiver that detects overuse cuts its estimate to 85 % of what arrives; smaller moves
    # are drift), and one cut never takes away more than ``max_cut`` of what is forwarded
    # (an estimate just after overuse undershoots the link).
    falling: float = 0.9
    max_cut: float = 0.5

    # Congested this many times in a row (once a second) before anything is taken away: an
    # estimate moves with every burst, and taking video away is the costlier mistake.
    patience: int = 2
    # Between two steps up for one viewer; after a step down, the next step up waits
    # ``backoff`` seconds, doubled when that step fails again soon, up to ``backoff_max``.
    step_interval: float = 2.0
    # While the viewer loses nothing at all (``loss_clean``) and no ceiling holds it back (its
    # link was freed), steps come this often: nine steps bring three seats back from one
    # picture.
    step_interval_clean: float = 1.0
    backoff: float = 4.0
    backoff_max: float = 16.0
    # Nothing is taken away in a viewer's first seconds: the start of a call is all key frames
    # and estimates still ramping up, not a weak link.
    settle: float = 10.0
    # What a cut found the link carries (the video rate cut to) is a ceiling for steps up: a
    # step that would forward more waits until the ceiling has grown, per second, by
    # ``probe_growth`` while the viewer reports some loss (at most ``loss_low``) and by
    # ``probe_growth_clean`` while it reports none; a weak link is then probed every half
    # minute or so instead of at every back-off (each failed try costs the viewer its
    # pictures and everyone a key frame), and a link that was freed is found within seconds.
    probe_growth: float = 1.03
    # The ceiling never falls below this (bits per second): from 0 it could not grow.
    ceiling_floor: float = 30_000.0
    probe_growth_clean: float = 1.25
    loss_clean: float = 0.005
    # A link counts as clean after this many reports in a row at most ``loss_clean``: on a
    # link losing 2 % at random a second's report often shows none (a weak-link run probed a
    # second seat 8 s after a cut on two such seconds). Where the packets a report covers are
    # known, it counts as that many ``clean_packets`` reports: a picture's second of 10
    # packets losing none says little, the sound's 5 s of 750 (a browser reports on its
    # audio every few seconds; with every picture paused that is all it reports) says a lot.
    clean_after: int = 3
    clean_packets: int = 100


class LayerRates:
    """One publisher's video rate per temporal layer, from the forwarding core's byte counters
    (``Source.layer_octets`` and ``Source.bytes``), smoothed so that a second in which a layer
    happened to send nothing (a publisher short of CPU sends fewer frames) does not make it
    look gone."""

    __slots__ = ("_bytes", "_octets", "per_layer", "smoothing", "total")

    def __init__(self, smoothing: float = 0.3) -> None:
        self.smoothing = smoothing
        self._octets: tuple[int, ...] | None = None
        self._bytes: int | None = None
        self.per_layer = [0.0, 0.0, 0.0, 0.0]  # bits per second of each TID
        self.total = 0.0  # bits per second of the whole stream

    def update(self, layer_octets: Sequence[int], total_bytes: int, interval: float) -> None:
        """The counters now, ``interval`` seconds after the previous call."""
        if interval <= 0:
            return
        if self._octets is None or self._bytes is None:
            self._octets, self._bytes = tuple(layer_octets), total_bytes
            return
        fresh = [
            max(0, a - b) * 8 / interval for a, b in zip(layer_octets, self._octets, strict=True)
        ]
        total = max(0, total_bytes - self._bytes) * 8 / interval
        self._octets, self._bytes = tuple(layer_octets), total_bytes
        a = self.smoothing
        self.per_layer = [a * n + (1 - a) * o for n, o in zip(fresh, self.per_layer, strict=True)]
        self.total = a * total + (1 - a) * self.total

    @property
    def top(self) -> int:
        """The highest temporal layer the publisher sends (0 for a stream without layers): any
        that carries more than 1 % of the stream."""
        carried = [i for i, rate in enumerate(self.per_layer) if rate > 0.01 * self.total]
        return max(carried, default=0)

    @property
    def layered(self) -> bool:
        return self.top > 0

    @property
    def cumulative(self) -> tuple[float, ...]:
        """Bits per second up to and including each layer; one entry without layers."""
        if not self.layered:
            return (self.total,)
        running, sums = 0.0, []
        for rate in self.per_layer[: self.top + 1]:
            running += rate
            sums.append(running)
        return tuple(sums)

    def rate(self, level: int) -> float:
        if level < 0:
            return 0.0
        cumulative = self.cumulative
        return cumulative[min(level, len(cumulative) - 1)]


@dataclass(slots=True)
class SlotLevel:
    """One seat's video toward one viewer: the level chosen (PAUSED, ALL, or the highest
    temporal layer; for a stream without layers any level from 0 means all of it). A level is
    not clamped to the layers the publisher sends now (a browser's upper layers appear in its
    first seconds): ``effective`` is."""

    level: int
    # This viewer asks the seat's publisher for at most ``min_video_bps`` (see LayerSettings),
    # since ``squeezed_at``.
    squeezed: bool = False
    squeezed_at: float = 0.0

    def squeeze(self, now: float) -> None:
        self.squeezed, self.squeezed_at = True, now

    def effective(self, top: int) -> int:
        return min(self.level, top)

    def state(self, top: int) -> str:
        if self.level == PAUSED:
            return AUDIO_ONLY
        return FULL if self.level >= top else REDUCED


@dataclass
class ViewerAllocator:
    """The levels of the video slots one viewer receives (see the module's doc).

    Two signals, because a receiver's estimate (REMB) lags: after congestion it restarts from
    a fraction of what arrived and climbs a few percent a second, and it cannot rise at all
    while nothing arrives. So a low estimate counts as congestion only while it is falling (a
    fresh overuse), and so does loss above ``loss_high`` in the viewer's receiver reports; then
    layers are taken away, the judge's last. Giving back follows the loss (the estimate climbs
    too slowly after overuse to wait for it: recovery took minutes): one step every
    ``step_interval`` while loss stays low and the estimate does not fall, to the seat with the
    fewest layers first (the judge first among equals), so every seat gets its lowest layer
    before any gets more; after a cut, giving back waits a back-off that doubles when a step
    fails again soon."""

    settings: LayerSettings = field(default_factory=LayerSettings)
    slots: dict[str, SlotLevel] = field(default_factory=dict)
    next_step_at: float = 0.0
    congested: int = 0  # ticks in a row
    backoff: float = 0.0
    last_budget: float | None = None
    last_step_up: float | None = None
    last_cut: float | None = None
    started_at: float | None = None
    ceiling: float | None = None  # bits per second of video a step up may reach (see settings)
    last_tick: float | None = None  # the last tick with a fresh report (any, before one)
    lossy: int = 0  # reports in a row with loss above loss_low
    clean: float = 0.0  # reports in a row with loss at most loss_clean (see clean_packets)
    reported: bool = False  # the viewer has reported its loss at least once

    def allocate(
        self,
        budget: float | None,
        seats: Sequence[tuple[str, LayerRates]],
        now: float,
        *,
        loss: float | None = None,
        overall_loss: float | None = None,
        reported_packets: int = 0,
        keyframe_asks: int = 0,
        silent_for: float = 0.0,
    ) -> dict[str, SlotLevel]:
        """``seats``: (seat, its publisher's rates) in priority order; ``budget``: the viewer's
        estimate for all of them, bits per second; ``loss``: the fraction of its video the
        viewer reported lost since the last tick (None: no fresh report); ``overall_loss``:
        the same over all it receives, sound included, which decides whether the link is clean
        (``loss`` when not given), over ``reported_packets`` packets (0: not known). Returns
        every seat's level; before any signal, everything."""
        settings = self.settings
        for gone in set(self.slots) - {seat for seat, _ in seats}:
            del self.slots[gone]
        levels = {seat: self.slots.setdefault(seat, SlotLevel(ALL)) for seat, _ in seats}
        # Nothing known yet: everything. Once the viewer has been weighed, a tick without a
        # fresh report changes nothing by itself (below); it never hands everything back.
        unknown = budget is None and loss is None and not keyframe_asks and not silent_for
        if not settings.adapt or (unknown and self.started_at is None):
            for seat, _ in seats:
                levels[seat].level = ALL
            return levels
        if self.started_at is None:
            self.started_at = now
        demand = sum(rates.rate(levels[seat].level) for seat, rates in seats)
        falling = (
            budget is not None
            and self.last_budget is not None
            and budget < self.last_budget * settings.falling
        )
        short = (
            budget is not None
            and falling
            and budget < demand * settings.keep_margin
            and (loss is None or loss >= settings.loss_seen)
        )
        lossy = loss is not None and loss > settings.loss_high
        stalled = keyframe_asks >= settings.stall_asks or silent_for >= settings.silent_after
        settled = now - self.started_at >= settings.settle
        self.congested = self.congested + 1 if settled and (short or lossy or stalled) else 0
        # The time a fresh report covers: since the last tick that had one (ticks between
        # hold), so the ceiling grows as fast when reports come every few seconds.
        elapsed = 0.0 if self.last_tick is None else max(0.0, now - self.last_tick)
        if loss is not None or not self.reported:
            self.last_tick = now
        if loss is not None:
            self.reported = True
            overall = loss if overall_loss is None else overall_loss
            worth = reported_packets / settings.clean_packets if reported_packets else 1.0
            self.clean = self.clean + worth if overall <= settings.loss_clean else 0.0
        clean = self.clean >= settings.clean_after
        # Room to step up is a fresh report of little loss. A tick without one (the viewer's
        # reports are late: on a weak link they queue behind its own media) is no evidence of
        # room: while a link had just fallen, steps up on such ticks overloaded it again. Only
        # a viewer that never reports loss steps up on its estimate alone.
        room = (
            loss <= settings.loss_low
            if loss is not None
            else not self.reported and budget is not None
        )
        # Right after a cut, congestion that goes on needs no more patience: the link was
        # found short already, and a link that fell from plenty to little takes several cuts.
        # Nor does congestion right after a step up: the step is the suspect, and a failed
        # probe that waited for patience froze the viewer's other pictures for seconds.
        patience = settings.patience
        recent = [t for t in (self.last_cut, self.last_step_up) if t is not None]
        if recent and now - max(recent) <= settings.patience + 1:
            patience = 1
        if self.congested >= patience:
            fit = demand * (1 - (loss or 0)) * settings.keep_margin
            if short and budget is not None:
                fit = min(fit, budget * settings.keep_margin)
            fit = max(fit, demand * (1 - settings.max_cut))
            keep_last = loss is None or loss <= settings.loss_pause
            self._cut(fit, seats, levels, now, keep_last)
            # The ceiling: what is forwarded after the cut (at most ``fit``), the rate the
            # link was last found to carry; a step that failed does not come back for long.
            # (A cut of nothing, every seat paused already, learned nothing; and the ceiling
            # never falls below what the first picture back needs, or it could not grow.)
            left = sum(rates.rate(levels[seat].level) for seat, rates in seats)
            if demand > 0:
                low = min(fit, left or fit, fit if self.ceiling is None else self.ceiling)
                self.ceiling = max(low, settings.ceiling_floor)
            self.congested = 0
        else:
            if room:
                self._grow_ceiling(elapsed, stalled, seats, clean)
            if loss is not None:
                self.lossy = self.lossy + 1 if loss > settings.loss_low else 0
            pictures = [levels[seat] for seat, _ in seats if levels[seat].level > PAUSED]
            if (
                self.lossy >= settings.squeeze_after
                and len(pictures) == 1
                and pictures[0].level == 0
                and not pictures[0].squeezed
            ):
                pictures[0].squeeze(now)
                self.lossy = 0
            elif (
                self.congested == 0
                and room
                and not stalled
                and not falling
                and now >= self.next_step_at
            ):
                self._step_up(seats, levels, now, clean=clean and self.ceiling is None)
        if self.last_cut is not None and now - self.last_cut > 4 * settings.backoff_max:
            self.backoff = 0.0  # long enough without a cut: forget the back-off
        if budget is not None:
            self.last_budget = budget
        return levels

    def _grow_ceiling(
        self,
        elapsed: float,
        stalled: bool,
        seats: Sequence[tuple[str, LayerRates]],
        clean: bool,
    ) -> None:
        """Let the ceiling a cut left grow while the viewer reports it copes; forget it once
        it holds everything the seats send."""
        settings = self.settings
        if self.ceiling is None or stalled or self.congested:
            return
        growth = settings.probe_growth_clean if clean else settings.probe_growth
        self.ceiling *= growth**elapsed
        if self.ceiling >= sum(rates.rate(rates.top) for _, rates in seats):
            self.ceiling = None

    def _cut(
        self,
        fit: float,
        seats: Sequence[tuple[str, LayerRates]],
        levels: dict[str, SlotLevel],
        now: float,
        keep_last: bool = False,
    ) -> None:
        """Take layers away, one at a time, until what is forwarded fits in ``fit`` (at least
        one, even when the rates say everything fits: they are the publisher's, before loss):
        always from the seat with the most, the last in priority order among equals, so the
        judge keeps a picture longest; a seat below TL0 is paused, but with ``keep_last`` not
        the last seat that has a picture."""

        def demand() -> float:
            return sum(rates.rate(levels[seat].level) for seat, rates in seats)

        while True:
            candidates = [
                (levels[seat].effective(rates.top), i, seat)
                for i, (seat, rates) in enumerate(seats)
                if levels[seat].level > PAUSED
            ]
            if not candidates:
                break
            level, _, seat = max(candidates)
            if len(candidates) == 1 and level == 0:
                # The last picture: its publisher is asked for less before it is paused, and
                # it is paused only for heavy loss that a squeeze in place for a while did not
                # end.
                last = levels[seat]
                if not last.squeezed:
                    last.squeeze(now)
                    break
                if keep_last or now - last.squeezed_at < self.settings.squeeze_grace:
                    break
            levels[seat].level = level - 1
            if levels[seat].level == PAUSED:
                levels[seat].squeezed = False
            if demand() <= fit:
                break
        failed_try = self.last_step_up is not None and now - self.last_step_up < 3 * (
            self.settings.step_interval
        )
        if failed_try and self.backoff:
            self.backoff = min(self.settings.backoff_max, self.backoff * 2)
        elif not self.backoff:
            self.backoff = self.settings.backoff
        self.last_cut = now
        self.next_step_at = now + self.backoff

    def _step_up(
        self,
        seats: Sequence[tuple[str, LayerRates]],
        levels: dict[str, SlotLevel],
        now: float,
        *,
        clean: bool = False,
    ) -> None:
        """One seat one level up: of those that can go up, the one with the fewest layers, the
        first in priority order among equals (a squeezed seat's first step is its publisher's
        full rate)."""
        candidates = [
            (levels[seat].effective(rates.top), i, seat)
            for i, (seat, rates) in enumerate(seats)
            if levels[seat].effective(rates.top) < rates.top or levels[seat].squeezed
        ]
        if not candidates:
            return
        level, _, seat = min(candidates)
        rates = dict(seats)[seat]
        top = rates.top
        settings = self.settings
        # A viewer without any picture gets its first one back squeezed (the publisher asked
        # for min_video_bps): that is how it lost it.
        first_picture = level == PAUSED and all(lv.level == PAUSED for lv in levels.values())
        if self.ceiling is not None:
            # What forwarding would reach after the step (a squeezed seat's publisher goes back
            # up to about max/min times what it sends now).
            demand = sum(r.rate(levels[s].level) for s, r in seats)
            if levels[seat].squeezed:
                more = rates.rate(level) * (settings.max_video_bps / settings.min_video_bps - 1)
            elif first_picture:
                more = rates.rate(0) * min(1.0, settings.min_video_bps / max(rates.total, 1.0))
            else:
                more = rates.rate(level + 1) - rates.rate(level)
            if demand + more > self.ceiling:
                return
        if levels[seat].squeezed:
            levels[seat].squeezed = False  # first the publisher's full rate, then more layers
        else:
            levels[seat].level = ALL if level + 1 >= top else level + 1
            if first_picture:
                levels[seat].squeeze(now)
        self.last_step_up = now
        self.next_step_at = now + (
            self.settings.step_interval_clean if clean else self.settings.step_interval
        )
