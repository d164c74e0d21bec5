"""What callers rely on: the Registry's public methods and their signatures (web/, signaling/,
cli/, bench/ call them; the split into parts must not show), its replaceable ports, and the
audit kinds of documents, whose strings the audit chain has hashed."""

from __future__ import annotations

import inspect

from courtlink.court.audit import AuditKind
from courtlink.court.documents.registry import Registry
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.court.documents.support import (
    InstantPrinter,
    MemoryFiles,
    RecordingNotifier,
    drafted,
    registry_on,
)
from tests.helpers import World

# name -> parameters, as callers use them.
PUBLIC = {
    "read": "(self, principal, document_id)",
    "file": "(self, principal, document_id)",
    "documents": "(self, principal, case_ids=None)",
    "find": "(self, document_id)",
    "actions": "(self, principal, documents, wanted)",
    "draft_order": "(self, principal, *, kind, detention_id, reason, days=None)",
    "approve": "(self, principal, document_id)",
    "issue": "(self, principal, document_id)",
    "officer_step": (
        "(self, principal, document_id, action, *, officer, pin, reason='', "
        "signature_png=None, at=None)"
    ),
    "draft_settlement": "(self, principal, *, case_id, terms, amount_fen, due='')",
    "sign": (
        "(self, principal, document_id, signature_png, *, officer=None, pin=None, version=None)"
    ),
    "confirm": "(self, principal, document_id)",
    "draft_transcript": "(self, principal, *, session_id, text)",
    "save_transcript": "(self, principal, document_id, text)",
    "confirm_payment": "(self, principal, *, case_id, amount_fen, note='')",
    "upload": "(self, principal, *, case_id, data, media_type, file_name)",
    "inbox": "(self, principal)",
    "received": "(self, principal, item_id, sha256)",
    "share": "(self, principal, document_id, recipients)",
    "report_overdue": "(self)",
    "reconcile": "(self)",
}


def bare(signature: inspect.Signature) -> str:
    """The signature without annotations: names, kinds and defaults."""
    parameters = [
        p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()
    ]
    return str(signature.replace(return_annotation=inspect.Signature.empty, parameters=parameters))


def test_the_registry_keeps_its_public_methods() -> None:
    methods = {
        name: bare(inspect.signature(member))
        for name, member in inspect.getmembers(Registry, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    assert methods == PUBLIC
    init = inspect.signature(Registry.__init__).parameters
    assert [(p.name, p.kind.name) for p in init.values()] == [
        ("self", "POSITIONAL_OR_KEYWORD"),
        ("store", "POSITIONAL_OR_KEYWORD"),
        ("auditor", "POSITIONAL_OR_KEYWORD"),
        ("clerk", "POSITIONAL_OR_KEYWORD"),
        ("printer", "POSITIONAL_OR_KEYWORD"),
        ("files", "POSITIONAL_OR_KEYWORD"),
        ("notifier", "KEYWORD_ONLY"),
        ("rules", "KEYWORD_ONLY"),
        ("clock", "KEYWORD_ONLY"),
    ]


async def test_replacing_a_port_reaches_every_part(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    printer, files, notifier = InstantPrinter(), MemoryFiles(), RecordingNotifier()
    registry.printer, registry.files, registry.notifier = printer, files, notifier
    assert (registry.printer, registry.files, registry.notifier) == (printer, files, notifier)
    document = await drafted(registry, world)
    assert [d.id for d, _ in notifier.told.changed] == [document.id]


# The strings as the chain has them: never change one (audit verify would then find documents
# whose last event it cannot see, and old events would read differently).
DOCUMENT_KINDS = {
    "DETENTION_CHANGED": "detention.changed",
    "DOCUMENT_DRAFTED": "document.drafted",
    "DOCUMENT_APPROVED": "document.approved",
    "DOCUMENT_ISSUED": "document.issued",
    "DOCUMENT_FETCHED": "document.fetched",
    "DOCUMENT_DELIVERED": "document.delivered",
    "DOCUMENT_ACKNOWLEDGED": "document.acknowledged",
    "DOCUMENT_SERVED": "document.served",
    "DOCUMENT_EXECUTED": "document.executed",
    "DOCUMENT_REFUSED": "document.refused",
    "DOCUMENT_SIGNED": "document.signed",
    "DOCUMENT_CONFIRMED": "document.confirmed",
    "DOCUMENT_PAYMENT_CONFIRMED": "document.payment_confirmed",
    "DOCUMENT_UPLOADED": "document.uploaded",
    "DOCUMENT_SHARED": "document.shared",
    "DOCUMENT_OVERDUE": "document.overdue",
    "DOCUMENT_RECEIPT_ISSUED": "document.receipt_issued",
    "DOCUMENT_TRANSCRIPT_SAVED": "document.transcript_saved",
}


def test_document_audit_kinds_keep_their_strings() -> None:
    members = {m.name: m.value for m in AuditKind if m.name in DOCUMENT_KINDS}
    assert members == DOCUMENT_KINDS
    assert {m.name for m in AuditKind if m.value.startswith("document.")} == {
        name for name in DOCUMENT_KINDS if name.startswith("DOCUMENT_")
    }


async def test_the_chain_stores_the_plain_string(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    document = await drafted(registry, world)
    async with registry.store.read() as tx:
        kinds = [e.kind async for e in tx.stream_audit() if e.data.get("document") == document.id]
    assert kinds == ["document.drafted"]
    assert all(type(kind) is str for kind in kinds)
