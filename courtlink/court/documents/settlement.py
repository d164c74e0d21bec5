"""Settlement agreements (执行和解协议): the judge drafts the terms and both parties receive an
unsealed preview; debtor and creditor sign on screen (at a terminal the debtor signs and an
officer confirms with their PIN); the judge confirms, and the sealed final copy, with both
signatures, goes to every party. Signing and confirming are signing.py's, shared with
transcripts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.documents.desk import TITLES, Desk
from courtlink.court.documents.lifecycle import (
    DocAction,
    DocKind,
    DocState,
    Document,
    check_step,
)
from courtlink.court.documents.signing import parties_inboxes, preview, render_context
from courtlink.court.documents.steps import Scene, Step, Written
from courtlink.court.policy import Principal
from courtlink.errors import InvalidInput
from courtlink.storage import Records

__all__ = ["Settlements"]


class Settlements:
    """The drafting of settlement agreements (signing and confirming: signing.py)."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def draft(
        self, principal: Principal, *, case_id: str, terms: str, amount_fen: int, due: str = ""
    ) -> Document:
        """The judge writes the agreement; debtor and creditor receive a preview to sign."""
        terms = terms.strip()
        if not 1 <= len(terms) <= 5000:
            raise InvalidInput("terms: 1 to 5000 characters")
        if amount_fen <= 0:
            raise InvalidInput("amount: more than zero")
        step = _Draft(
            principal=principal, case_id=case_id, terms=terms, amount_fen=amount_fen, due=due
        )
        return (await step.run(self.desk)).document


@dataclass(frozen=True, kw_only=True)
class _Draft(Step[Scene, Document]):
    principal: Principal
    case_id: str
    terms: str
    amount_fen: int
    due: str

    async def load(self, desk: Desk, tx: Records) -> Scene:
        case = await tx.case(self.case_id)
        detentions = await tx.detentions(case_ids=[case.id])
        # The judge drafts: nobody at a detention center acts, so none is named to the policy.
        who = await desk.who(tx, self.principal, case, None)
        # The agreement belongs to the case's latest detention, whose center receives it.
        return Scene(case=case, detention=detentions[-1] if detentions else None, who=who)

    def allowed(self, scene: Scene) -> DocState:
        return check_step(DocKind.SETTLEMENT, None, DocAction.DRAFT, scene.who.actor)

    async def prepare(self, desk: Desk, scene: Scene, state: DocState, now: datetime) -> Document:
        case = scene.case
        document = Document(
            id=new_id(),
            case_id=case.id,
            kind=DocKind.SETTLEMENT,
            state=state,
            number="",
            title=TITLES[DocKind.SETTLEMENT],
            fields={
                "terms": self.terms,
                "amount_fen": self.amount_fen,
                "due": self.due.strip()[:200],
            },
            created_by=scene.who.name,
            created_at=now,
            updated_at=now,
            detention_id=scene.detention.id if scene.detention else None,
        )
        # The number is printed on the preview, so it is taken before rendering.
        async with desk.store.write() as tx:
            document = replace(document, number=await desk.number(tx, case))
        context = render_context(document, case, None, {}, now, draft=True)
        # A new document's id is nobody else's: no race to win before its file is stored.
        return await desk.keep(await preview(desk, document, context))

    async def write(
        self, desk: Desk, tx: Records, scene: Scene, prepared: Document, now: datetime
    ) -> Written:
        document, case = prepared, scene.case
        await tx.add_document(document)
        await desk.step(tx, document, DocAction.DRAFT, scene.who, now, data=document.fields)
        await desk.audit(
            tx, scene.who, AuditKind.DOCUMENT_DRAFTED, document, fields=document.fields
        )
        recipients = await parties_inboxes(desk, tx, case, scene.detention)
        return Written(document, await desk.deliver_to(tx, document, recipients, now))
