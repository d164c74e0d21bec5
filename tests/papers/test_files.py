"""papers.files.FileStore: whole files or none, on a real directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from courtlink.errors import NotFound
from courtlink.papers.files import FileStore


async def test_a_file_reads_back_as_written(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "documents")
    await files.put("ab12", b"%PDF-1.7 one")
    assert await files.get("ab12") == b"%PDF-1.7 one"
    assert (tmp_path / "documents" / "ab" / "ab12").stat().st_mode & 0o777 == 0o600


async def test_two_writes_of_one_id_at_once_leave_one_of_them_whole(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "documents")
    first, second = b"A" * 3_000_000, b"B" * 2_000_000
    await asyncio.gather(*(files.put("cd34", data) for data in (first, second) * 4))
    assert await files.get("cd34") in (first, second)
    assert not list((tmp_path / "documents").rglob("*.tmp"))


async def test_leftover_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    leftover = tmp_path / "documents" / "ef" / ".ef56.k2j4.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")
    FileStore(tmp_path / "documents")
    assert not leftover.exists()


@pytest.mark.parametrize("document_id", ["../etc", "a/b", "", ".hidden"])
async def test_a_name_that_is_not_an_id_is_not_found(tmp_path: Path, document_id: str) -> None:
    files = FileStore(tmp_path / "documents")
    with pytest.raises(NotFound):
        await files.get(document_id)
    with pytest.raises(NotFound):
        await files.put(document_id, b"x")
    assert not list((tmp_path / "documents").rglob("*"))


async def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="missing"):
        await FileStore(tmp_path / "documents").get("0123")
