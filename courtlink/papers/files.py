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

__all__ = ["FileStore"]


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
        # A temporary name of its own per write (mkstemp: O_EXCL, mode 0600), so that two
        # writes of one id never write into one temporary file.
        fd, name = tempfile.mkstemp(prefix=f".{document_id}.", suffix=".tmp", dir=final.parent)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            dir_fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            tmp.unlink(missing_ok=True)

    async def put(self, document_id: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, document_id, data)

    async def get(self, document_id: str) -> bytes:
        path = self.path(document_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound("the document's file is missing") from None
