"""One recorded file: a seat's audio or video, muxed as it arrives, never decoded.

Timestamps are milliseconds on the session clock (since the recording started). Within one
RTP source the RTP timestamps give each frame's time; a new source (the participant
reconnected: new peer, new SSRC) is anchored at its first frame's arrival, never before the
end of what the file already holds, so the file goes on without a jump back or an overlap.

WebM files (VP8, Opus: every recording but H.264's) are muxed by libavformat, called from
C: the writer thread hands the ``Muxer`` (media/_assemble.c) a batch of tap entries (a Tap,
read in place) through the track's ``Assembler`` (``push``), so no Python object is made per
packet or frame; the Muxer keeps
the timeline and gives each frame to libavformat's "webm" muxer, which writes through the
opener's file. H.264 (Matroska) is muxed by PyAV, a frame at a time (``_mux``), on the same
timeline rules.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av

from courtlink.media._assemble import Muxer
from courtlink.media._forward import Tap
from courtlink.media.recording.depacketize import Assembler, Frame, vp8_size
from courtlink.media.recording.journal import Journal, iso

__all__ = ["Opener", "TrackFile", "opus_head"]

# Opens a recorded file for writing (binary, unbuffered); injectable so that tests can make
# the disk fail.
Opener = Callable[[Path], IO[bytes]]

TIME_BASE = Fraction(1, 1000)
# The Matroska muxer closes a cluster after this many milliseconds; a cluster reaches the disk
# whole when it closes, so a kill loses at most about this much.
CLUSTER_MS = 1000
# The OpusHead's pre-skip: libavformat writes it as the track's CodecDelay (and stamps the
# blocks that much later, which its demuxer takes off again).
OPUS_PRE_SKIP = 312


def opus_head(channels: int = 2, rate: int = 48000, pre_skip: int = OPUS_PRE_SKIP) -> bytes:
    """The OpusHead identification header (RFC 7845, 5.1): the Opus track's codec private
    data in WebM."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, 0)


_templates_lock = threading.Lock()


@functools.cache
def _template(codec: str, kind: str) -> Any:
    """A stream holding the codec parameters PyAV gives the muxer for ``codec``, made once
    the way ``add_stream`` makes one (which opens an encoder: for VP8 at the size of a
    picture, about 12 MB and 10 ms; this one is 16x16, H.264's 640x480 as its files say,
    and it is kept for the process). Each
    recorded file's stream is made from it (``add_stream_from_template``), so no file opens
    an encoder it never uses; the files come out the same, byte for byte (but for the
    muxer's random UIDs)."""
    container = av.open(io.BytesIO(), "w", format=_format(codec))
    stream: Any
    if kind == "audio":
        stream = container.add_stream(codec, rate=48000)
        stream.codec_context.extradata = opus_head()
    else:
        stream = container.add_stream(codec)
        # libx264's header (the Matroska CodecPrivate) holds the size; VP8 has none.
        stream.width, stream.height = (640, 480) if codec == "h264" else (16, 16)
    stream.time_base = TIME_BASE
    container.start_encoding()
    return stream


def _format(codec: str) -> str:
    return "matroska" if codec == "h264" else "webm"


def default_opener(path: Path) -> IO[bytes]:
    return open(path, "xb", buffering=0)


class TrackFile:
    """The file of one seat and kind; opened at the first frame a player can start from (for
    video, a key frame, which also gives the picture size). ``pyav``: mux WebM with PyAV as
    H.264 is (the reference the tests compare the C muxer with)."""

    def __init__(
        self,
        directory: Path,
        seat: str,
        kind: str,
        codec: str,
        *,
        started_ns: int,
        journal: Journal,
        opener: Opener = default_opener,
        pyav: bool = False,
    ) -> None:
        self.seat, self.kind, self.codec = seat, kind, codec
        self.clock_rate = 48000 if kind == "audio" else 90000
        extension = "mkv" if codec == "h264" else "webm"
        self.name = f"{seat}.{kind}.{extension}"
        self.path = directory / self.name
        self.started_ns = started_ns
        self.journal = journal
        self.opener = opener
        self._file: IO[bytes] | None = None
        self._container: Any = None
        self._stream: Any = None
        # The session-clock timeline of the current RTP source.
        self._ssrc: int | None = None
        self._anchor_ms = 0
        self._last_ts = 0
        self._extended = 0
        self.first_ms: int | None = None
        # H.264's (PyAV's) timeline; WebM's is the Muxer's (the properties below read it).
        self._last_ms: int | None = None
        self._frame_ms = 20 if kind == "audio" else 33
        self._frames = 0
        self.opened_entry: dict[str, Any] | None = None
        self._closed = False
        # WebM: the Muxer, which opens the file (the opener's) at its first frame.
        self._muxer: Muxer | None = None
        if codec != "h264" and not pyav:
            self._muxer = Muxer(
                kind,
                open=functools.partial(opener, self.path),
                started_ns=started_ns,
                cluster_ms=CLUSTER_MS,
                extradata=opus_head() if kind == "audio" else None,
            )

    def write(self, frame: Frame) -> None:
        """Mux one frame (raises OSError when the disk refuses it)."""
        self.write_all([frame])

    def write_all(self, frames: list[Frame]) -> None:
        """Mux frames in order (raises OSError when the disk refuses one)."""
        if self._muxer is None:
            self._mux(frames)
        else:
            try:
                self._muxer.write(frames)
            finally:
                self._muxed()

    def push(self, assembler: Assembler, batch: Tap | list[bytes]) -> None:
        """The writer thread's call per batch: the tap entries assembled (in C) and their
        frames muxed (for WebM in C as well, the frames never made into Python objects). Kept
        short: it runs for every track at every poll of the writer."""
        muxer = self._muxer
        if muxer is None:
            self._mux(assembler.push(batch))
            return
        try:
            assembler.push(batch, muxer)
        finally:
            if self.opened_entry is None:
                self._muxed()

    def drain(self, assembler: Assembler) -> None:
        """What ``assembler`` holds for reordering, muxed (its source is gone or ending)."""
        if self._muxer is None:
            self._mux(assembler.drain())
        else:
            try:
                assembler.drain(self._muxer)
            finally:
                self._muxed()

    def _muxed(self) -> None:
        """After the Muxer took frames: the file's opening journaled at its first frame."""
        muxer = self._muxer
        assert muxer is not None
        if self.opened_entry is None and muxer.first_ms is not None:
            self._journal_opened(muxer.first_ms)

    @property
    def frames(self) -> int:
        """Frames written to the file."""
        return self._frames if self._muxer is None else self._muxer.frames

    @property
    def last_ms(self) -> int | None:
        """The last frame's time on the session clock (ms), None before the first."""
        return self._last_ms if self._muxer is None else self._muxer.last_ms

    @property
    def frame_ms(self) -> int:
        """How long the last frame lasts (the gap before it, at most 100 ms)."""
        return self._frame_ms if self._muxer is None else self._muxer.frame_ms

    def _mux(self, frames: list[Frame]) -> None:
        """Mux frames in order with PyAV (H.264). The loop per frame, so its state is in local
        variables until the end.

        A frame's time: within one RTP source, its RTP timestamp's distance from the source's
        first (unwrapped) on the source's anchor; a new source is anchored at its arrival, but
        never before the end of what the file holds. Never back, never two frames at one
        time; each frame lasts until the next (at most 100 ms)."""
        if not frames:
            return
        started_ns, rate = self.started_ns, self.clock_rate
        ssrc, anchor, last_ts, extended = self._ssrc, self._anchor_ms, self._last_ts, self._extended
        last_ms, frame_ms = self._last_ms, self._frame_ms
        mux = None if self._container is None else self._container.mux_one
        stream = self._stream
        new_packet = av.Packet
        written = 0
        try:
            for frame in frames:
                timestamp, source, arrived_ns, data, keyframe = frame
                if source == ssrc:
                    step = (timestamp - last_ts) & 0xFFFFFFFF
                    extended += step - 0x100000000 if step >= 0x80000000 else step
                else:  # the first frame, or a new source (the participant reconnected)
                    ssrc, extended = source, 0
                    after = 0 if last_ms is None else last_ms + frame_ms
                    anchor = max((arrived_ns - started_ns) // 1_000_000, after)
                last_ts = timestamp
                at = anchor + extended * 1000 // rate
                if last_ms is not None:
                    if at <= last_ms:
                        at = last_ms + 1
                    else:
                        frame_ms = min(at - last_ms, 100)
                if mux is None:
                    self._open(frame, at)
                    mux, stream = self._container.mux_one, self._stream
                # The packet's time base is left unset: it is the stream's (TIME_BASE, which
                # the Matroska muxer keeps), so the muxer does not rescale.
                packet = new_packet(data)
                packet.stream = stream
                packet.pts = packet.dts = at
                packet.duration = frame_ms
                packet.is_keyframe = keyframe
                mux(packet)
                last_ms = at
                written += 1
        finally:
            self._ssrc, self._anchor_ms, self._last_ts, self._extended = (
                ssrc,
                anchor,
                last_ts,
                extended,
            )
            self._last_ms, self._frame_ms = last_ms, frame_ms
            self._frames += written

    def _open(self, frame: Frame, at: int) -> None:
        self._file = self.opener(self.path)
        container = av.open(
            self._file,
            "w",
            format=_format(self.codec),
            options={"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
        )
        with _templates_lock:
            template = _template(self.codec, self.kind)
        stream: Any = container.add_stream_from_template(template, opaque=True)
        if self.kind == "video":
            size = vp8_size(frame.data) if self.codec == "vp8" else None
            stream.width, stream.height = size or (640, 480)
        stream.time_base = TIME_BASE
        self._container, self._stream = container, stream
        self._journal_opened(at)

    def _journal_opened(self, at: int) -> None:
        self.first_ms = at
        self.opened_entry = {
            "name": self.name,
            "seat": self.seat,
            "kind": self.kind,
            "codec": self.codec,
            "started_at": iso(self.started_ns + at * 1_000_000),
            "offset_seconds": at / 1000,
        }
        self.journal.write("file_opened", **self.opened_entry)

    @property
    def duration(self) -> float:
        last_ms = self.last_ms
        if self.first_ms is None or last_ms is None:
            return 0.0
        return (last_ms + self.frame_ms - self.first_ms) / 1000

    def close(self) -> None:
        """Finish the file (its cues and duration) and fsync it; idempotent. A file the disk
        refused is closed as far as it goes: its clusters already written stay playable."""
        container, self._container = self._container, None
        muxer = self._muxer
        handle, self._file = self._file, None
        if muxer is not None and handle is None and not self._closed:
            handle = muxer.file  # the file the Muxer opened, if it got a frame
        self._closed = True
        try:
            if container is not None:
                container.close()
            if muxer is not None:
                muxer.close()
        finally:
            if handle is not None:
                try:
                    handle.flush()
                    os.fsync(handle.fileno())
                finally:
                    handle.close()
        if self.opened_entry is not None and handle is not None:
            self.journal.write(
                "file_closed",
                name=self.name,
                duration_seconds=self.duration,
                bytes=self.path.stat().st_size,
            )
