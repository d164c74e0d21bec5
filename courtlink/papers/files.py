"""Document files on disk, written so that a crash never leaves a half file behind.

Each file is written to a temporary name, flushed and fsynced, then renamed over its final
name and the directory fsynced: after ``put`` returns the file is whole on disk, and a crash
before that leaves only a temporary file (removed at the next start). Records reference a file
only after ``put`` returned, so a record never points at a missing or partial file.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from courtlink.errors import NotFound

__all__ = ["FileStore", "write_durably"]


def write_durably(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a temporary name of its own (mkstemp: O_EXCL, so two
    writes of one path never share one), flushed and fsynced, renamed over ``path``, the
    directory fsynced: a crash leaves the old file or the new one, never half of one."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


class FileStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in directory.glob("*/.*.tmp"):
            stale.unlink(missing_ok=True)

    def path(self, document_id: str) -> Path:
        if not document_id.isalnum():
            raise NotFound("no such file")
        return self.directory / document_id[:2] / document_id

    def _write(self, document_id: str, data: bytes) -> None:
        final = self.path(document_id)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_durably(final, data)

    async def put(self, document_id: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, document_id, data)

    async def get(self, document_id: str) -> bytes:
        path = self.path(document_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound("the document's file is missing") from None
