"""Type stub of the recorder's assembler (media/_assemble.c)."""

from collections.abc import Callable
from typing import IO, Final, final

from typing_extensions import Buffer

HOLD_NS: Final[int]
HOLD_PACKETS: Final[int]
MAX_FRAME: Final[int]

@final
class Frame(tuple[int, int, int, bytes, bool]):
    """One whole frame of a track (a struct sequence: a tuple with named fields)."""

    n_fields: Final[int]
    n_sequence_fields: Final[int]
    n_unnamed_fields: Final[int]
    def __new__(cls, sequence: tuple[int, int, int, bytes, bool]) -> Frame: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def ssrc(self) -> int: ...
    @property
    def arrived_ns(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def keyframe(self) -> bool: ...

@final
class Assembler:
    """One track's tap entries (in any order) to whole frames; codec: opus, vp8, h264."""

    @property
    def codec(self) -> str: ...
    @property
    def video(self) -> bool: ...
    @property
    def waiting_keyframe(self) -> bool: ...
    @property
    def held(self) -> int: ...
    @property
    def frames_dropped(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def hold_ns(self) -> int: ...
    @property
    def hold_packets(self) -> int: ...
    def __init__(self, codec: str, *, hold_ns: int = ..., hold_packets: int = ...) -> None: ...
    def push(
        self, batch: Buffer | list[bytes] | tuple[bytes, ...], into: Muxer | None = None
    ) -> list[Frame]:
        """Tap entries in any order: a media._forward.Tap (or any buffer in its layout: per
        entry a 4-byte little-endian length, then the entry), read in place, or a list of
        entries as bytes; the frames they complete (none when ``into`` takes them)."""
    def drain(self, into: Muxer | None = None) -> list[Frame]: ...

@final
class Muxer:
    """One track's frames into a WebM file by libavformat, on the file's timeline; kind: audio
    (Opus, extradata its OpusHead) or video (VP8); open() gives the file at the first frame."""

    frames: Final[int]
    frame_ms: Final[int]
    cluster_ms: Final[int]
    def __init__(
        self,
        kind: str,
        *,
        open: Callable[[], IO[bytes]],
        started_ns: int,
        cluster_ms: int = ...,
        extradata: bytes | None = ...,
    ) -> None: ...
    @property
    def first_ms(self) -> int | None: ...
    @property
    def last_ms(self) -> int | None: ...
    @property
    def size(self) -> tuple[int, int] | None: ...
    @property
    def file(self) -> IO[bytes] | None: ...
    def write(self, frames: list[Frame] | tuple[Frame, ...]) -> None: ...
    def close(self) -> None: ...
