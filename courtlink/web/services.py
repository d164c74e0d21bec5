"""Opening the records side of Courtlink (database, keys, audit writer, Clerk, Gate) from
settings. The app's cleanup context and the CLI both use this, so they build the same things."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from argon2 import PasswordHasher

from courtlink.clock import Clock, system_clock
from courtlink.config import Settings
from courtlink.court.auditor import Auditor
from courtlink.court.clerk import Clerk, ClerkRules
from courtlink.court.documents.registry import Registry, RegistryRules
from courtlink.court.gate import Gate, GateRules
from courtlink.court.hashing import SecretHasher
from courtlink.court.invites import InviteSigner
from courtlink.court.keys import KeyRing, load_or_create_secret
from courtlink.court.recordings import Archive
from courtlink.errors import CourtlinkError
from courtlink.papers import CourtSeal, DocumentPrinter, FileStore
from courtlink.papers.manifest_seal import CmsSeal
from courtlink.storage import Store

__all__ = ["Services", "open_services"]


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    keys: KeyRing
    auditor: Auditor
    clerk: Clerk
    gate: Gate
    registry: Registry
    seal: CourtSeal
    files: FileStore
    archive: Archive


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    hasher: SecretHasher | None = None,
    migrate: bool = True,
    checkpoint_on_close: bool = True,
) -> AsyncIterator[Services]:
    """Open everything; on exit sign a final audit checkpoint (unless told not to: a verifier
    must never sign what it may just have found broken) and close the database."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    secret = load_or_create_secret(settings.secret_key_path)
    keys = KeyRing.load_or_create(data / "keys" / "audit")
    store = Store(settings.database_url, echo=settings.database.echo)
    await store.open(migrate=migrate)
    hasher = hasher or SecretHasher(PasswordHasher())
    auditor = Auditor(
        store,
        keys,
        data / "audit" / "checkpoints.jsonl",
        every=settings.audit.checkpoint_every,
        seconds=settings.audit.checkpoint_seconds,
        clock=clock,
    )
    clerk = Clerk(
        store,
        auditor,
        InviteSigner(secret, clock),
        hasher,
        ClerkRules(
            max_period_days=settings.detention.max_period_days,
            invite_ttl_hours=settings.security.invite_ttl_hours,
            lobby_by_default=settings.sessions.lobby_by_default,
            record_by_default=settings.sessions.record_by_default,
        ),
        clock,
    )
    gate = Gate(
        store,
        auditor,
        hasher,
        GateRules(
            session_hours=settings.security.account_session_hours,
            max_failures=settings.security.login_max_failures,
            window_seconds=settings.security.login_window_seconds,
        ),
        clock,
    )
    seal = CourtSeal.load_or_create(data / "keys" / "court", settings.documents.court_name)
    files = FileStore(data / "documents")
    registry = Registry(
        store,
        auditor,
        clerk,
        DocumentPrinter(seal, settings.public_url),
        files,
        rules=RegistryRules(
            max_period_days=settings.detention.max_period_days,
            ack_timeout_seconds=settings.documents.ack_timeout_minutes * 60,
            max_upload_bytes=settings.documents.max_upload_mb * 1024 * 1024,
        ),
        clock=clock,
    )
    archive = Archive(
        store,
        auditor,
        CmsSeal(seal),
        settings.recordings_dir,
        files,
        retention_days=settings.recording.retention_days,
        clock=clock,
    )
    try:
        yield Services(settings, store, keys, auditor, clerk, gate, registry, seal, files, archive)
    finally:
        try:
            if checkpoint_on_close:
                with contextlib.suppress(CourtlinkError, OSError):
                    await auditor.checkpoint()
        finally:
            await store.close()
