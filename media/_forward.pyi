"""Type stub of the forwarding core (media/_forward.c)."""

from collections.abc import Callable
from typing import Any

MAX_PACKET: int
MAX_TRAILER: int
MAX_GAP: int
HISTORY_SIZE: int

class Sender:
    """One subscriber's SRTP egress on a duplicate of a UDP socket's descriptor."""

    addr: tuple[str, int]
    sent: int
    refused: int
    dropped: int
    closed: bool
    def __init__(
        self, session: object, context: int, protect: int, fd: int, addr: tuple[str, int]
    ) -> None: ...
    def send(self, packet: bytes) -> bool: ...
    def close(self) -> None: ...

class Slot:
    """The per-packet state and rewrite of one outgoing slot."""

    egress: Any
    source: Any
    clock: Callable[[], float]
    pt_map: dict[int, int]
    _prefix: bytes
    _pad: bytes
    last_sent_at: float | None
    video: bool
    same_pt: bool
    waiting_keyframe: bool
    forwarded: int
    octets: int
    seq_offset: int | None
    last_ts: int | None
    next_seq: int
    ts_offset: int
    _ssrc: int
    def forward(self, header: Any, payload: bytes, value: bytes, keyframe: bool) -> int: ...
    def kept(self, seq: int) -> bytes | None: ...
    def kept_count(self) -> int: ...
    def forget(self) -> None: ...

class Ingress:
    """A socket callback that decrypts SRTP and hands RTP on; the rest goes to ``original``."""

    original: Callable[[bytes, Any], None]
    received: int
    refused: int
    def __init__(
        self,
        session: object,
        context: int,
        unprotect: int,
        handler: Callable[[bytes, int], None],
        original: Callable[[bytes, Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None: ...
    def __call__(self, data: bytes, addr: Any) -> None: ...
