"""Settlement agreements (执行和解协议): the judge drafts the terms and both parties receive an
unsealed preview; debtor and creditor sign on screen (at a terminal the debtor signs and an
officer confirms with their PIN); the judge confirms, and the sealed final copy, with both
signatures, goes to every party."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.documents.desk import TITLES, Desk, Sealed, sha256_of
from courtlink.court.documents.lifecycle import (
    DocAction,
    DocKind,
    DocState,
    Document,
    check_step,
)
from courtlink.court.documents.steps import DocumentScene, DocumentStep, Scene, Step, Written
from courtlink.court.policy import Principal, signer
from courtlink.court.seats import Seat
from courtlink.errors import InvalidInput
from courtlink.storage import Records

__all__ = ["Settlements"]

MAX_SIGNATURE_BYTES = 512 * 1024


class Settlements:
    """The steps of settlement agreements."""

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

    async def sign(
        self,
        principal: Principal,
        document_id: str,
        signature_png: bytes,
        *,
        officer: str | None = None,
        pin: str | None = None,
    ) -> Document:
        """A party signs on screen. At a terminal the debtor signs and the officer confirms with
        their PIN that it was the debtor who signed."""
        if not signature_png or len(signature_png) > MAX_SIGNATURE_BYTES:
            raise InvalidInput("signature: a PNG of at most 512 KiB")
        step = _Sign(
            principal=principal,
            document_id=document_id,
            officer=officer,
            pin=pin,
            signature_png=signature_png,
        )
        return (await step.run(self.desk)).document

    async def confirm(self, principal: Principal, document_id: str) -> Document:
        """The judge confirms the signed agreement: the final copy, with both signatures and the
        court's seal, goes to every party."""
        step = _Confirm(principal=principal, document_id=document_id)
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
        pdf, _ = await desk.printer.print(
            "settlement",
            {"document": document, "case": case, "signatures": {}, "issued_at": now, "draft": True},
            document_id=document.id,
            seal=False,
        )
        await desk.files.put(document.id, pdf)
        return replace(
            document, sha256=sha256_of(pdf), size=len(pdf), file_name=f"{document.number}-草稿.pdf"
        )

    async def write(
        self, desk: Desk, tx: Records, scene: Scene, prepared: Document, now: datetime
    ) -> Written:
        document, case = prepared, scene.case
        await tx.add_document(document)
        await desk.step(tx, document, DocAction.DRAFT, scene.who, now, data=document.fields)
        await desk.audit(
            tx, scene.who, AuditKind.DOCUMENT_DRAFTED, document, fields=document.fields
        )
        recipients = [f"seat:{case.id}:{Seat.DEBTOR}", f"seat:{case.id}:{Seat.CREDITOR}"]
        if scene.detention is not None:
            recipients += await desk.terminals_at(tx, scene.detention.center)
        return Written(document, await desk.deliver_to(tx, document, recipients, now))


@dataclass(frozen=True, slots=True, kw_only=True)
class _SignScene(DocumentScene):
    seat: Seat | None  # the seat whose signature this is


@dataclass(frozen=True, kw_only=True)
class _Sign(DocumentStep[_SignScene, None]):
    action = DocAction.SIGN
    conflict = "the agreement is no longer open for signing"

    signature_png: bytes

    async def load(self, desk: Desk, tx: Records) -> _SignScene:
        scene = await self.read_scene(desk, tx)
        who, seat = signer(scene.who, officer_confirms=bool(self.officer and self.pin))
        return _SignScene(
            case=scene.case, detention=scene.detention, who=who, document=scene.document, seat=seat
        )

    async def prepare(self, desk: Desk, scene: _SignScene, state: DocState, now: datetime) -> None:
        # Every actor the rights table lets sign holds a seat (the policy's ``signer``).
        assert scene.seat is not None

    async def write(
        self, desk: Desk, tx: Records, scene: _SignScene, prepared: None, now: datetime
    ) -> Written:
        current, who = scene.document, scene.who
        assert scene.seat is not None
        seat = str(scene.seat)
        await tx.add_signature(current.id, seat, self.signature_png, who.name, now, who.officer_id)
        signed = await tx.signatures(current.id)
        state = (
            DocState.SIGNED
            if {str(Seat.DEBTOR), str(Seat.CREDITOR)} <= set(signed)
            else DocState.DRAFTED
        )
        updated = replace(current, state=state, updated_at=now)
        await tx.save_document(updated)
        await desk.step(
            tx, updated, self.action, who, now, officer_id=who.officer_id, data={"seat": seat}
        )
        await desk.audit(
            tx,
            who,
            AuditKind.DOCUMENT_SIGNED,
            updated,
            seat=seat,
            signature_sha256=sha256_of(self.signature_png),
        )
        return Written(updated)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ConfirmScene(DocumentScene):
    signatures: dict[str, tuple[bytes, datetime]]


@dataclass(frozen=True, kw_only=True)
class _Confirm(DocumentStep[_ConfirmScene, Sealed]):
    action = DocAction.CONFIRM

    async def load(self, desk: Desk, tx: Records) -> _ConfirmScene:
        scene = await self.read_scene(desk, tx)
        return _ConfirmScene(
            case=scene.case,
            detention=scene.detention,
            who=scene.who,
            document=scene.document,
            signatures=await tx.signatures(scene.document.id),
        )

    async def prepare(
        self, desk: Desk, scene: _ConfirmScene, state: DocState, now: datetime
    ) -> Sealed:
        document = scene.document
        context: dict[str, Any] = {
            "document": document,
            "case": scene.case,
            "signatures": scene.signatures,
            "issued_at": now,
            "draft": False,
        }
        return await desk.seal(
            replace(document, state=state, updated_at=now), "settlement", context
        )

    async def write(
        self, desk: Desk, tx: Records, scene: _ConfirmScene, prepared: Sealed, now: datetime
    ) -> Written:
        confirmed, case = prepared.document, scene.case
        await tx.save_document(confirmed)
        await desk.step(
            tx, confirmed, self.action, scene.who, now, data={"sha256": confirmed.sha256}
        )
        await desk.audit(
            tx,
            scene.who,
            AuditKind.DOCUMENT_CONFIRMED,
            confirmed,
            sha256=confirmed.sha256,
            key=confirmed.signed_by,
        )
        recipients = [
            f"seat:{case.id}:{seat}" for seat in (Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR)
        ]
        if scene.detention is not None:
            recipients += await desk.terminals_at(tx, scene.detention.center)
        # Everyone had the draft: the final copy must be fetched (and hash-checked) again.
        for item in await tx.items(document_id=confirmed.id):
            await tx.mark_item(item.id, fetched_at=None)  # type: ignore[arg-type]
        items = await desk.deliver_to(tx, confirmed, recipients, now)
        return Written(await desk.keep(prepared), items)
