"""What the parties sign (lifecycle.SIGNED_KINDS: settlement agreements, transcripts): the
inboxes such a document goes to, its unsealed preview, the signatures (debtor and creditor on
screen; at a terminal the debtor signs and an officer confirms with their PIN) and the judge's
confirmation, which renders the sealed final copy, with both signatures, for every party.

Written once for every signed kind: the template is the kind's name (``settlement.html``,
``transcript.html``), and a document of a session (``session_id`` in its fields) is rendered
with that session.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from courtlink.court.audit import AuditKind
from courtlink.court.cases import Case
from courtlink.court.detentions import Detention
from courtlink.court.documents.desk import Desk, Sealed, sha256_of
from courtlink.court.documents.lifecycle import DocAction, DocKind, DocState, Document
from courtlink.court.documents.steps import DocumentScene, DocumentStep, Written
from courtlink.court.policy import Principal, signer
from courtlink.court.seats import Seat
from courtlink.court.sessions import Session
from courtlink.errors import Conflict, InvalidInput
from courtlink.storage import Records

__all__ = [
    "MAX_SIGNATURE_BYTES",
    "PartiesScene",
    "Signatures",
    "Signing",
    "parties_inboxes",
    "parties_scene",
    "preview",
    "render_context",
    "session_of",
]

MAX_SIGNATURE_BYTES = 512 * 1024

Signatures = dict[str, tuple[bytes, datetime]]


async def parties_inboxes(
    desk: Desk, tx: Records, case: Case, detention: Detention | None
) -> list[str]:
    """Where a document the parties sign goes as a draft: the debtor's and the creditor's seats
    of the case and the terminals of the debtor's detention center (where the debtor signs)."""
    recipients = [f"seat:{case.id}:{Seat.DEBTOR}", f"seat:{case.id}:{Seat.CREDITOR}"]
    if detention is not None:
        recipients += await desk.terminals_at(tx, detention.center)
    return recipients


async def session_of(tx: Records, document: Document) -> Session | None:
    """The session a document is about (a transcript's), None for the others."""
    session_id = document.fields.get("session_id")
    return await tx.session(session_id) if isinstance(session_id, str) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartiesScene(DocumentScene):
    """A document the parties sign, as a step reads it: with its session (a transcript's) and
    the signatures given so far."""

    session: Session | None
    signatures: Signatures


async def parties_scene(scene: DocumentScene, tx: Records) -> PartiesScene:
    """``scene`` with the document's session and signatures read in the same transaction."""
    return PartiesScene(
        case=scene.case,
        detention=scene.detention,
        who=scene.who,
        document=scene.document,
        session=await session_of(tx, scene.document),
        signatures=await tx.signatures(scene.document.id),
    )


def render_context(
    document: Document,
    case: Case,
    session: Session | None,
    signatures: Signatures,
    now: datetime,
    *,
    draft: bool,
) -> dict[str, Any]:
    """What the templates of signed kinds are rendered with."""
    return {
        "document": document,
        "case": case,
        "session": session,
        "signatures": signatures,
        "issued_at": now,
        "draft": draft,
    }


async def preview(desk: Desk, document: Document, context: dict[str, Any]) -> Sealed:
    """The unsealed preview of a draft, with its hash, size and name on the document; the file
    is not stored yet (``Desk.keep``, once the step won its race)."""
    pdf, _ = await desk.printer.print(
        str(document.kind), context, document_id=document.id, seal=False
    )
    document = replace(
        document, sha256=sha256_of(pdf), size=len(pdf), file_name=f"{document.number}-草稿.pdf"
    )
    return Sealed(document, pdf)


class Signing:
    """The parties sign, the judge confirms: the steps every signed kind shares."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def sign(
        self,
        principal: Principal,
        document_id: str,
        signature_png: bytes,
        *,
        officer: str | None = None,
        pin: str | None = None,
        version: int | None = None,
    ) -> Document:
        """A party signs on screen. At a terminal the debtor signs and the officer confirms with
        their PIN that it was the debtor who signed. A transcript is signed at the ``version``
        of its text the party read: the clerk may have saved again since (``Conflict``), and a
        signature must be given to the text that was shown."""
        if not signature_png or len(signature_png) > MAX_SIGNATURE_BYTES:
            raise InvalidInput("signature: a PNG of at most 512 KiB")
        step = _Sign(
            principal=principal,
            document_id=document_id,
            officer=officer,
            pin=pin,
            signature_png=signature_png,
            version=version,
        )
        return (await step.run(self.desk)).document

    async def confirm(self, principal: Principal, document_id: str) -> Document:
        """The judge confirms the signed document: the final copy, with both signatures and the
        court's seal, goes to every party."""
        step = _Confirm(principal=principal, document_id=document_id)
        return (await step.run(self.desk)).document


@dataclass(frozen=True, slots=True, kw_only=True)
class _SignScene(DocumentScene):
    seat: Seat | None  # the seat whose signature this is


@dataclass(frozen=True, kw_only=True)
class _Sign(DocumentStep[_SignScene, None]):
    action = DocAction.SIGN
    conflict = "the document is no longer open for signing"

    signature_png: bytes
    version: int | None = None

    async def load(self, desk: Desk, tx: Records) -> _SignScene:
        scene = await self.read_scene(desk, tx)
        who, seat = signer(scene.who, officer_confirms=bool(self.officer and self.pin))
        return _SignScene(
            case=scene.case, detention=scene.detention, who=who, document=scene.document, seat=seat
        )

    def allowed(self, scene: _SignScene) -> DocState:
        """The rights table, and for a transcript the version of the text that was read."""
        state = super().allowed(scene)
        self._same_text(scene.document)
        return state

    def _same_text(self, document: Document) -> None:
        if document.kind is not DocKind.TRANSCRIPT:
            return
        if self.version is None:
            raise InvalidInput("version: the version of the transcript that was read")
        if document.fields.get("version") != self.version:
            raise Conflict("the transcript changed since it was shown; read it again, then sign")

    async def lock(self, tx: Records, scene: _SignScene) -> _SignScene:
        """A lost race, or a transcript saved again since it was read (a save keeps its state,
        so only its version tells): refused inside the write transaction."""
        scene = await super().lock(tx, scene)
        self._same_text(scene.document)
        return scene

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
            **_signed_text(updated),
        )
        return Written(updated)


def _signed_text(document: Document) -> dict[str, Any]:
    """What a transcript's signature was given to, for its audit event: the text's version
    and hash (the text itself stays out of the chain)."""
    if document.kind is not DocKind.TRANSCRIPT:
        return {}
    text = str(document.fields.get("text", ""))
    return {"version": document.fields.get("version"), "text_sha256": sha256_of(text.encode())}


@dataclass(frozen=True, kw_only=True)
class _Confirm(DocumentStep[PartiesScene, Sealed]):
    action = DocAction.CONFIRM

    async def load(self, desk: Desk, tx: Records) -> PartiesScene:
        return await parties_scene(await self.read_scene(desk, tx), tx)

    async def prepare(
        self, desk: Desk, scene: PartiesScene, state: DocState, now: datetime
    ) -> Sealed:
        document = replace(scene.document, state=state, updated_at=now)
        context = render_context(
            document, scene.case, scene.session, scene.signatures, now, draft=False
        )
        return await desk.seal(document, str(document.kind), context)

    async def write(
        self, desk: Desk, tx: Records, scene: PartiesScene, prepared: Sealed, now: datetime
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
