"""Which packets of a publisher's stream are missing, for NACKs.

``Gaps`` is the forwarding core's (media/_receive.c), which the receive path updates for every
video packet without a Python call. aiortc's NackGenerator does the same job but rebuilds its list
of missing packets on every packet; ``Gaps`` does work only when a gap opens or closes, which on a
clean network is almost never: a bitmap of the newest sequence numbers, of which only the
MAX_TRACKED below the newest count.

    gaps.add(seq) -> bool      note seq as received; True when a new gap opened (a NACK is due)
    gaps.missing -> set[int]   the missing sequence numbers within MAX_TRACKED of the newest
    gaps.is_missing(seq)       whether one of them is
    gaps.max_seq               the newest sequence number, or None
"""

from __future__ import annotations

from courtlink.media._forward import MAX_TRACKED, Gaps

__all__ = ["MAX_TRACKED", "Gaps", "Repeats"]


class Repeats:
    """When each sequence number was last sent again (a retransmission, or a NACK upstream), so
    that one is repeated at most once per ``hold`` seconds and ``most`` times in all: a browser
    that does not know the round trip asks every 100 ms, and on a weak link those repeats filled
    what the media needed. What is older than ``forget`` seconds counts as never sent (the
    numbers wrap)."""

    __slots__ = ("_at", "forget", "most")

    def __init__(self, *, most: int | None = None, forget: float = 10.0) -> None:
        self.most, self.forget = most, forget
        self._at: dict[int, tuple[float, int]] = {}  # seq -> (last repeated, how often)

    def due(self, seq: int, now: float, hold: float) -> bool:
        """Whether ``seq`` may be repeated now (the caller then calls ``note``)."""
        at, count = self._at.get(seq, (-self.forget, 0))
        if now - at >= self.forget:
            return True
        return now - at >= hold and (self.most is None or count < self.most)

    def note(self, seq: int, now: float) -> None:
        """``seq`` was repeated at ``now``."""
        at, count = self._at.get(seq, (-self.forget, 0))
        self._at[seq] = (now, 1 if now - at >= self.forget else count + 1)
        if len(self._at) > 4096:  # forget the old ones now and then
            for old in [s for s, (t, _) in self._at.items() if now - t >= self.forget]:
                del self._at[old]
