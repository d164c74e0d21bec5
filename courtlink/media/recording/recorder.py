"""The Recorder: one recorded session, written by the process's writer thread.

The packet path only appends each packet a Producer received to the Producer's ``tap`` (a
``Tap``: one buffer owned in C, no Python object per packet; media/_receive.c); one
``RecordingWriter`` thread (the Sfu's, shared by all its recorders, started with the first and
ended with the last) swaps each recorder's Taps for empty ones every ``poll`` seconds, puts the
packets back in order, assembles frames and muxes them per seat and kind (``TrackFile``: the
Tap read in place, in C), so the event loop never waits on a disk; the Tap read is cleared and
becomes the track's next empty one. A tap that fills up (the thread fell behind) drops and
counts. The thread also watches each recorder's disk:
below ``min_free_mb`` free, or a write refused with ENOSPC, it stops that recording; a
short-lived thread of the recorder's own then closes every file whole, writes the manifest
(``complete`` false, ``disk_full``) and tells the event loop, so that hashing one
recording's files never holds the others up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from courtlink.media._forward import Tap
from courtlink.media.recording.depacketize import Assembler
from courtlink.media.recording.journal import (
    MANIFEST,
    Journal,
    file_entry,
    iso,
    recover,
    write_manifest,
)
from courtlink.media.recording.track import Opener, TrackFile, default_opener

__all__ = ["DiskFull", "Recorder", "RecordingInfo", "RecordingWriter", "Tapped"]

log = logging.getLogger("courtlink.media.recording")

TAP_LIMIT = 4096  # packets a tap holds between two polls (about 2 s of a busy track)
# How often the writer takes the taps (seconds). Every pass costs Python per track, and the
# thread's wake-ups cost the kernel: 0.2 s costs less than 0.1 s did (docs/benchmarks.md)
# and delays the disk by only 0.1 s more (a cluster is written whole when it closes, at most
# a second after it opened, in any case).
POLL = 0.2
DISK_CHECK_SECONDS = 1.0


class DiskFull(OSError):
    """Less free space than the recording needs."""


class Tapped(Protocol):
    """What the recorder needs of a Producer (media._forward.Source)."""

    tap: Tap | None
    tap_limit: int
    tap_dropped: int


@dataclass(frozen=True)
class RecordingInfo:
    """What the manifest says about a session, besides its files."""

    session_id: str
    case_id: str
    case_number: str
    video_codec: str = "vp8"


class _Track:
    """One seat and kind: the Producers that fed it (the newest last), their frames' file, and
    the empty Tap its source gets at the next swap (the one read last, cleared): two Taps a
    track, used in turn."""

    def __init__(self, file: TrackFile, assembler: Assembler) -> None:
        self.file = file
        self.assembler = assembler
        self.sources: list[Tapped] = []
        self.spare = Tap()
        self.video = assembler.video


class RecordingWriter:
    """The thread that writes recordings, shared by the Recorders given it (the Sfu has one):
    one thread and one malloc arena for every recorded session instead of one each. The
    thread starts with the first recorder and ends once the last one has stopped (a later
    recorder starts it again)."""

    def __init__(self, poll: float = POLL) -> None:
        self.poll = poll
        self._recorders: list[Recorder] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread runs (it has recorders to write)."""
        return self._thread is not None

    def add(self, recorder: Recorder) -> None:
        with self._lock:
            self._recorders.append(recorder)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="recording-writer", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        """Have the thread look at its recorders now (one was asked to stop)."""
        self._wake.set()

    def _run(self) -> None:
        _name_thread(b"recording-writ")
        while True:
            self._wake.wait(self.poll)
            self._wake.clear()
            with self._lock:
                recorders = list(self._recorders)
            for recorder in recorders:
                if recorder._tick():
                    with self._lock:
                        self._recorders.remove(recorder)
            with self._lock:
                if not self._recorders:
                    self._thread = None
                    return


def _name_thread(name: bytes) -> None:
    """Give the calling thread ``name`` (at most 15 bytes) where the system shows threads
    (``top -H``, ``/proc/<pid>/task/<tid>/comm``, which docs/benchmarks.md reads the writer's
    CPU from); Python 3.11 names only its own objects. Linux only; nothing elsewhere."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(15, name[:15], 0, 0, 0)  # PR_SET_NAME


class Recorder:
    """Records one session into ``directory``. ``start`` on the event loop, ``feed`` each
    Producer as it appears (a reconnect's new Producer continues the same files), ``stop``
    (idempotent) to finish. ``on_stopped(reason)`` is called on the loop when the recorder
    stops by itself (``disk_full``, ``failed``). Written by ``writer`` (a writer of its own,
    polling every ``poll`` seconds, when none is given)."""

    def __init__(
        self,
        directory: Path,
        info: RecordingInfo,
        *,
        min_free_mb: int = 0,
        on_stopped: Callable[[str], None] | None = None,
        opener: Opener = default_opener,
        clock_ns: Callable[[], int] = time.time_ns,
        poll: float = POLL,
        writer: RecordingWriter | None = None,
    ) -> None:
        self.directory = directory
        self.info = info
        self.min_free = min_free_mb * 1024 * 1024
        self.on_stopped = on_stopped
        self.opener = opener
        self.clock_ns = clock_ns
        self.poll = poll
        self.started_ns = 0
        self.reason: str | None = None  # why it stopped, once it did
        self.manifest: dict[str, Any] | None = None
        self.dropped = 0  # packets the taps could not hold
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._lock = threading.Lock()  # _tracks' sources: the loop adds, the thread removes
        self._stop = threading.Event()
        self._asked = "ended"
        self._writer: RecordingWriter | None = None
        self._given_writer = writer
        self._next_check = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._journal: Journal | None = None
        self._done: asyncio.Future[None] | None = None

    # On the event loop ------------------------------------------------------------------

    async def start(self) -> None:
        """Create the directory, rebuild a manifest a killed server left undone, check the
        disk, journal the start (all in a worker thread: hashing a crashed recording's files
        takes a while) and hand the recorder to its writer. Raises DiskFull, FileExistsError
        (the session was recorded here already and finished) or OSError; nothing runs then."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._prepare)
        self._loop = loop
        self._done = loop.create_future()
        self._next_check = time.monotonic() + DISK_CHECK_SECONDS
        self._writer = self._given_writer or RecordingWriter(self.poll)
        self._writer.add(self)

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if recover(self.directory) is not None:
            log.warning("recording %s: manifest rebuilt after a crash", self.directory)
        if (self.directory / MANIFEST).exists():
            raise FileExistsError(f"{self.directory} holds a finished recording")
        self._check_disk()
        self.started_ns = self.clock_ns()
        self._journal = Journal(self.directory)
        self._journal.write(
            "started",
            session_id=self.info.session_id,
            case_id=self.info.case_id,
            case_number=self.info.case_number,
            video_codec=self.info.video_codec,
            started_at=iso(self.started_ns),
        )

    @property
    def running(self) -> bool:
        return self._writer is not None and self.reason is None

    def feed(self, seat: str, kind: str, source: Tapped) -> bool:
        """``source`` (a Producer) is what ``seat`` publishes of ``kind`` now; idempotent
        (true when it is new). The Producer it replaces is drained, then let go, by the
        thread."""
        if not self.running:
            return False
        key = (seat, kind)
        with self._lock:
            track = self._tracks.get(key)
            if track is None:
                codec = "opus" if kind == "audio" else self.info.video_codec
                assert self._journal is not None
                file = TrackFile(
                    self.directory,
                    seat,
                    kind,
                    codec,
                    started_ns=self.started_ns,
                    journal=self._journal,
                    opener=self.opener,
                )
                track = self._tracks[key] = _Track(file, Assembler(codec))
            if track.sources and track.sources[-1] is source:
                return False
            source.tap_limit = TAP_LIMIT
            source.tap = Tap()
            track.sources.append(source)
            return True

    async def stop(self, reason: str = "ended") -> dict[str, Any] | None:
        """Stop, close every file, write the manifest; the manifest (None when the recording
        never started). Idempotent; the first reason counts."""
        if self._writer is None or self._done is None:
            return None
        if not self._stop.is_set():
            self._asked = reason
            self._stop.set()
            self._writer.wake()
        await asyncio.shield(self._done)
        return self.manifest

    async def close(self) -> None:
        await self.stop("ended")

    # On the thread ----------------------------------------------------------------------

    def _check_disk(self) -> None:
        if self.min_free and shutil.disk_usage(self.directory).free < self.min_free:
            raise DiskFull(errno.ENOSPC, "less free space than recording.min_free_mb")

    def _tick(self) -> bool:
        """One pass of the writer: write what the taps hold, watch the disk; once asked to
        stop (or failing), the last drain, then the files closed and the manifest written on
        a thread of the recorder's own. Whether the recorder is done with the writer."""
        try:
            if not self._stop.is_set():
                self._drain()
                if time.monotonic() >= self._next_check:
                    self._next_check += DISK_CHECK_SECONDS
                    self._check_disk()
                return False
            self._drain(final=True)
            reason = self._asked
        except OSError as exc:
            reason = "disk_full" if exc.errno == errno.ENOSPC else "failed"
            log.error("recording %s stopped: %s", self.directory, exc)
        except Exception:
            reason = "failed"
            log.exception("recording %s failed", self.directory)
        self.reason = reason  # feed() refuses from now on
        threading.Thread(
            target=self._finish,
            args=(reason,),
            name=f"recorder-{self.info.session_id}",
            daemon=True,
        ).start()
        return True

    def _drain(self, *, final: bool = False) -> None:
        """Take every tap's packets and write the frames they complete. The usual track (one
        source, not the last drain) takes the short way: this runs for every track at every poll,
        and its Python was a third of the writer's time in the server."""
        with self._lock:
            tracks = [(t, t.sources[:]) for t in self._tracks.values()]
        for track, sources in tracks:
            if len(sources) == 1 and not final:
                source = sources[0]
                batch = source.tap
                if batch is None:
                    continue
                source.tap, track.spare = track.spare, batch
                if batch:
                    track.file.push(track.assembler, batch)
                    batch.clear()
                if source.tap_dropped:
                    self.dropped += source.tap_dropped
                    source.tap_dropped = 0
                if track.video and track.assembler.waiting_keyframe:
                    self._ask_keyframe(source)
                continue
            for i, source in enumerate(sources):
                retired = i < len(sources) - 1 or final
                batch = source.tap
                if batch is None:
                    continue
                if retired:
                    source.tap = None  # the thread's last look at it
                else:
                    source.tap, track.spare = track.spare, batch
                if batch:
                    track.file.push(track.assembler, batch)
                    batch.clear()
                self.dropped += source.tap_dropped
                source.tap_dropped = 0
                if retired:
                    with self._lock:
                        track.sources.remove(source)
            if final or len(sources) > 1:
                # A retired source's frames held for reordering go before the new one's.
                track.file.drain(track.assembler)
            if sources and not final and track.assembler.waiting_keyframe:
                self._ask_keyframe(sources[-1])

    def _ask_keyframe(self, source: Tapped) -> None:
        """Video waits for a key frame (the start, or a frame lost for good): ask the
        publisher, on the loop (the Producer limits how often a PLI goes out)."""
        ask = getattr(source, "want_keyframe", None)
        if ask is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(ask)

    def _finish(self, reason: str) -> None:
        """Close every file (each as whole as it can be), journal the stop, write the
        manifest; then tell the loop."""
        files = []
        self.reason = reason
        for track in self._tracks.values():
            for source in track.sources:
                source.tap = None
            try:
                track.file.close()
            except Exception:
                log.exception("recording %s: closing %s", self.directory, track.file.name)
                if reason == "ended":
                    reason = "failed"
            if track.file.opened_entry is not None:
                try:
                    files.append(
                        file_entry(self.directory, track.file.opened_entry, track.file.duration)
                    )
                except OSError:
                    log.exception("recording %s: reading %s", self.directory, track.file.name)
        ended = iso(self.clock_ns())
        self.reason = reason
        try:
            assert self._journal is not None
            started = {
                "session_id": self.info.session_id,
                "case_id": self.info.case_id,
                "case_number": self.info.case_number,
                "started_at": iso(self.started_ns),
            }
            self._journal.write("stopped", reason=reason, ended_at=ended)
            self.manifest = write_manifest(
                self.directory,
                started,
                ended_at=ended,
                complete=reason == "ended",
                stopped_because=reason,
                files=files,
            )
            self._journal.close()
        except OSError:
            log.exception("recording %s: the manifest could not be written", self.directory)
        loop, done = self._loop, self._done
        if loop is not None and done is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stopped, done, reason)

    def _stopped(self, done: asyncio.Future[None], reason: str) -> None:
        if not done.done():
            done.set_result(None)
        if not self._stop.is_set() and self.on_stopped is not None:
            self._stop.set()
            self.on_stopped(reason)
