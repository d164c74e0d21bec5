"""A case exported as one package: what it holds, that it verifies, and that every kind of
tampering with it is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from courtlink.court.audit import AuditKind
from courtlink.court.export import verify_export
from courtlink.errors import Conflict, NotFound
from courtlink.papers.manifest_seal import CmsSeal
from courtlink.papers.seal import CourtSeal
from courtlink.web.services import Services
from tests.court.recording_support import db_world, write_recording
from tests.helpers import World

__all__ = ["db_world"]

Ready = tuple[Services, World]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def exported(services: Services, world: World, out: Path) -> Path:
    write_recording(
        services.archive.path(world.session.id),
        session_id=world.session.id,
        case_id=world.case.id,
    )
    await services.archive.seal(world.session.id)
    await services.registry.upload(
        world.me, case_id=world.case.id, data=PDF, media_type="application/pdf", file_name="a.pdf"
    )
    report = await services.archive.export(world.case.number, out)
    assert report.check.ok, report.check.findings
    return out


async def test_export_writes_everything_and_verifies(db_world: Ready, tmp_path: Path) -> None:
    services, world = db_world
    out = await exported(services, world, tmp_path / "out")
    index = json.loads((out / "archive.json").read_bytes())
    assert index["case_number"] == world.case.number
    assert index["recordings"] == [world.session.id]
    names = {f["name"] for f in index["files"]}
    assert f"recordings/{world.session.id}/manifest.p7s" in names
    assert f"recordings/{world.session.id}/judge.video.webm" in names
    assert {"case.json", "audit/events.jsonl", "audit/checkpoints.jsonl", "audit/keys.json"} <= (
        names
    )
    (document,) = index["documents"]
    assert f"documents/{document}.pdf" in names
    assert (out / "documents" / f"{document}.pdf").read_bytes() == PDF
    kinds = [
        json.loads(line)["kind"] for line in (out / "audit/events.jsonl").read_text().splitlines()
    ]
    assert AuditKind.CASE_CREATED in kinds
    assert AuditKind.RECORDING_SEALED in kinds
    assert AuditKind.RECORDING_EXPORTED in kinds
    assert (out / "audit/checkpoints.jsonl").read_text().strip()
    async with services.store.read() as tx:
        done = [e for e in await tx.audit_events(case_id=world.case.id)]
    assert done[-1].kind == AuditKind.ARCHIVE_EXPORTED
    assert done[-1].data["verified"] is True
    # Offline, with the certificates alone.
    offline = CmsSeal(CourtSeal(None, dict(services.seal.certificates)))
    check = await verify_export(out, offline, None)
    assert check.ok, check.findings
    assert check.events == len(kinds)
    assert (await services.auditor.verify()).ok


async def test_export_refuses_a_used_directory_and_an_unknown_case(
    db_world: Ready, tmp_path: Path
) -> None:
    services, world = db_world
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(Conflict):
        await services.archive.export(world.case.id, tmp_path / "used")
    with pytest.raises(NotFound):
        await services.archive.export("(2021)苏0903执9999号", tmp_path / "new")
    with pytest.raises(NotFound):
        await services.archive.export("nonsense", tmp_path / "new")


async def test_export_refuses_a_tampered_recording(world_services: Ready, tmp_path: Path) -> None:
    services, world = world_services
    directory = services.archive.path(world.session.id)
    write_recording(directory, session_id=world.session.id, case_id=world.case.id)
    await services.archive.seal(world.session.id)
    (directory / "extra.bin").write_bytes(b"x")
    with pytest.raises(Conflict, match=r"extra\.bin: not in the manifest"):
        await services.archive.export(world.case.id, tmp_path / "out")


async def test_tampering_with_an_export_is_named(world_services: Ready, tmp_path: Path) -> None:
    services, world = world_services
    out = await exported(services, world, tmp_path / "out")
    sid = world.session.id
    track = out / "recordings" / sid / "judge.video.webm"
    data = bytearray(track.read_bytes())
    data[10] ^= 0xFF
    track.write_bytes(bytes(data))
    (out / "recordings" / sid / "creditor.audio.webm").unlink()
    (out / "documents" / "added.pdf").write_bytes(PDF)
    events = out / "audit" / "events.jsonl"
    lines = events.read_text().splitlines()
    first = json.loads(lines[0])
    first["actor"] = "someone else"
    events.write_text("\n".join([json.dumps(first, ensure_ascii=False), *lines[1:]]) + "\n")
    check = await verify_export(out, services.archive.sealer, None)
    found = [str(f) for f in check.findings]
    assert f"recordings/{sid}/judge.video.webm: content changed" in found
    assert f"recordings/{sid}/creditor.audio.webm: missing" in found
    assert "documents/added.pdf: not in the index" in found
    assert any(f.startswith("audit/events.jsonl: content changed") for f in found)
    assert any(f.startswith("audit/events.jsonl:1: seq") for f in found)
    # The index itself, changed: its signature no longer matches.
    index = json.loads((out / "archive.json").read_bytes())
    index["case_number"] = "(2021)苏0903执1号"
    (out / "archive.json").write_text(json.dumps(index))
    check = await verify_export(out, services.archive.sealer, None)
    assert "archive.p7s: signature does not match" in [str(f) for f in check.findings]
