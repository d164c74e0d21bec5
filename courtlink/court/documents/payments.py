"""Payment proofs (收款确认书): the creditor confirms money received; the court seals the proof,
the case's amount paid rises in the same transaction, and the judge and the debtor receive it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.documents.desk import TITLES, Desk, Sealed
from courtlink.court.documents.lifecycle import DocAction, DocKind, DocState, Document, check_step
from courtlink.court.documents.steps import Scene, Step, Written
from courtlink.court.policy import Principal
from courtlink.court.seats import Seat
from courtlink.errors import Conflict, InvalidInput
from courtlink.storage import Records

__all__ = ["Payments"]


class Payments:
    """Confirming payments."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def confirm(
        self, principal: Principal, *, case_id: str, amount_fen: int, note: str = ""
    ) -> Document:
        """The creditor confirms money received: a 收款确认书, and the case's amount paid rises."""
        if amount_fen <= 0:
            raise InvalidInput("amount: more than zero")
        step = _ConfirmPayment(
            principal=principal, case_id=case_id, amount_fen=amount_fen, note=note
        )
        return (await step.run(self.desk)).document


@dataclass(frozen=True, kw_only=True)
class _ConfirmPayment(Step[Scene, Sealed]):
    principal: Principal
    case_id: str
    amount_fen: int
    note: str

    async def load(self, desk: Desk, tx: Records) -> Scene:
        case = await tx.case(self.case_id)
        return Scene(case=case, detention=None, who=await desk.who(tx, self.principal, case, None))

    def allowed(self, scene: Scene) -> DocState:
        state = check_step(DocKind.PAYMENT_PROOF, None, DocAction.UPLOAD, scene.who.actor)
        outstanding = scene.case.amount_outstanding_fen
        if self.amount_fen > outstanding:
            raise InvalidInput(f"amount: at most the outstanding {outstanding} fen")
        return state

    async def prepare(self, desk: Desk, scene: Scene, state: DocState, now: datetime) -> Sealed:
        case = scene.case
        document = Document(
            id=new_id(),
            case_id=case.id,
            kind=DocKind.PAYMENT_PROOF,
            state=state,
            number="",
            title=TITLES[DocKind.PAYMENT_PROOF],
            fields={"amount_fen": self.amount_fen, "note": self.note.strip()[:500]},
            created_by=scene.who.name,
            created_at=now,
            updated_at=now,
        )
        # The number is printed on the proof, so it is taken before rendering.
        async with desk.store.read() as tx:
            document = replace(document, number=await desk.number(tx, case))
        return await desk.seal(
            document, "payment", {"document": document, "case": case, "issued_at": now}
        )

    async def lock(self, tx: Records, scene: Scene) -> Scene:
        """The race to lose here is the case's: another payment confirmed meanwhile."""
        fresh = await tx.case(scene.case.id)
        if self.amount_fen > fresh.amount_outstanding_fen:
            raise Conflict("the amount outstanding changed meanwhile; reload")
        return replace(scene, case=fresh)

    async def write(
        self, desk: Desk, tx: Records, scene: Scene, prepared: Sealed, now: datetime
    ) -> Written:
        document, case = prepared.document, scene.case
        paid = case.amount_paid_fen + self.amount_fen
        await tx.add_document(document)
        await tx.set_amount_paid(case.id, paid)
        await desk.step(tx, document, DocAction.UPLOAD, scene.who, now, data=document.fields)
        await desk.audit(
            tx,
            scene.who,
            AuditKind.DOCUMENT_PAYMENT_CONFIRMED,
            document,
            amount_fen=self.amount_fen,
            paid_fen=paid,
        )
        recipients = [f"account:{case.judge_id}", f"seat:{case.id}:{Seat.DEBTOR}"]
        items = await desk.deliver_to(tx, document, recipients, now)
        return Written(await desk.keep(prepared), items)
