"""The hearing starts and stops a recorded session's recording with the session, and tells the
session's room (the ``recording`` event); a recorder's own stop (a full disk) reaches the room
and the hook through media's report."""

from __future__ import annotations

import errno
from pathlib import Path

from sqlalchemy import update

from courtlink.storage import tables
from tests.live.conftest import Live


class FakeRecorder:
    """A RecordingPort that records each call (and can refuse to start)."""

    def __init__(self, refuse: OSError | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.refuse = refuse
        self.running: set[str] = set()

    async def record(
        self,
        session_id: str,
        directory: Path,
        *,
        case_id: str,
        case_number: str,
        video_codec: str = "vp8",
    ) -> None:
        self.calls.append(("record", session_id, str(directory), case_id, case_number, video_codec))
        if self.refuse is not None:
            raise self.refuse
        self.running.add(session_id)

    async def stop_recording(self, session_id: str, reason: str = "ended") -> bool:
        self.calls.append(("stop", session_id, reason))
        if session_id not in self.running:
            return False
        self.running.discard(session_id)
        return True


async def recorded(live: Live, tmp_path: Path, recorder: FakeRecorder) -> list[tuple[str, Path]]:
    """Make the world's session a recorded one and give the hearing a recorder; the hook's
    calls."""
    # The judge chooses at creation; the world's session was made unrecorded.
    async with live.services.store.write() as tx:
        await tx.conn.execute(
            update(tables.sessions)
            .where(tables.sessions.c.id == live.session_id)
            .values(recorded=True)
        )
    stopped: list[tuple[str, Path]] = []

    async def hook(session_id: str, directory: Path) -> None:
        stopped.append((session_id, directory))

    live.hearing.recorder = recorder
    live.hearing.recordings_dir = tmp_path
    live.hearing.on_recording_stopped = hook
    return stopped


def recording_events(live: Live) -> list[dict[str, object]]:
    return [m for _, e, m in live.outbox.published if e == "recording"]


async def test_a_recorded_session_records_from_live_until_it_ends(
    live: Live, tmp_path: Path
) -> None:
    recorder = FakeRecorder()
    stopped = await recorded(live, tmp_path, recorder)
    await live.joined("officer")
    assert recorder.calls == []  # open, not live yet
    judge, _ = await live.joined("judge-account")
    sid = live.session_id
    assert recorder.calls == [
        ("record", sid, str(tmp_path / sid), live.world.case.id, live.world.case.number, "vp8")
    ]
    assert recording_events(live) == [{"recording": True, "reason": "started"}]
    assert live.hearing.recording(sid)
    # Someone leaving and coming back neither stops nor restarts it.
    await live.consent("creditor")
    creditor, _ = await live.joined("creditor")
    await live.hearing.leave(creditor)
    assert [c[0] for c in recorder.calls] == ["record"]
    await live.controls.end(judge)
    assert recorder.calls[-1] == ("stop", sid, "ended")
    assert recording_events(live)[-1] == {"recording": False, "reason": "ended"}
    assert stopped == [(sid, tmp_path / sid)]
    await live.hearing.close()
    assert stopped == [(sid, tmp_path / sid)]  # once


async def test_an_unrecorded_session_is_not_recorded(live: Live, tmp_path: Path) -> None:
    recorder = FakeRecorder()
    live.hearing.recorder, live.hearing.recordings_dir = recorder, tmp_path
    await live.joined("officer")
    await live.joined("judge-account")
    assert recorder.calls == []
    assert recording_events(live) == []


async def test_too_little_disk_at_the_start_alerts_the_room(live: Live, tmp_path: Path) -> None:
    recorder = FakeRecorder(refuse=OSError(errno.ENOSPC, "below recording.min_free_mb"))
    stopped = await recorded(live, tmp_path, recorder)
    await live.joined("officer")
    await live.joined("judge-account")
    assert recording_events(live) == [{"recording": False, "reason": "disk_full"}]
    assert not live.hearing.recording(live.session_id)
    await live.consent("creditor")
    await live.joined("creditor")
    assert [c[0] for c in recorder.calls] == ["record"]  # not tried again
    assert stopped == []


async def test_a_disk_that_fills_mid_session_reaches_the_room_and_the_hook(
    live: Live, tmp_path: Path
) -> None:
    recorder = FakeRecorder()
    stopped = await recorded(live, tmp_path, recorder)
    await live.joined("officer")
    await live.joined("judge-account")
    sid = live.session_id
    recorder.running.discard(sid)  # media stopped it by itself, and reports:
    assert live.media.listener is not None
    await live.media.listener(sid, "", "recording", {"recording": False, "reason": "disk_full"})
    assert recording_events(live)[-1] == {"recording": False, "reason": "disk_full"}
    assert stopped == [(sid, tmp_path / sid)]
    await live.hearing.close()
    assert [c for c in recorder.calls if c[0] == "stop"] == []


async def test_the_server_closing_stops_the_recording(live: Live, tmp_path: Path) -> None:
    recorder = FakeRecorder()
    stopped = await recorded(live, tmp_path, recorder)
    await live.joined("officer")
    await live.joined("judge-account")
    await live.hearing.close()
    assert recorder.calls[-1] == ("stop", live.session_id, "ended")
    assert stopped == [(live.session_id, tmp_path / live.session_id)]
