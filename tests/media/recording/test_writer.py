"""The recording writer thread as the system sees it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from courtlink.media.recording import Recorder, RecordingInfo, RecordingWriter


@pytest.mark.skipif(sys.platform != "linux", reason="thread names in /proc are Linux's")
async def test_the_writer_thread_is_named_where_top_shows_it(tmp_path: Path) -> None:
    """docs/benchmarks.md reads the writer's CPU from /proc/<pid>/task/<tid>/stat: the thread
    is found by its name."""
    writer = RecordingWriter(poll=0.01)
    recorder = Recorder(tmp_path / "s1", RecordingInfo("s1", "c1", "n1"), writer=writer)
    await recorder.start()
    try:
        thread = writer._thread
        assert thread is not None
        await asyncio.sleep(0.05)
        comm = Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip()  # noqa: ASYNC240
        assert comm == "recording-writ"
    finally:
        await recorder.stop()
