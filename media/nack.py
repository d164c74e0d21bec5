"""Which packets of a publisher's stream are missing, for NACKs.

aiortc's NackGenerator does the same but rebuilds its list of missing packets on every packet;
this one does work only when a gap opens or closes, which on a clean network is almost never.
"""

from __future__ import annotations

__all__ = ["MAX_TRACKED", "Gaps"]

# At most this many sequence numbers back are asked for (aiortc's senders keep 128 packets).
MAX_TRACKED = 128


class Gaps:
    """The sequence numbers of one stream not (yet) received, within MAX_TRACKED of the newest."""

    __slots__ = ("max_seq", "missing")

    def __init__(self) -> None:
        self.max_seq: int | None = None
        self.missing: set[int] = set()

    def add(self, seq: int) -> bool:
        """Note ``seq`` as received; True when a new gap opened (a NACK is due)."""
        top = self.max_seq
        if top is None:
            self.max_seq = seq
            return False
        ahead = (seq - top) & 0xFFFF
        if ahead == 1:
            self.max_seq = seq
            return False
        if 0 < ahead < 0x8000:
            # Only the newest MAX_TRACKED are worth asking for: older ones the sender has
            # dropped from its history, and the stale ones already tracked go too.
            for k in range(max(1, ahead - MAX_TRACKED), ahead):
                self.missing.add((top + k) & 0xFFFF)
            self.max_seq = seq
            self.missing = {s for s in self.missing if (seq - s) & 0xFFFF <= MAX_TRACKED}
            return True
        if self.missing:
            self.missing.discard(seq)
        return False
