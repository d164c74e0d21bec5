"""The recording's journal and manifest (the contract: docs/architecture.md, issue 10).

``journal.jsonl`` is appended and fsynced as the recording starts, as each file opens and
closes and as it stops, so a server killed mid-session leaves enough to say what was being
written; ``manifest.json`` is written (through a temporary name, fsynced, renamed) when the
recording stops, or rebuilt from the journal and the files on disk by ``recover`` at the next
start: the files' sizes and hashes as they are, their durations read back with PyAV.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av

__all__ = [
    "FORMAT",
    "JOURNAL",
    "MANIFEST",
    "Journal",
    "file_entry",
    "iso",
    "read_duration",
    "recover",
    "sha256_of",
    "write_manifest",
]

FORMAT = "courtlink-recording/1"
JOURNAL = "journal.jsonl"
MANIFEST = "manifest.json"


def iso(ns: int) -> str:
    """Nanoseconds since the epoch as ISO-8601 UTC ending in "Z" (milliseconds)."""
    moment = datetime.fromtimestamp(ns / 1e9, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """``journal.jsonl`` of one recording: one JSON object a line, each fsynced."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL
        created = not self.path.exists()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        if created:
            _fsync_directory(directory)

    def write(self, event: str, **data: Any) -> None:
        self._file.write(json.dumps({"event": event, **data}, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_journal(directory: Path) -> list[dict[str, Any]]:
    """The journal's entries; a last line cut short by a kill is left out."""
    entries = []
    with contextlib.suppress(FileNotFoundError):
        for line in (directory / JOURNAL).read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                break
    return entries


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_duration(path: Path) -> float:
    """Seconds from the file's first packet to the end of its last, read with PyAV (packets
    only, nothing decoded); what a player can play of a file cut short by a kill (to within
    the last frame's duration)."""
    first = last = None
    try:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            base = float(stream.time_base or 0.001)
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                start = packet.pts * base
                # A frame lasts at most 100 ms (track.py's timeline). A VP8 block holds no
                # duration (libavformat 5.1 writes SimpleBlocks): what the reader guesses
                # for it is capped there.
                end = start + min((packet.duration or 0) * base, 0.1)
                first = start if first is None else min(first, start)
                last = end if last is None else max(last, end)
    except (av.FFmpegError, OSError, IndexError):
        pass  # a torn tail: what was read counts
    if first is None or last is None:
        return 0.0
    return round(last - first, 3)


def file_entry(directory: Path, opened: dict[str, Any], duration: float) -> dict[str, Any]:
    """The manifest's entry of one file (the journal's ``file_opened`` fields, and what the
    file on disk is now)."""
    path = directory / opened["name"]
    return {
        "name": opened["name"],
        "seat": opened["seat"],
        "kind": opened["kind"],
        "codec": opened["codec"],
        "started_at": opened["started_at"],
        "offset_seconds": opened["offset_seconds"],
        "duration_seconds": duration,
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
    }


def write_manifest(
    directory: Path,
    started: dict[str, Any],
    *,
    ended_at: str | None,
    complete: bool,
    stopped_because: str,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """Write ``manifest.json`` (through a temporary name; fsynced) and return it."""
    manifest = {
        "format": FORMAT,
        "session_id": started["session_id"],
        "case_id": started["case_id"],
        "case_number": started["case_number"],
        "started_at": started["started_at"],
        "ended_at": ended_at,
        "complete": complete,
        "stopped_because": stopped_because,
        "files": sorted(files, key=lambda f: f["name"]),
    }
    text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2)
    temporary = directory / (MANIFEST + ".tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, directory / MANIFEST)
    _fsync_directory(directory)
    return manifest


def recover(directory: Path) -> dict[str, Any] | None:
    """A recording directory with a journal but no manifest (the server was killed while it
    recorded): its manifest, rebuilt from the journal and the files as they are on disk
    (``complete`` false, ``recovered_after_crash``). None when there is nothing to recover."""
    if (directory / MANIFEST).exists():
        return None
    entries = read_journal(directory)
    started = next((e for e in entries if e.get("event") == "started"), None)
    if started is None:
        return None
    files = []
    for opened in entries:
        if opened.get("event") == "file_opened" and (directory / opened["name"]).exists():
            files.append(file_entry(directory, opened, read_duration(directory / opened["name"])))
    stopped = next((e for e in entries if e.get("event") == "stopped"), None)
    manifest = write_manifest(
        directory,
        started,
        ended_at=stopped["ended_at"] if stopped else None,
        complete=False,
        stopped_because="recovered_after_crash",
        files=files,
    )
    (directory / (MANIFEST + ".tmp")).unlink(missing_ok=True)
    return manifest
