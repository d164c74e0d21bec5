"""Type stub of the forwarding core (media/_forward.c)."""

import builtins
from collections.abc import Callable
from typing import Any, final

MAX_PACKET: int
MAX_TRAILER: int
MAX_GAP: int
HISTORY_SIZE: int
SENT_WINDOW: int

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
    paused: bool
    layer_target: int
    @property
    def layer(self) -> int: ...
    @property
    def layer_dropped(self) -> int: ...
    @property
    def pid_shift(self) -> int: ...
    def forward(
        self, header: Any, payload: bytes, value: bytes, keyframe: bool, vp8: bool = False
    ) -> int: ...
    def kept(self, seq: int) -> bytes | None: ...
    def was_sent(self, seq: int) -> bool: ...
    def kept_count(self) -> int: ...
    def forget(self) -> None: ...
    def reserve(self) -> None: ...
    @property
    def reserved(self) -> bool: ...

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
        handler: Callable[[bytes, int], object],
        original: Callable[[bytes, Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None: ...
    def __call__(self, data: bytes, addr: Any) -> None: ...

MAX_TRACKED: int

def parse_rtp(
    data: bytes | bytearray | memoryview, scan: bool = True
) -> tuple[bool, int, int, int, int, int, int, int | None, int | None]: ...
def vp8_keyframe(payload: bytes | bytearray | memoryview) -> bool: ...
def h264_keyframe(payload: bytes | bytearray | memoryview) -> bool: ...

class StreamStats:
    """RFC 3550 receiver statistics of one source, read like aiortc's StreamStatistics."""

    cycles: int
    packets_received: int
    def __init__(self, clockrate: int) -> None: ...
    def add(self, sequence_number: int, timestamp: int, arrival: int | None = None) -> None: ...
    @property
    def base_seq(self) -> int | None: ...
    @property
    def max_seq(self) -> int | None: ...
    @property
    def packets_expected(self) -> int: ...
    @property
    def packets_lost(self) -> int: ...
    @property
    def fraction_lost(self) -> int: ...
    @property
    def jitter(self) -> int: ...

class Gaps:
    """The sequence numbers of one stream not (yet) received, within MAX_TRACKED of the newest."""

    def add(self, seq: int) -> bool: ...
    def is_missing(self, seq: int) -> bool: ...
    @property
    def missing(self) -> set[int]: ...
    @property
    def max_seq(self) -> int | None: ...

@final
class Tap:
    """What a Source received, for the recorder: one buffer of entries (a 4-byte little-endian
    length, then arrival, a plain RTP header, the payload), appended to in C per packet;
    ``Assembler.push`` reads it through the buffer protocol. While a view of it is open it
    takes no entry (a Source counts them dropped) and ``clear`` raises BufferError."""

    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    @property
    def nbytes(self) -> int: ...
    def append(self, entry: builtins.bytes, /) -> None: ...
    def clear(self) -> None: ...
    def entries(self) -> list[builtins.bytes]: ...

class Source:
    """The per-packet receive path of one incoming track."""

    consumers: list[Any]
    stats: StreamStats | None
    nacks: Gaps | None
    video: bool
    h264: bool
    closed: bool
    clock_rate: int
    @property
    def layer_octets(self) -> tuple[int, int, int, int]: ...
    packets: int
    bytes: int
    malformed: int
    ssrc: int | None
    rtx: dict[int, int]
    tap: Tap | None
    tap_limit: int
    tap_dropped: int
    def receive(self, data: builtins.bytes) -> int: ...

class Demux:
    """A participant's decrypted RTP to the Source of its payload type."""

    observe: Callable[[float], None] | None
    received: int
    def route(self, payload_type: int, source: Source | None) -> None: ...
    def clear(self) -> None: ...
    @property
    def routes(self) -> dict[int, Source]: ...
    def __call__(self, data: builtins.bytes, arrived_ns: int) -> int: ...
