"""A case exported for long-term storage, and the check of such a package, offline.

``courtlink archive export CASE --out DIR`` writes one directory::

    archive.json          the index: every other file with its size and SHA-256
    archive.p7s           detached CMS signature of archive.json by the court's seal
    case.json             the case, its detentions and its sessions, as records
    recordings/<session>/ each sealed recording directory, as it is (files, journal, manifest,
                          manifest.p7s)
    documents/<id>.json   each document's record with its steps
    documents/<id>.<ext>  its file (orders, receipts, agreements, payment proofs, uploads)
    audit/events.jsonl    the audit chain's events of the case and its sessions, whole rows
                          (seq, prev_hash, hash), so each one's hash can be recomputed
    audit/checkpoints.jsonl  the signed checkpoints from the first event up to the first that
                          covers the last one
    audit/keys.json       the audit chain's public keys, to check those signatures

Everything the index lists is bound by the court's signature on it; each recording also
carries its own seal, so a recording copied out of the package alone still verifies. The
check (``verify_export``) names every problem the way a recording's check does: a file
changed, missing or added, a signature that does not match or is not the court's, an audit
event whose hash is not its content's, a checkpoint whose signature fails.

What the extract cannot show offline: that no event of the case was left out (the chain's
links run through other cases' events). ``courtlink audit verify`` on the server shows that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from courtlink.clock import Clock, system_clock, utc
from courtlink.court.audit import AuditEvent, AuditKind, Checkpoint
from courtlink.court.auditor import Auditor
from courtlink.court.cases import Case, normalize_case_number
from courtlink.court.documents.ports import FileStore
from courtlink.court.keys import KeyRing
from courtlink.court.recordings import (
    SIGNATURE,
    Finding,
    Listed,
    RecordingCheck,
    Sealer,
    check_recording,
    compare,
    scan,
    sha256_file,
)
from courtlink.errors import Conflict, InvalidInput, NotFound
from courtlink.storage import Store

__all__ = [
    "ARCHIVE_FORMAT",
    "INDEX",
    "INDEX_SIGNATURE",
    "ExportCheck",
    "ExportReport",
    "Exporter",
    "is_export",
    "verify_export",
]

ARCHIVE_FORMAT = "courtlink-archive/1"
INDEX = "archive.json"
INDEX_SIGNATURE = "archive.p7s"
_EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}


def _plain(value: Any) -> Any:
    """Records as JSON: times in UTC ISO-8601 with Z, sets sorted, enums by value."""
    if isinstance(value, datetime):
        return utc(value).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json(value: Any) -> bytes:
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True, indent=2).encode() + b"\n"


def _jsonl(rows: list[Any]) -> bytes:
    return b"".join(
        json.dumps(_plain(r), ensure_ascii=False, sort_keys=True).encode() + b"\n" for r in rows
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@dataclass
class ExportCheck:
    """An exported package checked: every finding (empty: genuine), and what it holds."""

    directory: Path
    index: dict[str, Any] | None = None
    recordings: list[RecordingCheck] = field(default_factory=list)
    events: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class ExportReport:
    """What an export wrote, and its check right after."""

    directory: Path
    case: Case
    files: int
    bytes: int
    recordings: list[str]
    documents: list[str]
    skipped: list[str]  # recordings not sealed, hence not exported (why, in each line)
    index_sha256: str
    check: ExportCheck


def is_export(directory: Path) -> bool:
    """Does ``directory`` look like an exported package (rather than one recording)?"""
    return (directory / INDEX).exists()


class Exporter:
    """Writes a case's package (recordings, documents, records, audit extract) and checks it."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        sealer: Sealer,
        recordings: Callable[[str], Path],
        files: FileStore,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.auditor = auditor
        self.sealer = sealer
        self.recordings = recordings  # session id -> its recording directory
        self.files = files
        self.clock = clock

    async def case_of(self, reference: str) -> Case:
        """A case by id, or by its number written any way a court writes it."""
        async with self.store.read() as tx:
            try:
                return await tx.case(reference)
            except NotFound:
                pass
            try:
                number = normalize_case_number(reference)
            except InvalidInput:
                raise NotFound(f"no case {reference}") from None
            case = await tx.case_by_number(number)
        if case is None:
            raise NotFound(f"no case {reference}")
        return case

    async def export(self, reference: str, out: Path | None, *, actor: str) -> ExportReport:
        """Write the package of case ``reference`` into ``out`` (new, or an empty directory),
        then check what was written. A sealed recording that no longer matches its seal stops
        the export (``Conflict``): a package must not carry it as if it were genuine."""
        case = await self.case_of(reference)
        out = out or Path(os.getcwd(), f"archive-{case.id}")
        if not await asyncio.to_thread(_fresh, out):
            raise Conflict(f"{out} exists and is not an empty directory")
        async with self.store.read() as tx:
            detentions = await tx.detentions([case.id])
            sessions = await tx.sessions([case.id])
            documents = await tx.documents(case_ids=[case.id])
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)

        exported: list[tuple[str, str]] = []  # (session id, manifest sha256)
        skipped: list[str] = []
        for session in sorted(sessions, key=lambda s: (s.scheduled_at, s.id)):
            source = self.recordings(session.id)
            if not await asyncio.to_thread(source.is_dir):
                continue
            if not await asyncio.to_thread((source / SIGNATURE).exists):
                skipped.append(f"{session.id}: recording not sealed, not exported")
                continue
            recording = await check_recording(source, self.sealer)
            if not recording.ok or recording.manifest is None:
                raise Conflict(
                    f"the recording of session {session.id} does not verify: "
                    + "; ".join(str(f) for f in recording.findings)
                )
            await asyncio.to_thread(
                shutil.copytree, source, out / "recordings" / session.id, copy_function=shutil.copy2
            )
            exported.append((session.id, recording.manifest.sha256))

        for document in documents:
            base = out / "documents" / document.id
            await asyncio.to_thread(_write, base.with_suffix(".json"), _json(document))
            if document.sha256 is None:
                continue  # a draft not yet rendered to a file
            data = await self.files.get(document.id)
            extension = _EXTENSIONS.get(document.media_type, "bin")
            await asyncio.to_thread(_write, base.with_suffix(f".{extension}"), data)
        records = {"case": case, "detentions": detentions, "sessions": sessions}
        await asyncio.to_thread(_write, out / "case.json", _json(records))

        # The export of each recording is itself in the extract, and a checkpoint signed now
        # covers every event written so far.
        for session_id, manifest_sha256 in exported:
            await self.auditor.log(
                AuditKind.RECORDING_EXPORTED,
                actor,
                session_id=session_id,
                case_id=case.id,
                data={"manifest_sha256": manifest_sha256, "to": str(out)[:200]},
            )
        await self.auditor.checkpoint()
        events, checkpoints = await self._extract(case, [s.id for s in sessions])
        audit = out / "audit"
        await asyncio.to_thread(_write, audit / "events.jsonl", _jsonl(events))
        await asyncio.to_thread(
            _write, audit / "checkpoints.jsonl", _jsonl([c.to_json() for c in checkpoints])
        )
        await asyncio.to_thread(_write, audit / "keys.json", _json(self.auditor.keys.public_keys()))

        listed = await asyncio.to_thread(_listing, out)
        index = {
            "format": ARCHIVE_FORMAT,
            "case_id": case.id,
            "case_number": case.number,
            "exported_at": self.clock(),
            "recordings": [sid for sid, _ in exported],
            "documents": sorted(d.id for d in documents),
            "audit": {
                "events": len(events),
                "checkpoints": len(checkpoints),
                "last_seq": events[-1].seq if events else 0,
            },
            "files": [dataclasses.asdict(entry) for entry in listed],
        }
        raw = _json(index)
        await asyncio.to_thread(_write, out / INDEX, raw)
        await self.sealer.sign_to(raw, out / INDEX_SIGNATURE)
        check = await verify_export(out, self.sealer, None)
        digest = hashlib.sha256(raw).hexdigest()
        await self.auditor.log(
            AuditKind.ARCHIVE_EXPORTED,
            actor,
            case_id=case.id,
            data={
                "archive_sha256": digest,
                "files": len(listed),
                "bytes": sum(e.bytes for e in listed),
                "recordings": len(exported),
                "documents": len(documents),
                "verified": check.ok,
                "to": str(out)[:200],
            },
        )
        return ExportReport(
            directory=out,
            case=case,
            files=len(listed),
            bytes=sum(e.bytes for e in listed),
            recordings=[sid for sid, _ in exported],
            documents=[d.id for d in documents],
            skipped=skipped,
            index_sha256=digest,
            check=check,
        )

    async def _extract(
        self, case: Case, session_ids: list[str]
    ) -> tuple[list[AuditEvent], list[Checkpoint]]:
        async with self.store.read() as tx:
            found = {e.seq: e for e in await tx.audit_events(case_id=case.id)}
            for session_id in session_ids:
                for event in await tx.audit_events(session_id=session_id):
                    found[event.seq] = event
            checkpoints = await tx.checkpoints()
        events = [found[seq] for seq in sorted(found)]
        if not events:
            return [], []
        first, last = events[0].seq, events[-1].seq
        covering = [c for c in checkpoints if c.seq >= last]
        until = covering[0].seq if covering else last
        return events, [c for c in checkpoints if first <= c.seq <= until]


def _fresh(out: Path) -> bool:
    """``out`` does not exist yet, or is an empty directory."""
    return not out.exists() or (out.is_dir() and not any(out.iterdir()))


def _listing(out: Path) -> list[Listed]:
    """Every file under ``out`` but the index and its signature, sorted, with size and hash."""
    found = []
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_dir() or name in (INDEX, INDEX_SIGNATURE):
            continue
        found.append(Listed(name, path.stat().st_size, sha256_file(path)))
    return found


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


async def verify_export(directory: Path, sealer: Sealer, keys: KeyRing | None) -> ExportCheck:
    """Check an exported package: the index's signature, every file against the index (none
    missing, changed or added), each recording against its own manifest and seal, each audit
    event's hash and each checkpoint's signature (with the package's audit keys, or ``keys``)."""
    check = ExportCheck(directory)
    raw = await asyncio.to_thread(_read, directory / INDEX)
    if raw is None:
        check.findings.append(Finding(INDEX, "missing"))
        return check
    signature = await asyncio.to_thread(_read, directory / INDEX_SIGNATURE)
    if signature is None:
        check.findings.append(Finding(INDEX_SIGNATURE, "missing"))
    else:
        result = await sealer.check(raw, signature)
        if result.problem is not None:
            check.findings.append(Finding(INDEX_SIGNATURE, result.problem))
    try:
        index = json.loads(raw)
        if index.get("format") != ARCHIVE_FORMAT:
            raise ValueError("format")
        listed = [Listed(str(e["name"]), int(e["bytes"]), str(e["sha256"])) for e in index["files"]]
        recordings = [str(r) for r in index["recordings"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        check.findings.append(Finding(INDEX, f"not an index of {ARCHIVE_FORMAT}"))
        return check
    check.index = index
    present = await asyncio.to_thread(scan, directory, listed, recursive=True)
    found = compare(listed, present, frozenset({INDEX, INDEX_SIGNATURE}))
    check.findings.extend(Finding(f.name, f.problem.replace("manifest", "index")) for f in found)
    for session_id in recordings:
        if not session_id.isalnum():
            check.findings.append(Finding(INDEX, f"names a recording {session_id!r}"))
            continue
        recording = await check_recording(directory / "recordings" / session_id, sealer)
        check.recordings.append(recording)
        prefix = f"recordings/{session_id}/"
        for finding in recording.findings:
            named = Finding(prefix + finding.name, finding.problem)
            # A changed track is named once, by the index and the manifest alike.
            if named not in check.findings and not any(
                f.name == named.name for f in check.findings
            ):
                check.findings.append(named)
    await asyncio.to_thread(_check_audit, directory / "audit", keys, check)
    return check


def _check_audit(audit: Path, keys: KeyRing | None, check: ExportCheck) -> None:
    try:
        if keys is None:
            keys = KeyRing.from_public(json.loads((audit / "keys.json").read_bytes()))
        for number, line in enumerate((audit / "events.jsonl").read_bytes().splitlines(), 1):
            row = json.loads(line)
            event = AuditEvent(
                seq=int(row["seq"]),
                at=datetime.fromisoformat(row["at"]),
                kind=str(row["kind"]),
                actor=str(row["actor"]),
                session_id=row["session_id"],
                case_id=row["case_id"],
                data=row["data"],
                prev_hash=str(row["prev_hash"]),
                hash=str(row["hash"]),
            )
            check.events += 1
            if event.recomputed() != event.hash:
                check.findings.append(
                    Finding(
                        f"audit/events.jsonl:{number}", f"seq {event.seq} does not match its hash"
                    )
                )
        for number, line in enumerate((audit / "checkpoints.jsonl").read_bytes().splitlines(), 1):
            checkpoint = Checkpoint.from_json(json.loads(line))
            check.checkpoints += 1
            if not keys.verify(checkpoint.kid, checkpoint.payload(), checkpoint.signature):
                check.findings.append(
                    Finding(
                        f"audit/checkpoints.jsonl:{number}",
                        f"checkpoint seq {checkpoint.seq}: signature invalid",
                    )
                )
    except FileNotFoundError as exc:
        name = Path(str(exc.filename)).name
        if not any(f.name == f"audit/{name}" for f in check.findings):
            check.findings.append(Finding(f"audit/{name}", "missing"))
    except (ValueError, KeyError, TypeError) as exc:
        check.findings.append(Finding("audit", f"not readable ({type(exc).__name__})"))
