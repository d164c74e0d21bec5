"""A Registry on the built world's database with in-memory ports: a printer that renders
instantly, files kept in a dict, a notifier that remembers what it was told (and, when asked,
what the database said at that moment)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from courtlink.court.audit import AuditEvent
from courtlink.court.documents.lifecycle import DocKind, Document, InboxItem
from courtlink.court.documents.registry import Registry
from courtlink.court.policy import AccountPrincipal
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.helpers import World


class InstantPrinter:
    """A Printer: a few bytes naming the document, 'sealed' with a test key."""

    def __init__(self) -> None:
        self.printed: list[tuple[str, str]] = []  # (template, document id)

    async def print(
        self, template: str, context: dict[str, Any], *, document_id: str, seal: bool = True
    ) -> tuple[bytes, str | None]:
        self.printed.append((template, document_id))
        return f"%PDF-test {template} {document_id}".encode(), "test-key" if seal else None


class MemoryFiles:
    """A FileStore in a dict."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, document_id: str, data: bytes) -> None:
        self.files[document_id] = data

    async def get(self, document_id: str) -> bytes:
        return self.files[document_id]


@dataclass
class Told:
    """What the notifier heard."""

    changed: list[tuple[Document, list[str]]] = field(default_factory=list)
    delivered: list[tuple[InboxItem, Document]] = field(default_factory=list)


class RecordingNotifier:
    """A Notifier remembering every call."""

    def __init__(self) -> None:
        self.told = Told()

    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        self.told.changed.append((document, list(recipients)))

    async def delivered(self, item: InboxItem, document: Document) -> None:
        self.told.delivered.append((item, document))

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        return None


def registry_on(services: Services, clock: MovableClock) -> Registry:
    """A Registry on ``services``' database, with the in-memory ports above."""
    return Registry(
        services.store,
        services.auditor,
        services.clerk,
        InstantPrinter(),
        MemoryFiles(),
        notifier=RecordingNotifier(),
        clock=clock,
    )


def told(registry: Registry) -> Told:
    """What the registry's recording notifier heard."""
    notifier = registry.notifier
    assert isinstance(notifier, RecordingNotifier)
    return notifier.told


async def drafted(registry: Registry, world: World) -> Document:
    """A renewal order, drafted by the case's judge."""
    return await registry.draft_order(
        AccountPrincipal(world.judge),
        kind=DocKind.RENEWAL,
        detention_id=world.detention.id,
        reason="仍拒不履行",
        days=5,
    )


async def events(registry: Registry) -> list[AuditEvent]:
    """The whole audit chain."""
    async with registry.store.read() as tx:
        return [e async for e in tx.stream_audit()]
