"""Recorded sessions as records of the court: the manifest, its seal, verification, retention.

A recorded session leaves a directory ``<recordings_dir>/<session_id>/`` (the recorder in
media/ writes it; the layout is the contract of issue 10): one WebM/Matroska file per seat and
kind, ``journal.jsonl``, and ``manifest.json``, which lists every file with its size and
SHA-256. Sealing adds ``manifest.p7s``, a detached CMS signature of manifest.json's exact bytes
by the court's seal (papers/manifest_seal.py behind the ``Sealer`` port), and enters
``recording.sealed`` in the audit chain with the manifest's SHA-256. From then on a directory is
genuine when every listed file is present with its size and hash, nothing else is there but the
journal, the manifest and its signature, and the signature is the court's. That check is pure
(``compare``) over what ``scan`` read from disk, so the server and ``courtlink verify`` offline
say the same thing in the same words.

The ``Archive`` is the service: it seals what the recorder finished, lists a case's recordings
and hands out their files to the case's judge and approvers (policy ``RECORDING_READ``), and
deletes recordings past the retention period, each deletion audited before it happens.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from courtlink.clock import Clock, system_clock, utc
from courtlink.court.audit import AuditKind
from courtlink.court.auditor import Auditor
from courtlink.court.documents.ports import FileStore
from courtlink.court.policy import Action, Principal, authorize
from courtlink.court.seats import Seat
from courtlink.court.sessions import Session
from courtlink.errors import Conflict, CourtlinkError, InvalidInput, NotFound
from courtlink.storage import Store

if TYPE_CHECKING:
    from courtlink.court.export import ExportReport

__all__ = [
    "JOURNAL",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "RECORDING_EXTRAS",
    "SIGNATURE",
    "SWEEP_ACTOR",
    "Archive",
    "Finding",
    "Listed",
    "Manifest",
    "ManifestError",
    "ManifestFile",
    "Observed",
    "Recording",
    "RecordingCheck",
    "Sealer",
    "SignatureCheck",
    "SweepReport",
    "check_recording",
    "compare",
    "listing_of",
    "parse_manifest",
    "scan",
    "sha256_file",
]

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "courtlink-recording/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.p7s"
JOURNAL = "journal.jsonl"
# The files of a recording directory that the manifest does not list (it cannot list itself).
RECORDING_EXTRAS = frozenset({JOURNAL, MANIFEST, SIGNATURE})
STOP_REASONS = frozenset({"ended", "disk_full", "failed", "recovered_after_crash"})
# Which codec each kind may carry, and the container it goes in (contract of issue 10).
CONTAINERS = {("audio", "opus"): "webm", ("video", "vp8"): "webm", ("video", "h264"): "mkv"}
SWEEP_ACTOR = "system"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class ManifestError(InvalidInput):
    """manifest.json is not a manifest of this format (the message says what is wrong)."""


# The manifest ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One recorded track: a seat's audio or video, on the session clock."""

    name: str
    seat: Seat
    kind: str  # "audio" | "video"
    codec: str  # "opus" | "vp8" | "h264"
    started_at: datetime
    offset_seconds: float
    duration_seconds: float
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """manifest.json, parsed; ``raw`` is the exact bytes the seal signs, ``sha256`` their hash
    (what the audit chain records)."""

    session_id: str
    case_id: str
    case_number: str
    started_at: datetime
    ended_at: datetime | None
    complete: bool
    stopped_because: str
    files: tuple[ManifestFile, ...]
    raw: bytes = field(repr=False)
    sha256: str

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def file(self, name: str) -> ManifestFile | None:
        return next((f for f in self.files if f.name == name), None)


_TOP_KEYS = frozenset(
    {
        "format",
        "session_id",
        "case_id",
        "case_number",
        "started_at",
        "ended_at",
        "complete",
        "stopped_because",
        "files",
    }
)
_FILE_KEYS = frozenset(
    {
        "name",
        "seat",
        "kind",
        "codec",
        "started_at",
        "offset_seconds",
        "duration_seconds",
        "bytes",
        "sha256",
    }
)


def _keys(obj: Any, expected: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where} is not an object")
    missing = expected - obj.keys()
    extra = obj.keys() - expected
    if missing:
        raise ManifestError(f"{where} lacks {', '.join(sorted(missing))}")
    if extra:
        raise ManifestError(f"{where} has unknown keys {', '.join(sorted(extra))}")
    return obj


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where} is not a non-empty string")
    return value


def _time(value: Any, where: str) -> datetime:
    text = _text(value, where)
    if not text.endswith("Z"):
        raise ManifestError(f"{where} is not a UTC time ending in Z")
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise ManifestError(f"{where} is not an ISO-8601 time") from None


def _seconds(value: Any, where: str) -> float:
    # bool is an int in Python: refuse it explicitly, a flag is not a duration.
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ManifestError(f"{where} is not a number of seconds >= 0")
    return float(value)


def _file(obj: Any, index: int) -> ManifestFile:
    where = f"files[{index}]"
    entry = _keys(obj, _FILE_KEYS, where)
    name = _text(entry["name"], f"{where}.name")
    try:
        seat = Seat(_text(entry["seat"], f"{where}.seat"))
    except ValueError:
        raise ManifestError(f"{where}.seat is not a seat") from None
    kind = _text(entry["kind"], f"{where}.kind")
    codec = _text(entry["codec"], f"{where}.codec")
    container = CONTAINERS.get((kind, codec))
    if container is None:
        raise ManifestError(f"{where}: {kind} in {codec} is not recorded")
    # The name is derived, never free: no path, no dot-dot, nothing the directory does not hold.
    if name != f"{seat}.{kind}.{container}":
        raise ManifestError(f"{where}.name {name!r} is not {seat}.{kind}.{container}")
    size = entry["bytes"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"{where}.bytes is not a size")
    digest = _text(entry["sha256"], f"{where}.sha256")
    if not _SHA256.match(digest):
        raise ManifestError(f"{where}.sha256 is not a lowercase hex SHA-256")
    return ManifestFile(
        name=name,
        seat=seat,
        kind=kind,
        codec=codec,
        started_at=_time(entry["started_at"], f"{where}.started_at"),
        offset_seconds=_seconds(entry["offset_seconds"], f"{where}.offset_seconds"),
        duration_seconds=_seconds(entry["duration_seconds"], f"{where}.duration_seconds"),
        bytes=size,
        sha256=digest,
    )


def parse_manifest(raw: bytes) -> Manifest:
    """manifest.json's bytes, checked strictly against the format (unknown or missing keys,
    wrong types, a file name that is not ``<seat>.<kind>.<container>``, names out of order or
    twice: all refused with ``ManifestError``)."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ManifestError("not UTF-8 JSON") from None
    top = _keys(obj, _TOP_KEYS, "the manifest")
    if top["format"] != MANIFEST_FORMAT:
        raise ManifestError(f"format is not {MANIFEST_FORMAT}")
    session_id = _text(top["session_id"], "session_id")
    if not session_id.isalnum():
        raise ManifestError("session_id is not an id")
    if not isinstance(top["complete"], bool):
        raise ManifestError("complete is not true or false")
    if top["stopped_because"] not in STOP_REASONS:
        raise ManifestError("stopped_because is not one of " + ", ".join(sorted(STOP_REASONS)))
    if not isinstance(top["files"], list):
        raise ManifestError("files is not a list")
    files = tuple(_file(entry, i) for i, entry in enumerate(top["files"]))
    names = [f.name for f in files]
    if names != sorted(set(names)):
        raise ManifestError("files are not sorted by name, or a name is listed twice")
    return Manifest(
        session_id=session_id,
        case_id=_text(top["case_id"], "case_id"),
        case_number=_text(top["case_number"], "case_number"),
        started_at=_time(top["started_at"], "started_at"),
        ended_at=None if top["ended_at"] is None else _time(top["ended_at"], "ended_at"),
        complete=top["complete"],
        stopped_because=top["stopped_because"],
        files=files,
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


# Verification ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """One entry of a directory as found on disk. ``sha256`` is None when it was not worth
    hashing (a directory, or a size that already differs from the listed one)."""

    bytes: int
    sha256: str | None
    is_file: bool = True


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong, named: ``judge.video.webm: content changed``."""

    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Listed:
    """What a listing (a manifest, an archive's index) says one file is."""

    name: str
    bytes: int
    sha256: str


def compare(
    listed: Iterable[Listed], present: Mapping[str, Observed], extras: frozenset[str]
) -> list[Finding]:
    """Every difference between what is listed and what is present, by name: a listed file
    missing or changed, a present entry that is neither listed nor one of ``extras``."""
    findings: list[Finding] = []
    names: set[str] = set()
    for entry in listed:
        names.add(entry.name)
        seen = present.get(entry.name)
        if seen is None or not seen.is_file:
            findings.append(Finding(entry.name, "missing"))
        elif seen.bytes != entry.bytes:
            findings.append(
                Finding(
                    entry.name,
                    f"content changed ({seen.bytes} bytes, the listing says {entry.bytes})",
                )
            )
        elif seen.sha256 != entry.sha256:
            findings.append(Finding(entry.name, "content changed"))
    for name in sorted(present.keys() - names - extras):
        findings.append(Finding(name, "not in the manifest"))
    return findings


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan(
    directory: Path, listed: Iterable[Listed], *, recursive: bool = False
) -> dict[str, Observed]:
    """What ``directory`` holds, by name (``recursive``: by path relative to it, with ``/``),
    hashing only the listed files whose size matches (synchronous; run it in a thread).
    Symbolic links count as present but are never followed."""
    expected = {entry.name: entry.bytes for entry in listed}
    found: dict[str, Observed] = {}
    paths = sorted(directory.rglob("*")) if recursive else sorted(directory.iterdir())
    for path in paths:
        name = path.relative_to(directory).as_posix()
        if path.is_symlink() or not path.is_file():
            if recursive and path.is_dir() and not path.is_symlink():
                continue  # its files are listed on their own
            found[name] = Observed(0, None, is_file=False)
            continue
        size = path.stat().st_size
        digest = sha256_file(path) if expected.get(name) == size else None
        found[name] = Observed(size, digest)
    return found


def listing_of(manifest: Manifest) -> list[Listed]:
    return [Listed(f.name, f.bytes, f.sha256) for f in manifest.files]


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """A detached signature checked: by which court key (``kid``), when it says it was made,
    and the problem, None when it is the court's signature of exactly these bytes."""

    kid: str | None = None
    signed_at: datetime | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class Sealer(Protocol):
    """Detached signatures by the court's seal (papers/manifest_seal.py, CMS/PKCS#7)."""

    async def sign_to(self, data: bytes, path: Path) -> str:
        """Sign ``data``; write the signature durably to ``path``; the signing key's id."""

    async def check(self, data: bytes, signature: bytes) -> SignatureCheck:
        """Is ``signature`` the court's signature of exactly ``data``?"""


@dataclass
class RecordingCheck:
    """A recording directory checked: every finding, and what was read."""

    directory: Path
    manifest: Manifest | None = None
    signature: SignatureCheck | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


async def check_recording(directory: Path, sealer: Sealer) -> RecordingCheck:
    """Check a sealed recording directory against its manifest and the manifest against its
    signature; every problem becomes a finding (the signature first, then the files)."""
    check = RecordingCheck(directory)
    if not await asyncio.to_thread(directory.is_dir):
        check.findings.append(Finding(str(directory), "not a directory"))
        return check
    raw = await asyncio.to_thread(_read, directory / MANIFEST)
    if raw is None:
        check.findings.append(Finding(MANIFEST, "missing"))
        return check
    signature = await asyncio.to_thread(_read, directory / SIGNATURE)
    if signature is None:
        check.findings.append(Finding(SIGNATURE, "missing (the recording was never sealed)"))
    else:
        check.signature = await sealer.check(raw, signature)
        if check.signature.problem is not None:
            check.findings.append(Finding(SIGNATURE, check.signature.problem))
    try:
        check.manifest = parse_manifest(raw)
    except ManifestError as exc:
        check.findings.append(Finding(MANIFEST, f"not a valid manifest ({exc.message})"))
        return check
    listed = listing_of(check.manifest)
    present = await asyncio.to_thread(scan, directory, listed)
    check.findings.extend(compare(listed, present, RECORDING_EXTRAS))
    return check


# The service -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded session of a case, as the case's page lists it. ``manifest`` is None while
    the recording runs (the recorder writes it when it stops) or when it cannot be read
    (``problem`` says why); ``sealed``: manifest.p7s is there (``Archive.check`` verifies)."""

    session: Session
    manifest: Manifest | None
    sealed: bool
    problem: str | None = None


@dataclass
class SweepReport:
    """What one retention sweep did: sessions whose recordings were deleted, those it failed
    to delete (with the reason; each audited), and how many it kept."""

    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    kept: int = 0


class Archive:
    """The recordings of sessions: sealing, listing, files for playback, retention."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        sealer: Sealer,
        directory: Path,
        files: FileStore,
        *,
        retention_days: int = 0,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.auditor = auditor
        self.sealer = sealer
        self.directory = directory
        self.files = files  # the documents' files, which an export packs with the recordings
        self.retention_days = retention_days
        self.clock = clock

    def path(self, session_id: str) -> Path:
        """The recording directory of a session (whether or not it exists)."""
        if not session_id.isalnum():
            raise NotFound("no such session")
        return self.directory / session_id

    # Sealing --------------------------------------------------------------------------

    async def seal(self, session_id: str, directory: Path | None = None) -> Manifest:
        """Seal the recording the recorder finished in ``directory`` (by default the session's
        own): its manifest must be this session's and match every file exactly; then papers
        writes manifest.p7s and the chain gets ``recording.sealed``. Sealing a directory
        already sealed with these very bytes does nothing and returns its manifest. A
        recording that does not match its manifest is not sealed: ``recording.seal_refused``
        is audited with the findings, and ``Conflict`` raised."""
        directory = directory or self.path(session_id)
        raw = await asyncio.to_thread(_read, directory / MANIFEST)
        if raw is None:
            raise NotFound(f"{directory}: no {MANIFEST}")
        async with self.store.read() as tx:
            session = await tx.session(session_id)
        try:
            manifest = parse_manifest(raw)
        except ManifestError as exc:
            await self._refused(session, [Finding(MANIFEST, exc.message)])
            raise
        findings: list[Finding] = []
        if manifest.session_id != session.id or manifest.case_id != session.case_id:
            findings.append(Finding(MANIFEST, "names another session or case"))
        listed = listing_of(manifest)
        present = await asyncio.to_thread(scan, directory, listed)
        findings.extend(compare(listed, present, RECORDING_EXTRAS))
        if findings:
            await self._refused(session, findings)
            raise Conflict(
                f"recording of session {session_id} not sealed: "
                + "; ".join(str(f) for f in findings)
            )
        signature = await asyncio.to_thread(_read, directory / SIGNATURE)
        if signature is not None and (await self.sealer.check(raw, signature)).ok:
            return manifest
        kid = await self.sealer.sign_to(raw, directory / SIGNATURE)
        try:
            await self.auditor.log(
                AuditKind.RECORDING_SEALED,
                SWEEP_ACTOR,
                session_id=session.id,
                case_id=session.case_id,
                data={
                    "manifest_sha256": manifest.sha256,
                    "files": len(manifest.files),
                    "bytes": manifest.total_bytes,
                    "complete": manifest.complete,
                    "stopped_because": manifest.stopped_because,
                    "kid": kid,
                },
            )
        except BaseException:
            # Not in the chain, so not sealed: a signature nobody recorded must not stay.
            (directory / SIGNATURE).unlink(missing_ok=True)
            raise
        return manifest

    async def _refused(self, session: Session, findings: list[Finding]) -> None:
        await self.auditor.log(
            AuditKind.RECORDING_SEAL_REFUSED,
            SWEEP_ACTOR,
            session_id=session.id,
            case_id=session.case_id,
            data={"findings": [str(f) for f in findings][:50]},
        )

    # Reading (the case's judge and approvers) -------------------------------------------

    async def _authorized(self, principal: Principal, session_id: str) -> Session:
        async with self.store.read() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
        authorize(principal, Action.RECORDING_READ, case=case, session_id=session.id)
        return session

    async def recordings(self, principal: Principal, case_id: str) -> list[Recording]:
        """The recorded sessions of a case that left a directory, oldest first."""
        async with self.store.read() as tx:
            case = await tx.case(case_id)
            sessions = await tx.sessions([case_id])
        authorize(principal, Action.RECORDING_READ, case=case)
        found = []
        for session in sorted(sessions, key=lambda s: (s.scheduled_at, s.id)):
            directory = self.path(session.id)
            if not await asyncio.to_thread(directory.is_dir):
                continue
            found.append(await self._recording(session, directory))
        return found

    async def _recording(self, session: Session, directory: Path) -> Recording:
        raw = await asyncio.to_thread(_read, directory / MANIFEST)
        sealed = await asyncio.to_thread((directory / SIGNATURE).exists)
        if raw is None:
            return Recording(session, None, sealed)
        try:
            return Recording(session, parse_manifest(raw), sealed)
        except ManifestError as exc:
            return Recording(session, None, sealed, problem=exc.message)

    async def recording(self, principal: Principal, session_id: str) -> Recording:
        """One recorded session with its manifest and whether it is sealed (``NotFound`` while
        it has no finished recording)."""
        session = await self._authorized(principal, session_id)
        raw = await asyncio.to_thread(_read, self.path(session.id) / MANIFEST)
        if raw is None:
            raise NotFound("this session has no finished recording")
        sealed = await asyncio.to_thread((self.path(session.id) / SIGNATURE).exists)
        return Recording(session, parse_manifest(raw), sealed)

    async def manifest(self, principal: Principal, session_id: str) -> Manifest:
        """A recorded session's manifest (``NotFound`` while it has none)."""
        found = await self.recording(principal, session_id)
        assert found.manifest is not None
        return found.manifest

    async def file(self, principal: Principal, session_id: str, name: str) -> Path:
        """The path of one recorded file, for playback: only a name the manifest lists, and
        only a regular file inside the session's directory (never a link out of it)."""
        manifest = await self.manifest(principal, session_id)
        if name not in manifest.names:
            raise NotFound("no such file in this recording")
        directory = self.path(session_id)
        path = directory / name
        if path.is_symlink() or not path.is_file() or path.resolve().parent != directory.resolve():
            raise NotFound("the recorded file is missing")
        return path

    async def check(self, principal: Principal, session_id: str) -> RecordingCheck:
        """Verify a session's recording now (files, manifest, seal)."""
        session = await self._authorized(principal, session_id)
        return await check_recording(self.path(session.id), self.sealer)

    # Export ---------------------------------------------------------------------------

    async def export(
        self, case: str, out: Path | None = None, *, actor: str = "operator"
    ) -> ExportReport:
        """Write case ``case`` (id or number) as one package into ``out`` (default
        ``./archive-<case id>``) and check it (court/export.py); ``actor`` is who the audit
        chain names (the CLI: the operator)."""
        # Imported here: the package is built of recordings, so export.py imports this module.
        from courtlink.court.export import Exporter

        exporter = Exporter(
            self.store, self.auditor, self.sealer, self.path, self.files, self.clock
        )
        return await exporter.export(case, out, actor=actor)

    # Retention --------------------------------------------------------------------------

    async def sweep(self, now: datetime) -> SweepReport:
        """Delete every recording that ended more than ``retention_days`` before ``now``
        (0: keep everything). Each deletion is audited (``recording.deleted``, with the
        manifest's hash) *before* the files go; a deletion that fails is logged and audited
        (``recording.delete_failed``) and tried again at the next sweep, never skipped
        silently. A directory without a readable manifest is aged by its newest file."""
        report = SweepReport()
        if self.retention_days <= 0:
            return report
        cutoff = utc(now) - timedelta(days=self.retention_days)
        entries = await asyncio.to_thread(_entries, self.directory)
        for path in entries:
            if path.name.startswith(".deleting-"):
                # A deletion audited before but not finished (it failed, or the server died).
                await self._remove(path, path.name.removeprefix(".deleting-"), None, report)
                continue
            if path.name.startswith(".") or not path.name.isalnum():
                continue
            age, manifest = await asyncio.to_thread(_age, path)
            if age is None or age >= cutoff:
                report.kept += 1
                continue
            await self.auditor.log(
                AuditKind.RECORDING_DELETED,
                SWEEP_ACTOR,
                session_id=path.name,
                case_id=manifest.case_id if manifest else None,
                data={
                    "manifest_sha256": manifest.sha256 if manifest else None,
                    "files": len(manifest.files) if manifest else None,
                    "bytes": manifest.total_bytes if manifest else None,
                    "sealed": (path / SIGNATURE).exists(),
                    "reason": "retention",
                    "retention_days": self.retention_days,
                    "ended_at": age.isoformat(),
                },
            )
            await self._remove(path, path.name, manifest, report)
        return report

    async def _remove(
        self, path: Path, session_id: str, manifest: Manifest | None, report: SweepReport
    ) -> None:
        try:
            await asyncio.to_thread(_delete, path, self.directory / f".deleting-{session_id}")
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("recording of session %s not deleted: %s", session_id, reason)
            report.failed.append((session_id, reason))
            try:
                await self.auditor.log(
                    AuditKind.RECORDING_DELETE_FAILED,
                    SWEEP_ACTOR,
                    session_id=session_id,
                    case_id=manifest.case_id if manifest else None,
                    data={"error": reason[:500]},
                )
            except CourtlinkError:
                log.exception("could not audit the failed deletion of %s", session_id)
            return
        report.deleted.append(session_id)


def _entries(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())


def _age(directory: Path) -> tuple[datetime | None, Manifest | None]:
    """When a recording ended (its manifest, else its newest file); None for an empty one."""
    raw = _read(directory / MANIFEST)
    if raw is not None:
        try:
            manifest = parse_manifest(raw)
        except ManifestError:
            pass
        else:
            return manifest.ended_at or manifest.started_at, manifest
    times = [p.stat().st_mtime for p in directory.iterdir()]
    if not times:
        times = [directory.stat().st_mtime]
    return datetime.fromtimestamp(max(times), UTC), None


def _delete(path: Path, tombstone: Path) -> None:
    """Rename first (a half-deleted directory never looks like a recording), then remove."""
    if path != tombstone:
        os.replace(path, tombstone)
    shutil.rmtree(tombstone)
