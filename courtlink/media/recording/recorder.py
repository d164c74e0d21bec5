"""The Recorder: one recorded session, written by a thread of its own.

The packet path only appends each packet a Producer received to the Producer's ``tap`` list
(media/_receive.c); the recorder's thread swaps each list for an empty one every
``poll`` seconds, puts the packets back in order, assembles frames and muxes them per seat
and kind (``TrackFile``), so the event loop never waits on a disk. A tap that fills up
(the thread fell behind) drops and counts. The thread also watches the disk: below
``min_free_mb`` free, or a write refused with ENOSPC, it stops the recording, closes every file
whole, writes the manifest (``complete`` false, ``disk_full``) and tells the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from courtlink.media.recording.depacketize import Assembler, assembler_for, parse_tapped
from courtlink.media.recording.journal import (
    MANIFEST,
    Journal,
    file_entry,
    iso,
    recover,
    write_manifest,
)
from courtlink.media.recording.track import Opener, TrackFile, default_opener

__all__ = ["DiskFull", "Recorder", "RecordingInfo", "Tapped"]

log = logging.getLogger("courtlink.media.recording")

TAP_LIMIT = 4096  # packets a tap holds between two polls (about 2 s of a busy track)
DISK_CHECK_SECONDS = 1.0


class DiskFull(OSError):
    """Less free space than the recording needs."""


class Tapped(Protocol):
    """What the recorder needs of a Producer (media._forward.Source)."""

    tap: list[bytes] | None
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
    """One seat and kind: the Producers that fed it (the newest last), their frames' file."""

    def __init__(self, file: TrackFile, assembler: Assembler) -> None:
        self.file = file
        self.assembler = assembler
        self.sources: list[Tapped] = []


class Recorder:
    """Records one session into ``directory``. ``start`` on the event loop, ``feed`` each
    Producer as it appears (a reconnect's new Producer continues the same files), ``stop``
    (idempotent) to finish. ``on_stopped(reason)`` is called on the loop when the recorder
    stops by itself (``disk_full``, ``failed``)."""

    def __init__(
        self,
        directory: Path,
        info: RecordingInfo,
        *,
        min_free_mb: int = 0,
        on_stopped: Callable[[str], None] | None = None,
        opener: Opener = default_opener,
        clock_ns: Callable[[], int] = time.time_ns,
        poll: float = 0.1,
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
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._journal: Journal | None = None
        self._done: asyncio.Future[None] | None = None

    # On the event loop ------------------------------------------------------------------

    async def start(self) -> None:
        """Create the directory, rebuild a manifest a killed server left undone, check the
        disk, journal the start (all in a worker thread: hashing a crashed recording's files
        takes a while) and start the writer thread. Raises DiskFull, FileExistsError (the
        session was recorded here already and finished) or OSError; nothing runs then."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._prepare)
        self._loop = loop
        self._done = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{self.info.session_id}", daemon=True
        )
        self._thread.start()

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
        return self._thread is not None and self.reason is None

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
                track = self._tracks[key] = _Track(file, assembler_for(codec))
            if track.sources and track.sources[-1] is source:
                return False
            source.tap_limit = TAP_LIMIT
            source.tap = []
            track.sources.append(source)
            return True

    async def stop(self, reason: str = "ended") -> dict[str, Any] | None:
        """Stop, close every file, write the manifest; the manifest (None when the recording
        never started). Idempotent; the first reason counts."""
        if self._thread is None or self._done is None:
            return None
        if not self._stop.is_set():
            self._asked = reason
            self._stop.set()
        await asyncio.shield(self._done)
        return self.manifest

    async def close(self) -> None:
        await self.stop("ended")

    # On the thread ----------------------------------------------------------------------

    def _check_disk(self) -> None:
        if self.min_free and shutil.disk_usage(self.directory).free < self.min_free:
            raise DiskFull(errno.ENOSPC, "less free space than recording.min_free_mb")

    def _run(self) -> None:
        reason = "ended"
        next_check = time.monotonic() + DISK_CHECK_SECONDS
        try:
            while not self._stop.wait(self.poll):
                self._drain()
                if time.monotonic() >= next_check:
                    next_check += DISK_CHECK_SECONDS
                    self._check_disk()
            self._drain(final=True)
            reason = self._asked
        except OSError as exc:
            reason = "disk_full" if exc.errno == errno.ENOSPC else "failed"
            log.error("recording %s stopped: %s", self.directory, exc)
        except Exception:
            reason = "failed"
            log.exception("recording %s failed", self.directory)
        self._finish(reason)

    def _drain(self, *, final: bool = False) -> None:
        """Take every tap's packets and write the frames they complete."""
        with self._lock:
            tracks = [(t, list(t.sources)) for t in self._tracks.values()]
        for track, sources in tracks:
            for i, source in enumerate(sources):
                retired = i < len(sources) - 1 or final
                batch = source.tap
                if batch is None:
                    continue
                if retired:
                    source.tap = None  # the thread's last look at it
                else:
                    source.tap = []
                if batch:
                    self._write(track, batch)
                self.dropped += source.tap_dropped
                source.tap_dropped = 0
                if retired:
                    with self._lock:
                        track.sources.remove(source)
            if final or len(sources) > 1:
                # A retired source's frames held for reordering go before the new one's.
                for frame in track.assembler.drain():
                    track.file.write(frame)
            if sources and not final and getattr(track.assembler, "waiting_keyframe", False):
                self._ask_keyframe(sources[-1])

    def _ask_keyframe(self, source: Tapped) -> None:
        """Video waits for a key frame (the start, or a frame lost for good): ask the
        publisher, on the loop (the Producer limits how often a PLI goes out)."""
        ask = getattr(source, "want_keyframe", None)
        if ask is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(ask)

    def _write(self, track: _Track, batch: list[bytes]) -> None:
        assembler, file = track.assembler, track.file
        for item in batch:
            for frame in assembler.push(parse_tapped(item)):
                file.write(frame)

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
