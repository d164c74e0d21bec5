"""Orders (renewal 续拘决定书, early release 提前解除拘留决定书): the judge drafts, the approver
approves, the judge issues (sealed, to the detention center's inboxes); at the center an officer,
named by their PIN, acknowledges, serves (the detainee signs on screen), executes or refuses,
and each of these steps leaves a sealed receipt (receipts.py). Executing changes the detention.

Delivery (an order fetched and hash-checked at the center) is in delivery.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.cases import Case
from courtlink.court.detentions import Detention, check_period_days
from courtlink.court.documents.desk import TITLES, Desk, Sealed
from courtlink.court.documents.lifecycle import (
    ORDER_KINDS,
    DocAction,
    DocKind,
    DocState,
    Document,
    check_step,
)
from courtlink.court.documents.receipts import Printed, advance, print_receipt
from courtlink.court.documents.steps import (
    DocumentScene,
    DocumentStep,
    PlainDocumentStep,
    Scene,
    Step,
    Written,
)
from courtlink.court.policy import Principal, Who
from courtlink.court.seats import Seat
from courtlink.errors import Conflict, Forbidden, InvalidInput
from courtlink.storage import Records

__all__ = ["OFFICER_ACTIONS", "Orders"]

OFFICER_ACTIONS = frozenset(
    {DocAction.ACKNOWLEDGE, DocAction.SERVE, DocAction.EXECUTE, DocAction.REFUSE}
)


class Orders:
    """The steps of renewal and release orders."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def draft(
        self,
        principal: Principal,
        *,
        kind: DocKind,
        detention_id: str,
        reason: str,
        days: int | None = None,
    ) -> Document:
        """The judge drafts an order for an active detention (a renewal names its length)."""
        if kind not in ORDER_KINDS:
            raise InvalidInput("kind must be renewal or release")
        reason = reason.strip()
        if not 1 <= len(reason) <= 2000:
            raise InvalidInput("reason: 1 to 2000 characters")
        step = _Draft(
            principal=principal, kind=kind, detention_id=detention_id, reason=reason, days=days
        )
        return (await step.run(self.desk)).document

    async def approve(self, principal: Principal, document_id: str) -> Document:
        """The approver approves a drafted order."""
        return (
            await _Approve(principal=principal, document_id=document_id).run(self.desk)
        ).document

    async def issue(self, principal: Principal, document_id: str) -> Document:
        """Render, seal and store the order, then put it in the inboxes of the detention
        center's terminals and of the case's officer seat, and push it to them."""
        return (await _Issue(principal=principal, document_id=document_id).run(self.desk)).document

    async def officer_step(
        self,
        principal: Principal,
        document_id: str,
        action: DocAction,
        *,
        officer: str | None,
        pin: str | None,
        reason: str = "",
        signature_png: bytes | None = None,
        at: datetime | None = None,
    ) -> Document:
        """已签收 (acknowledge), 送达 (serve, with the detainee's drawn signature), 已执行
        (execute) or refuse (with a reason): by a named officer with their PIN."""
        if action not in OFFICER_ACTIONS:
            raise InvalidInput(f"{action} is not an officer's step")
        if action is DocAction.REFUSE and not 1 <= len(reason.strip()) <= 1000:
            raise InvalidInput("reason: say why (1 to 1000 characters)")
        if action is DocAction.SERVE and not signature_png:
            raise InvalidInput("the detainee signs the receipt of service on screen first")
        step = _OfficerStep(
            principal=principal,
            document_id=document_id,
            officer=officer,
            pin=pin,
            step=action,
            reason=reason,
            signature_png=signature_png,
            at=at,
        )
        return (await step.run(self.desk)).document


def order_context(
    document: Document, case: Case, detention: Detention, now: datetime
) -> dict[str, Any]:
    """What an order's template prints: the case, the detention's period and, for a renewal,
    the period it adds."""
    period = detention.periods[-1]
    context: dict[str, Any] = {
        "document": document,
        "case": case,
        "detention": detention,
        "period": period,
        "issued_at": now,
    }
    if document.kind is DocKind.RENEWAL:
        start = datetime.fromisoformat(document.fields["from"])
        context["renewal_start"] = start
        context["renewal_end"] = start + timedelta(days=int(document.fields["days"]))
    return context


@dataclass(frozen=True, kw_only=True)
class _Draft(Step[Scene, Document]):
    principal: Principal
    kind: DocKind
    detention_id: str
    reason: str
    days: int | None

    async def load(self, desk: Desk, tx: Records) -> Scene:
        detention = await tx.detention(self.detention_id)
        case = await tx.case(detention.case_id)
        who = await desk.who(tx, self.principal, case, detention)
        return Scene(case=case, detention=detention, who=who)

    def allowed(self, scene: Scene) -> DocState:
        return check_step(self.kind, None, DocAction.DRAFT, scene.who.actor)

    async def prepare(self, desk: Desk, scene: Scene, state: DocState, now: datetime) -> Document:
        detention = scene.detention
        assert detention is not None
        if detention.status(now).value != "active":
            raise Conflict(f"the detention is {detention.status(now)}")
        fields: dict[str, Any] = {"reason": self.reason}
        if self.kind is DocKind.RENEWAL:
            if self.days is None:
                raise InvalidInput("days: a renewal needs its length")
            fields["days"] = check_period_days(self.days, desk.rules.max_period_days)
            fields["from"] = detention.ends_at.isoformat()
        return Document(
            id=new_id(),
            case_id=scene.case.id,
            detention_id=detention.id,
            kind=self.kind,
            state=state,
            number="",  # numbered in the write transaction, which counts the case's documents
            title=TITLES[self.kind],
            fields=fields,
            created_by=scene.who.name,
            created_at=now,
            updated_at=now,
        )

    async def write(
        self, desk: Desk, tx: Records, scene: Scene, prepared: Document, now: datetime
    ) -> Written:
        document = replace(prepared, number=await desk.number(tx, scene.case))
        await tx.add_document(document)
        await desk.step(tx, document, DocAction.DRAFT, scene.who, now, data=document.fields)
        await desk.audit(
            tx, scene.who, AuditKind.DOCUMENT_DRAFTED, document, fields=document.fields
        )
        return Written(document)


@dataclass(frozen=True, kw_only=True)
class _Approve(PlainDocumentStep[Document]):
    action = DocAction.APPROVE

    async def prepare(
        self, desk: Desk, scene: DocumentScene, state: DocState, now: datetime
    ) -> Document:
        return replace(scene.document, state=state, updated_at=now)

    async def write(
        self, desk: Desk, tx: Records, scene: DocumentScene, prepared: Document, now: datetime
    ) -> Written:
        await tx.save_document(prepared)
        await desk.step(tx, prepared, self.action, scene.who, now)
        await desk.audit(tx, scene.who, AuditKind.DOCUMENT_APPROVED, prepared)
        return Written(prepared)


@dataclass(frozen=True, kw_only=True)
class _Issue(PlainDocumentStep[Sealed]):
    action = DocAction.ISSUE

    async def prepare(
        self, desk: Desk, scene: DocumentScene, state: DocState, now: datetime
    ) -> Sealed:
        document, detention = scene.document, scene.detention
        assert detention is not None
        return await desk.seal(
            replace(document, state=state, updated_at=now),
            str(document.kind),
            order_context(document, scene.case, detention, now),
        )

    async def write(
        self, desk: Desk, tx: Records, scene: DocumentScene, prepared: Sealed, now: datetime
    ) -> Written:
        issued, detention = prepared.document, scene.detention
        assert detention is not None
        await tx.save_document(issued)
        await desk.step(tx, issued, self.action, scene.who, now, data={"sha256": issued.sha256})
        await desk.audit(
            tx,
            scene.who,
            AuditKind.DOCUMENT_ISSUED,
            issued,
            sha256=issued.sha256,
            key=issued.signed_by,
        )
        recipients = [
            *await desk.terminals_at(tx, detention.center),
            f"seat:{scene.case.id}:{Seat.OFFICER}",
        ]
        items = await desk.deliver_to(tx, issued, recipients, now)
        return Written(await desk.keep(prepared), items)


@dataclass(frozen=True, slots=True, kw_only=True)
class _OfficerScene(DocumentScene):
    officer_name: str  # the officer's display name, printed on the receipt


@dataclass(frozen=True, slots=True)
class _OfficerPlan:
    when: datetime  # when the order was executed (the officer may say it was earlier)
    data: dict[str, Any]  # what the step and its audit event record
    receipt: Printed


@dataclass(frozen=True, kw_only=True)
class _OfficerStep(DocumentStep[_OfficerScene, _OfficerPlan]):
    step: DocAction
    reason: str
    signature_png: bytes | None
    at: datetime | None

    def allowed(self, scene: _OfficerScene) -> DocState:
        document = scene.document
        return check_step(document.kind, document.state, self.step, scene.who.actor)

    async def load(self, desk: Desk, tx: Records) -> _OfficerScene:
        # Not read_scene: without a name and PIN nobody is asked for one (a missing document
        # is still NotFound first).
        document, case, detention = await desk.context(tx, self.document_id)
        if not (self.officer and self.pin):
            raise Forbidden("an officer confirms with their name and PIN")
        who = await desk.who(
            tx, self.principal, case, detention, officer=self.officer, pin=self.pin
        )
        account = await tx.account(who.officer_id) if who.officer_id else None
        return _OfficerScene(
            case=case,
            detention=detention,
            who=who,
            document=document,
            officer_name=account.display_name if account else "",
        )

    async def prepare(
        self, desk: Desk, scene: _OfficerScene, state: DocState, now: datetime
    ) -> _OfficerPlan:
        document = scene.document
        assert scene.detention is not None
        when = self.at or now
        extra: dict[str, Any] = {"officer": scene.officer_name, "reason": self.reason.strip()}
        if self.step is DocAction.SERVE:
            delivered = next((s for s in document.steps if s["action"] == "deliver"), None)
            # 送达回证: the date of service is when the order reached the detention center.
            extra["served_at"] = delivered["at"] if delivered else now.isoformat()
            extra["signature_png"] = self.signature_png
        if self.step is DocAction.EXECUTE:
            extra["executed_at"] = when.isoformat()
        receipt = await print_receipt(
            desk,
            document,
            scene.case,
            scene.detention,
            self.step,
            now,
            who_name=scene.who.name,
            extra=extra,
        )
        data = {k: v for k, v in extra.items() if k != "signature_png"}
        return _OfficerPlan(when, data, receipt)

    async def write(
        self, desk: Desk, tx: Records, scene: _OfficerScene, prepared: _OfficerPlan, now: datetime
    ) -> Written:
        current, who = scene.document, scene.who
        assert scene.detention is not None
        updated = await advance(
            desk, tx, current, scene.case, self.step, who, now, prepared.receipt, prepared.data
        )
        if self.step is DocAction.SERVE and self.signature_png:
            await tx.add_signature(
                current.id, str(Seat.DEBTOR), self.signature_png, who.name, now, who.officer_id
            )
        if self.step is DocAction.ACKNOWLEDGE:
            for item in await tx.items(document_id=current.id):
                await tx.mark_item(item.id, acknowledged_at=now)
        if self.step is DocAction.EXECUTE:
            await _carry_out(desk, tx, current, scene.detention, prepared.when, who)
        return Written(updated)


async def _carry_out(
    desk: Desk, tx: Records, document: Document, detention: Detention, when: datetime, who: Who
) -> None:
    """Executing a release releases; executing a renewal adds the next period, from the end
    of the current one, never longer than the legal maximum."""
    fresh = await tx.detention(detention.id)
    if document.kind is DocKind.RELEASE:
        changed = fresh.released(when)
    else:
        # The order decided a period from a given date (it is printed on it); if the
        # detention changed since (another renewal executed), this one no longer fits.
        if datetime.fromisoformat(document.fields["from"]) != fresh.ends_at:
            raise Conflict(
                "the detention's period changed since this renewal was decided "
                f"(it now ends {fresh.ends_at.isoformat()}); refuse it and draft a new one"
            )
        changed = fresh.renewed(int(document.fields["days"]), desk.rules.max_period_days, when)
    await tx.save_detention(changed)
    await desk.auditor.record(
        tx,
        AuditKind.DETENTION_CHANGED,
        who.name,
        case_id=document.case_id,
        data={
            "detention": detention.id,
            "document": document.id,
            "released_at": None if changed.released_at is None else changed.released_at.isoformat(),
            "ends_at": changed.ends_at.isoformat(),
        },
    )
