"""What the app does with recordings when it starts (web/app.py ``_recordings``): a recording a
killed server left without a manifest gets one rebuilt and is sealed; a directory still being
written is left alone; recordings past their retention are deleted, each audited."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from courtlink.config import Settings
from courtlink.court.hashing import SecretHasher
from courtlink.court.recordings import check_recording
from courtlink.media.recording.journal import Journal
from tests.conftest import make_settings, start_server
from tests.court.recording_support import webm, write_recording
from tests.helpers import World, build_world
from tests.web.support import services_of


async def world_in(settings: Settings, hasher: SecretHasher) -> World:
    """A case and its session, made by a first server over the data directory."""
    live = await start_server(settings, hasher)
    try:
        return await build_world(services_of(live.app))
    finally:
        await live.close()


def killed_recording(directory: Path, world: World) -> None:
    """A recording as a recorder killed mid-session leaves it: a journal that started and
    opened a file, the file, no manifest; last written two minutes ago."""
    directory.mkdir(parents=True)
    journal = Journal(directory)
    journal.write(
        "started",
        session_id=world.session.id,
        case_id=world.case.id,
        case_number=world.case.number,
        video_codec="vp8",
        started_at="2026-12-06T01:00:00.000Z",
    )
    webm(directory / "judge.video.webm", seconds=1.0)
    journal.write(
        "file_opened",
        name="judge.video.webm",
        seat="judge",
        kind="video",
        codec="vp8",
        started_at="2026-12-06T01:00:00.200Z",
        offset_seconds=0.2,
    )
    journal.close()
    old = time.time() - 120
    for path in directory.iterdir():
        os.utime(path, (old, old))


async def test_a_killed_servers_recording_is_rebuilt_and_sealed_at_start(
    settings: Settings, fast_hasher: SecretHasher
) -> None:
    world = await world_in(settings, fast_hasher)
    directory = settings.recordings_dir / world.session.id
    killed_recording(directory, world)

    live = await start_server(settings, fast_hasher)
    try:
        services = services_of(live.app)
        manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
        assert manifest["complete"] is False
        assert manifest["stopped_because"] == "recovered_after_crash"
        assert [f["name"] for f in manifest["files"]] == ["judge.video.webm"]
        assert manifest["files"][0]["duration_seconds"] > 0.5
        checked = await check_recording(directory, services.archive.sealer)
        assert checked.ok, checked.findings
        async with services.store.read() as tx:
            kinds = [e.kind for e in await tx.audit_events(session_id=world.session.id)]
        assert kinds.count("recording.sealed") == 1
    finally:
        await live.close()

    # A second start finds it sealed and does nothing more.
    live = await start_server(settings, fast_hasher)
    try:
        async with services_of(live.app).store.read() as tx:
            kinds = [e.kind for e in await tx.audit_events(session_id=world.session.id)]
        assert kinds.count("recording.sealed") == 1
    finally:
        await live.close()


async def test_a_directory_written_just_now_is_left_alone(
    settings: Settings, fast_hasher: SecretHasher
) -> None:
    world = await world_in(settings, fast_hasher)
    directory = settings.recordings_dir / world.session.id
    killed_recording(directory, world)
    now = time.time()
    os.utime(directory / "judge.video.webm", (now, now))  # a recorder may still write it

    live = await start_server(settings, fast_hasher)
    try:
        assert sorted(p.name for p in directory.iterdir()) == ["journal.jsonl", "judge.video.webm"]
    finally:
        await live.close()


async def test_recordings_past_their_retention_are_deleted_at_start_and_audited(
    tmp_path: Path, fast_hasher: SecretHasher
) -> None:
    keep = make_settings(tmp_path / "data")  # retention_days 0: kept for ever
    world = await world_in(keep, fast_hasher)
    directory = keep.recordings_dir / world.session.id
    live = await start_server(keep, fast_hasher)
    try:
        # A recording made on 2026-03-01 (the support's default start).
        write_recording(
            directory,
            session_id=world.session.id,
            case_id=world.case.id,
            case_number=world.case.number,
        )
        await services_of(live.app).archive.seal(world.session.id, directory)
    finally:
        await live.close()
    for days, kept in ((0, True), (3650, True), (30, False)):
        settings = make_settings(tmp_path / "data", recording={"retention_days": days})
        live = await start_server(settings, fast_hasher)
        try:
            # The sweep runs as the app starts, in a task: give it its turn.
            for _ in range(50):
                if directory.exists() is kept:
                    break
                await asyncio.sleep(0.1)
            assert directory.exists() is kept, days
            async with services_of(live.app).store.read() as tx:
                kinds = [e.kind for e in await tx.audit_events(session_id=world.session.id)]
            assert ("recording.deleted" in kinds) is not kept, (days, kinds)
        finally:
            await live.close()
