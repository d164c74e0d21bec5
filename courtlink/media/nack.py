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

__all__ = ["MAX_TRACKED", "Gaps"]
