"""Recordings as records: the manifest parsed strictly, a directory compared with it, sealing
(manifest.p7s by the court's key, ``recording.sealed`` in the chain), tampering named, the
listing and files the playback page reads, and retention deleting with an audit event first."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.policy import AccountPrincipal
from courtlink.court.recordings import (
    Finding,
    Listed,
    ManifestError,
    Observed,
    check_recording,
    compare,
    parse_manifest,
)
from courtlink.errors import Conflict, Forbidden, NotFound
from courtlink.papers.manifest_seal import CmsSeal
from courtlink.papers.seal import CourtSeal
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.court.recording_support import db_world, manifest_bytes, write_recording
from tests.helpers import World

__all__ = ["db_world"]

Ready = tuple[Services, World]


def recorded(services: Services, world: World, **kw: Any) -> tuple[Path, dict[str, Any]]:
    directory = services.archive.path(world.session.id)
    obj = write_recording(directory, session_id=world.session.id, case_id=world.case.id, **kw)
    return directory, obj


async def events(services: Services, kind: str) -> list[Any]:
    async with services.store.read() as tx:
        return [e for e in await tx.audit_events() if e.kind == kind]


# The manifest, pure ------------------------------------------------------------------------


def test_manifest_parses_and_keeps_its_exact_bytes(tmp_path: Path) -> None:
    obj = write_recording(tmp_path, session_id="abc123", case_id="c1")
    raw = (tmp_path / "manifest.json").read_bytes()
    manifest = parse_manifest(raw)
    assert manifest.session_id == "abc123"
    assert manifest.raw == raw
    assert [f.name for f in manifest.files] == [f["name"] for f in obj["files"]]
    assert manifest.file("judge.video.webm") is not None
    assert manifest.started_at.tzinfo is not None


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda o: o.update(extra=1), "unknown keys extra"),
        (lambda o: o.pop("complete"), "lacks complete"),
        (lambda o: o.update(format="other/1"), "format"),
        (lambda o: o.update(complete="yes"), "complete"),
        (lambda o: o.update(stopped_because="bored"), "stopped_because"),
        (lambda o: o.update(started_at="2026-03-01T08:00:00+08:00"), "ending in Z"),
        (lambda o: o["files"][0].update(name="../../etc/passwd"), "is not"),
        (lambda o: o["files"][0].update(name="judge.audio.webm"), "is not"),
        (lambda o: o["files"][0].update(seat="clerk"), "not a seat"),
        (lambda o: o["files"][0].update(codec="aac"), "not recorded"),
        (lambda o: o["files"][0].update(bytes=True), "bytes"),
        (lambda o: o["files"][0].update(sha256="X" * 64), "sha256"),
        (lambda o: o["files"][0].update(duration_seconds=-1), "duration_seconds"),
        (lambda o: o["files"].reverse(), "sorted"),
        (lambda o: o["files"].append(dict(o["files"][-1])), "twice"),
    ],
)
def test_manifest_is_parsed_strictly(tmp_path: Path, change: Any, says: str) -> None:
    obj = write_recording(tmp_path, session_id="abc123", case_id="c1")
    change(obj)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest_bytes(obj))
    assert says in caught.value.message


def test_manifest_that_is_not_json() -> None:
    with pytest.raises(ManifestError, match="not UTF-8 JSON"):
        parse_manifest(b"\xff{")


def test_compare_names_every_difference() -> None:
    listed = [Listed("a", 3, "1" * 64), Listed("b", 3, "2" * 64), Listed("c", 3, "3" * 64)]
    present = {
        "a": Observed(3, "1" * 64),
        "b": Observed(3, "9" * 64),
        "d": Observed(1, None),
        "journal.jsonl": Observed(5, None),
        "sub": Observed(0, None, is_file=False),
    }
    findings = compare(listed, present, frozenset({"journal.jsonl"}))
    assert [str(f) for f in findings] == [
        "b: content changed",
        "c: missing",
        "d: not in the manifest",
        "sub: not in the manifest",
    ]
    assert compare(listed[:1], {"a": Observed(4, None)}, frozenset()) == [
        Finding("a", "content changed (4 bytes, the listing says 3)")
    ]


# Sealing and tampering, on both databases ----------------------------------------------------


async def test_seal_signs_audits_and_verifies(db_world: Ready) -> None:
    services, world = db_world
    directory, _ = recorded(services, world, real_video=True)
    manifest = await services.archive.seal(world.session.id, directory)
    assert (directory / "manifest.p7s").exists()
    sealed = await events(services, AuditKind.RECORDING_SEALED)
    assert len(sealed) == 1
    assert sealed[0].session_id == world.session.id
    assert sealed[0].case_id == world.case.id
    assert sealed[0].data["manifest_sha256"] == manifest.sha256
    assert sealed[0].data["files"] == 8
    assert sealed[0].data["complete"] is True
    check = await check_recording(directory, services.archive.sealer)
    assert check.ok, check.findings
    assert check.signature is not None
    assert check.signature.kid == services.seal.current
    # Sealing again (the recorder's hook after a restart) changes nothing and audits nothing.
    again = await services.archive.seal(world.session.id, directory)
    assert again.sha256 == manifest.sha256
    assert len(await events(services, AuditKind.RECORDING_SEALED)) == 1
    report = await services.auditor.verify()
    assert report.ok, report.summary()


async def test_seal_refuses_a_directory_that_does_not_match(db_world: Ready) -> None:
    services, world = db_world
    directory, _ = recorded(services, world)
    (directory / "judge.audio.webm").write_bytes(b"short")
    (directory / "stray.tmp").write_bytes(b"x")
    with pytest.raises(Conflict) as caught:
        await services.archive.seal(world.session.id, directory)
    assert "judge.audio.webm: content changed" in caught.value.message
    assert "stray.tmp: not in the manifest" in caught.value.message
    assert not (directory / "manifest.p7s").exists()
    refused = await events(services, AuditKind.RECORDING_SEAL_REFUSED)
    assert len(refused) == 1
    assert "stray.tmp: not in the manifest" in refused[0].data["findings"]


async def test_seal_refuses_another_sessions_manifest(
    world_services: Ready,
) -> None:
    services, world = world_services
    directory = services.archive.path(world.session.id)
    write_recording(directory, session_id=world.session.id, case_id="another")
    with pytest.raises(Conflict, match="another session or case"):
        await services.archive.seal(world.session.id)


def tamper_byte(directory: Path) -> list[str]:
    path = directory / "judge.video.webm"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    return ["judge.video.webm: content changed"]


def tamper_missing(directory: Path) -> list[str]:
    (directory / "creditor.audio.webm").unlink()
    return ["creditor.audio.webm: missing"]


def tamper_added(directory: Path) -> list[str]:
    (directory / "extra.bin").write_bytes(b"\0")
    return ["extra.bin: not in the manifest"]


def tamper_manifest(directory: Path) -> list[str]:
    # Changed consistently (the file and the manifest both): only the signature can tell.
    path = directory / "debtor.audio.webm"
    path.write_bytes(b"another conversation")
    obj = json.loads((directory / "manifest.json").read_bytes())
    entry = next(f for f in obj["files"] if f["name"] == "debtor.audio.webm")
    import hashlib

    entry["bytes"] = len(b"another conversation")
    entry["sha256"] = hashlib.sha256(b"another conversation").hexdigest()
    (directory / "manifest.json").write_bytes(manifest_bytes(obj))
    return ["manifest.p7s: signature does not match"]


def tamper_other_key(directory: Path) -> list[str]:
    forger = CmsSeal(CourtSeal.load_or_create(directory.parent / "forger-keys"))
    signature, _ = forger.sign((directory / "manifest.json").read_bytes())
    (directory / "manifest.p7s").write_bytes(signature)
    return ["manifest.p7s: not signed with a certificate of this court"]


def tamper_signature_gone(directory: Path) -> list[str]:
    (directory / "manifest.p7s").unlink()
    return ["manifest.p7s: missing (the recording was never sealed)"]


def tamper_signature_garbage(directory: Path) -> list[str]:
    (directory / "manifest.p7s").write_bytes(b"not DER")
    return ["manifest.p7s: not a CMS signature"]


@pytest.mark.parametrize(
    "tamper",
    [
        tamper_byte,
        tamper_missing,
        tamper_added,
        tamper_manifest,
        tamper_other_key,
        tamper_signature_gone,
        tamper_signature_garbage,
    ],
)
async def test_tampering_is_named(world_services: Ready, tamper: Any) -> None:
    services, world = world_services
    directory, _ = recorded(services, world)
    await services.archive.seal(world.session.id)
    expected = tamper(directory)
    check = await check_recording(directory, services.archive.sealer)
    assert [str(f) for f in check.findings] == expected


async def test_offline_check_needs_only_the_certificates(world_services: Ready) -> None:
    services, world = world_services
    directory, _ = recorded(services, world)
    await services.archive.seal(world.session.id)
    offline = CmsSeal(CourtSeal(None, dict(services.seal.certificates)))
    assert (await check_recording(directory, offline)).ok
    stranger = CmsSeal(CourtSeal.load_or_create(directory.parent / "another-court"))
    check = await check_recording(directory, CmsSeal(CourtSeal(None, stranger.seal.certificates)))
    assert [str(f) for f in check.findings] == [
        "manifest.p7s: not signed with a certificate of this court"
    ]
    with pytest.raises(Exception, match="cannot sign"):
        offline.sign(b"x")


async def test_an_old_certificate_still_verifies_after_rotation(world_services: Ready) -> None:
    services, world = world_services
    directory, _ = recorded(services, world)
    await services.archive.seal(world.session.id)
    services.seal.rotate()
    assert (await check_recording(directory, services.archive.sealer)).ok


# The listing and the files, for the playback page ---------------------------------------------


async def test_recordings_for_the_judge_and_approvers_only(world_services: Ready) -> None:
    services, world = world_services
    archive = services.archive
    assert await archive.recordings(world.me, world.case.id) == []
    directory, _ = recorded(services, world)
    listed = await archive.recordings(world.me, world.case.id)
    assert [(r.session.id, r.sealed) for r in listed] == [(world.session.id, False)]
    assert listed[0].manifest is not None
    assert len(listed[0].manifest.files) == 8
    await archive.seal(world.session.id)
    for who in (world.me, AccountPrincipal(world.approver)):
        (one,) = await archive.recordings(who, world.case.id)
        assert one.sealed
        assert (await archive.manifest(who, world.session.id)).session_id == world.session.id
        path = await archive.file(who, world.session.id, "judge.video.webm")
        assert path == directory / "judge.video.webm"
    for who in (AccountPrincipal(world.other_judge), AccountPrincipal(world.officer)):
        with pytest.raises(Forbidden):
            await archive.recordings(who, world.case.id)
        with pytest.raises(Forbidden):
            await archive.file(who, world.session.id, "judge.video.webm")
    for name in ("journal.jsonl", "manifest.p7s", "../manifest.json", "/etc/passwd", ""):
        with pytest.raises(NotFound):
            await archive.file(world.me, world.session.id, name)
    assert (await archive.check(world.me, world.session.id)).ok


async def test_a_recording_in_progress_is_listed_without_manifest(world_services: Ready) -> None:
    services, world = world_services
    directory = services.archive.path(world.session.id)
    directory.mkdir(parents=True)
    (directory / "judge.audio.webm").write_bytes(b"\x1a\x45\xdf\xa3")
    (one,) = await services.archive.recordings(world.me, world.case.id)
    assert one.manifest is None
    assert not one.sealed
    assert one.problem is None
    with pytest.raises(NotFound):
        await services.archive.manifest(world.me, world.session.id)
    (directory / "manifest.json").write_text("{}")
    (one,) = await services.archive.recordings(world.me, world.case.id)
    assert one.manifest is None
    assert one.problem is not None


async def test_a_file_linked_out_of_the_directory_is_not_served(world_services: Ready) -> None:
    services, world = world_services
    directory, _ = recorded(services, world)
    secret = directory.parent / "secret"
    secret.write_bytes((directory / "judge.video.webm").read_bytes())
    (directory / "judge.video.webm").unlink()
    (directory / "judge.video.webm").symlink_to(secret)
    with pytest.raises(NotFound):
        await services.archive.file(world.me, world.session.id, "judge.video.webm")


# Retention ------------------------------------------------------------------------------


async def test_sweep_deletes_old_recordings_after_auditing(
    db_world: Ready, clock: MovableClock
) -> None:
    services, world = db_world
    archive = services.archive
    assert archive.retention_days == 30
    directory, _obj = recorded(services, world, started=clock.now - timedelta(days=40))
    manifest = await archive.seal(world.session.id)
    young = archive.directory / "ffff0000ffff0000"
    write_recording(
        young,
        session_id="ffff0000ffff0000",
        case_id=world.case.id,
        started=clock.now - timedelta(days=2),
    )
    report = await archive.sweep(clock.now)
    assert report.deleted == [world.session.id]
    assert report.failed == []
    assert report.kept == 1
    assert not directory.exists()
    assert young.exists()
    (deleted,) = await events(services, AuditKind.RECORDING_DELETED)
    assert deleted.session_id == world.session.id
    assert deleted.case_id == world.case.id
    assert deleted.data["manifest_sha256"] == manifest.sha256
    assert deleted.data["sealed"] is True
    assert deleted.data["reason"] == "retention"
    assert (await archive.sweep(clock.now)).deleted == []
    assert (await services.auditor.verify()).ok


async def test_sweep_keeps_everything_when_retention_is_zero(
    world_services: Ready, clock: MovableClock
) -> None:
    services, world = world_services
    assert services.archive.retention_days == 0
    directory, _ = recorded(services, world, started=clock.now - timedelta(days=4000))
    assert (await services.archive.sweep(clock.now)).deleted == []
    assert directory.exists()


async def test_a_failed_deletion_is_logged_audited_and_retried(
    world_services: Ready,
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services, world = world_services
    archive = services.archive
    archive.retention_days = 1
    recorded(services, world, started=clock.now - timedelta(days=3))

    def broken(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", broken)
    report = await archive.sweep(clock.now)
    assert report.deleted == []
    assert [sid for sid, _ in report.failed] == [world.session.id]
    assert "not deleted" in caplog.text
    assert len(await events(services, AuditKind.RECORDING_DELETED)) == 1
    (failed,) = await events(services, AuditKind.RECORDING_DELETE_FAILED)
    assert "Permission denied" in failed.data["error"]
    # The half-done deletion no longer looks like a recording; the next sweep finishes it.
    assert await archive.recordings(world.me, world.case.id) == []
    monkeypatch.undo()
    report = await archive.sweep(clock.now)
    assert report.deleted == [world.session.id]
    assert list(archive.directory.iterdir()) == []
