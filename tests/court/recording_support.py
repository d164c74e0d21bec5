"""A recording directory as the recorder leaves it (contract of issue 10), made in tests: tracks
of known bytes (or real WebM from PyAV), journal.jsonl, and manifest.json written the way the
recorder writes it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from courtlink.clock import Clock
from courtlink.court.hashing import SecretHasher
from courtlink.web.services import Services, open_services
from tests.conftest import make_settings
from tests.helpers import World, build_world

SEATS = ("creditor", "debtor", "judge", "officer")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def manifest_bytes(obj: dict[str, Any]) -> bytes:
    """manifest.json exactly as the contract spells it."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2).encode()


def webm(path: Path, seconds: float = 0.5) -> None:
    """A small real WebM (VP8 video) written with PyAV."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(max(1, int(seconds * 10))):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), (i * 20) % 255, dtype=np.uint8), format="rgb24"
            )
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_recording(
    directory: Path,
    *,
    session_id: str,
    case_id: str,
    case_number: str = "(2021)苏0903执1234号",
    started: datetime | None = None,
    seats: tuple[str, ...] = SEATS,
    size: int = 2048,
    real_video: bool = False,
) -> dict[str, Any]:
    """Write a finished recording of ``seats`` into ``directory``; the manifest object."""
    started = started or datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    directory.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    for seat in seats:
        for kind, codec in (("audio", "opus"), ("video", "vp8")):
            name = f"{seat}.{kind}.webm"
            path = directory / name
            if real_video and kind == "video":
                webm(path)
            else:
                path.write_bytes(hashlib.sha256(name.encode()).digest() * (size // 32))
            data = path.read_bytes()
            files.append(
                {
                    "name": name,
                    "seat": seat,
                    "kind": kind,
                    "codec": codec,
                    "started_at": iso(started),
                    "offset_seconds": 0.25,
                    "duration_seconds": 61.5,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
    obj = {
        "format": "courtlink-recording/1",
        "session_id": session_id,
        "case_id": case_id,
        "case_number": case_number,
        "started_at": iso(started),
        "ended_at": iso(started + timedelta(minutes=1)),
        "complete": True,
        "stopped_because": "ended",
        "files": sorted(files, key=lambda f: f["name"]),
    }
    (directory / "journal.jsonl").write_text('{"event": "started"}\n{"event": "stopped"}\n')
    (directory / "manifest.json").write_bytes(manifest_bytes(obj))
    return obj


@pytest.fixture
async def db_world(
    tmp_path: Path, database_url: str, fast_hasher: SecretHasher, clock: Clock
) -> AsyncIterator[tuple[Services, World]]:
    """The records side on SQLite and on PostgreSQL, with the small world of tests.helpers."""
    settings = make_settings(
        tmp_path / "var", database={"url": database_url}, recording={"retention_days": 30}
    )
    async with open_services(settings, clock=clock, hasher=fast_hasher) as services:
        yield services, await build_world(services)
