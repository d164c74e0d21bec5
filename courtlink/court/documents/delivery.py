"""Delivery: who holds which document, and proof that it arrived intact.

A document reaches its recipients as inbox items. A recipient's client fetches the file and
reports its SHA-256 (``received``): a match marks the item fetched, and for an issued order that
is its delivery (a receipt is sealed, the order becomes ``delivered``). The judge sends documents
on to more inboxes (``share``); orders nobody at the detention center acknowledged in time are
reported to the judge (``report_overdue``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from courtlink.court.audit import AuditKind
from courtlink.court.documents.desk import Desk
from courtlink.court.documents.lifecycle import (
    ORDER_KINDS,
    DocAction,
    DocState,
    Document,
    InboxItem,
)
from courtlink.court.documents.receipts import Printed, advance, print_receipt
from courtlink.court.documents.steps import (
    DocumentScene,
    PlainDocumentStep,
    Step,
    Written,
)
from courtlink.court.policy import Principal, Who, check_shares
from courtlink.errors import Conflict, Forbidden, InvalidInput
from courtlink.storage import Records

__all__ = ["Delivery"]


class Delivery:
    """Inboxes, fetching, sending on, and the overdue watch."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def inbox(self, principal: Principal) -> list[tuple[InboxItem, Document]]:
        """The items in the inboxes ``principal`` reads, with their documents."""
        async with self.desk.store.read() as tx:
            recipients = await self.desk.inboxes(tx, principal)
            items = await tx.items(recipients=recipients)
            return [(item, await tx.document(item.document_id)) for item in items]

    async def received(self, principal: Principal, item_id: str, sha256: str) -> InboxItem:
        """The recipient's client fetched the file and computed its hash. A match marks the item
        received; for an order at a terminal (or the officer's seat) it is the delivery."""
        step = _Received(principal=principal, item_id=item_id, sha256=sha256.strip().lower())
        written = await step.run(self.desk)
        assert written.item is not None
        return written.item

    async def share(
        self, principal: Principal, document_id: str, recipients: Sequence[str]
    ) -> list[InboxItem]:
        """The judge sends an existing document (an upload, a receipt) to more inboxes."""
        step = _Share(principal=principal, document_id=document_id, recipients=tuple(recipients))
        return list((await step.run(self.desk)).items)

    async def report_overdue(self) -> list[InboxItem]:
        """Orders delivered to the detention center and not acknowledged in time: tell the
        judge (once per item) and record it."""
        desk = self.desk
        now = desk.clock()
        async with desk.store.write() as tx:
            due = await tx.overdue_items(now - timedelta(seconds=desk.rules.ack_timeout_seconds))
            reported = []
            for item in due:
                document = await tx.document(item.document_id)
                case = await tx.case(document.case_id)
                await tx.mark_item(item.id, alerted_at=now)
                await desk.audit(
                    tx,
                    Who.system(),
                    AuditKind.DOCUMENT_OVERDUE,
                    document,
                    item=item.id,
                    recipient=item.recipient,
                )
                reported.append((item, document, case.judge_id))
        for item, document, judge_id in reported:
            await desk.notifier.overdue(item, document, judge_id)
        return [item for item, _, _ in reported]


@dataclass(frozen=True, slots=True, kw_only=True)
class _FetchScene(DocumentScene):
    item: InboxItem


@dataclass(frozen=True, kw_only=True)
class _Received(Step[_FetchScene, Printed | None]):
    """Prepared: the delivery receipt, when this fetch delivers an issued order."""

    principal: Principal
    item_id: str
    sha256: str

    async def load(self, desk: Desk, tx: Records) -> _FetchScene:
        item = await tx.item(self.item_id)
        if item.recipient not in await desk.inboxes(tx, self.principal):
            raise Forbidden("this item is in another inbox")
        document, case, detention = await desk.context(tx, item.document_id)
        who = Who.fetching(item.recipient)
        return _FetchScene(case=case, detention=detention, who=who, document=document, item=item)

    def allowed(self, scene: _FetchScene) -> DocState:
        # Holding the item is the right to fetch it; what is checked is the file.
        if scene.document.sha256 is None or self.sha256 != scene.document.sha256:
            raise InvalidInput(
                "the file's hash does not match the document; fetch it again", code="hash_mismatch"
            )
        return scene.document.state

    async def prepare(
        self, desk: Desk, scene: _FetchScene, state: DocState, now: datetime
    ) -> Printed | None:
        document = scene.document
        if document.kind not in ORDER_KINDS or document.state is not DocState.ISSUED:
            return None
        assert scene.detention is not None
        return await print_receipt(
            desk,
            document,
            scene.case,
            scene.detention,
            DocAction.DELIVER,
            now,
            who_name=scene.item.recipient,
            extra={},
        )

    async def lock(self, tx: Records, scene: _FetchScene) -> _FetchScene:
        """The document as it is now: another recipient may have delivered it meanwhile (all
        terminals of a center fetch at once), which is no conflict, and the audit event must
        record the row's present state, or reconcile would take the row for an edited one.
        Only another file is a conflict of a fetch."""
        current = await tx.document(scene.document.id, for_update=True)
        if current.sha256 != self.sha256:
            raise InvalidInput(
                "the document's file changed meanwhile; fetch it again", code="hash_mismatch"
            )
        return replace(scene, document=current)

    async def write(
        self, desk: Desk, tx: Records, scene: _FetchScene, prepared: Printed | None, now: datetime
    ) -> Written:
        current, item = scene.document, scene.item
        await tx.mark_item(item.id, fetched_at=now)
        await desk.audit(
            tx,
            scene.who,
            AuditKind.DOCUMENT_FETCHED,
            current,
            item=item.id,
            recipient=item.recipient,
        )
        updated = current
        # The first fetch delivers; a later one (the order moved on meanwhile) only fetches.
        if prepared is not None and current.state is DocState.ISSUED:
            updated = await advance(
                desk,
                tx,
                current,
                scene.case,
                DocAction.DELIVER,
                scene.who,
                now,
                prepared,
                {"recipient": item.recipient},
            )
        fetched = replace(item, fetched_at=now)
        return Written(updated, changed=updated is not current, item=fetched)


@dataclass(frozen=True, kw_only=True)
class _Share(PlainDocumentStep[None]):
    recipients: tuple[str, ...]

    def allowed(self, scene: DocumentScene) -> DocState:
        check_shares(scene.who)
        if scene.document.sha256 is None:
            raise Conflict("this document has no file yet")
        allowed_prefixes = (f"seat:{scene.case.id}:", "terminal:")
        if any(not r.startswith(allowed_prefixes) for r in self.recipients):
            raise InvalidInput("recipients: seats of this case or terminals")
        return scene.document.state

    async def prepare(
        self, desk: Desk, scene: DocumentScene, state: DocState, now: datetime
    ) -> None:
        return None  # nothing to render: the file exists

    async def lock(self, tx: Records, scene: DocumentScene) -> DocumentScene:
        """Sending on changes no state, so no race is lost; but the audit event records the
        row as it is now (a step may have changed it since it was read)."""
        return replace(scene, document=await tx.document(scene.document.id, for_update=True))

    async def write(
        self, desk: Desk, tx: Records, scene: DocumentScene, prepared: None, now: datetime
    ) -> Written:
        document = scene.document
        items = await desk.deliver_to(tx, document, self.recipients, now)
        await desk.audit(
            tx, scene.who, AuditKind.DOCUMENT_SHARED, document, recipients=list(self.recipients)
        )
        return Written(document, items)
