"""Session transcripts (笔录): the clerk (书记员) or the case's judge starts one for a session
and saves its text again and again while the session runs (the browser saves at most every few
seconds); each save is a step of the document and a ``document.transcript_saved`` audit event
holding the text's SHA-256 and length (not the text: the document holds it, and the chain
stays small), and re-renders the unsealed preview the parties read. Saving the same text again
changes nothing. The first signature freezes the text; signing and confirming are the
settlement's (signing.py)."""

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
from courtlink.court.documents.signing import (
    PartiesScene,
    parties_inboxes,
    parties_scene,
    preview,
    render_context,
)
from courtlink.court.documents.steps import DocumentStep, Scene, Step, Written
from courtlink.court.policy import Principal
from courtlink.court.sessions import Session
from courtlink.errors import Conflict, InvalidInput
from courtlink.storage import Records

__all__ = ["MAX_TEXT", "Transcripts"]

MAX_TEXT = 100_000  # characters: a long day's hearing, typed


def _checked(text: str) -> str:
    """The text as given (a transcript keeps its spacing), if it is neither blank nor too long."""
    if not text.strip() or len(text) > MAX_TEXT:
        raise InvalidInput(f"text: 1 to {MAX_TEXT} characters")
    return text


def _text_facts(fields: dict[str, Any]) -> dict[str, Any]:
    """What the chain and the steps record of a version: its number, hash and length."""
    text = str(fields["text"])
    return {
        "session_id": fields["session_id"],
        "version": fields["version"],
        "text_sha256": sha256_of(text.encode()),
        "chars": len(text),
    }


class Transcripts:
    """Drafting and saving transcripts."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def draft(self, principal: Principal, *, session_id: str, text: str) -> Document:
        """The clerk or the case's judge starts the transcript of a session (one a session);
        the parties receive its preview."""
        step = _Draft(principal=principal, session_id=session_id, text=_checked(text))
        return (await step.run(self.desk)).document

    async def save(self, principal: Principal, document_id: str, text: str) -> Document:
        """The text again, while the transcript is drafted and nobody signed it; the same text
        again changes nothing."""
        step = _Save(principal=principal, document_id=document_id, text=_checked(text))
        return (await step.run(self.desk)).document


@dataclass(frozen=True, slots=True, kw_only=True)
class _DraftScene(Scene):
    session: Session


async def _refuse_second(tx: Records, session: Session) -> None:
    for document in await tx.documents(case_ids=[session.case_id], kinds=[DocKind.TRANSCRIPT]):
        if document.fields.get("session_id") == session.id:
            raise Conflict("this session has a transcript already")


@dataclass(frozen=True, kw_only=True)
class _Draft(Step[_DraftScene, Sealed]):
    principal: Principal
    session_id: str
    text: str

    async def load(self, desk: Desk, tx: Records) -> _DraftScene:
        session = await tx.session(self.session_id)
        case = await tx.case(session.case_id)
        detentions = await tx.detentions(case_ids=[case.id])
        who = await desk.who(tx, self.principal, case, None)
        # Like an agreement, the transcript goes to the center of the case's latest detention.
        detention = detentions[-1] if detentions else None
        return _DraftScene(case=case, detention=detention, who=who, session=session)

    def allowed(self, scene: _DraftScene) -> DocState:
        return check_step(DocKind.TRANSCRIPT, None, DocAction.DRAFT, scene.who.actor)

    async def prepare(
        self, desk: Desk, scene: _DraftScene, state: DocState, now: datetime
    ) -> Sealed:
        async with desk.store.read() as tx:
            await _refuse_second(tx, scene.session)  # before rendering for nothing
        document = Document(
            id=new_id(),
            case_id=scene.case.id,
            kind=DocKind.TRANSCRIPT,
            state=state,
            number="",
            title=TITLES[DocKind.TRANSCRIPT],
            fields={"session_id": scene.session.id, "text": self.text, "version": 1},
            created_by=scene.who.name,
            created_at=now,
            updated_at=now,
            detention_id=scene.detention.id if scene.detention else None,
        )
        # The number is printed on the preview, so it is taken before rendering.
        async with desk.store.write() as tx:
            document = replace(document, number=await desk.number(tx, scene.case))
        context = render_context(document, scene.case, scene.session, {}, now, draft=True)
        return await preview(desk, document, context)

    async def lock(self, tx: Records, scene: _DraftScene) -> _DraftScene:
        # Two drafts of one session at once: the second to write loses.
        await _refuse_second(tx, scene.session)
        return scene

    async def write(
        self, desk: Desk, tx: Records, scene: _DraftScene, prepared: Sealed, now: datetime
    ) -> Written:
        document = prepared.document
        facts = _text_facts(document.fields)
        await tx.add_document(document)
        await desk.step(tx, document, DocAction.DRAFT, scene.who, now, data=facts)
        await desk.audit(tx, scene.who, AuditKind.DOCUMENT_DRAFTED, document, fields=facts)
        items = await desk.deliver_to(
            tx, document, await parties_inboxes(desk, tx, scene.case, scene.detention), now
        )
        return Written(await desk.keep(prepared), items)


@dataclass(frozen=True, kw_only=True)
class _Save(DocumentStep[PartiesScene, Sealed | None]):
    action = DocAction.SAVE
    conflict = "the transcript changed meanwhile; reload"

    text: str

    async def load(self, desk: Desk, tx: Records) -> PartiesScene:
        return await parties_scene(await self.read_scene(desk, tx), tx)

    def allowed(self, scene: PartiesScene) -> DocState:
        state = super().allowed(scene)
        if scene.signatures:
            raise Conflict("the transcript is signed: its text can no longer change")
        return state

    async def prepare(
        self, desk: Desk, scene: PartiesScene, state: DocState, now: datetime
    ) -> Sealed | None:
        current = scene.document
        if current.fields.get("text") == self.text:
            return None  # an autosave of what is saved already
        fields = {**current.fields, "text": self.text, "version": current.fields["version"] + 1}
        document = replace(current, fields=fields, updated_at=now)
        context = render_context(document, scene.case, scene.session, {}, now, draft=True)
        return await preview(desk, document, context)

    async def lock(self, tx: Records, scene: PartiesScene) -> PartiesScene:
        locked = await super().lock(tx, scene)
        # Signing leaves the state drafted, and another save leaves it too: the signatures and
        # the version say whether the text this save replaces is still the one it read.
        if await tx.signatures(locked.document.id):
            raise Conflict("the transcript is signed: its text can no longer change")
        if locked.document.fields.get("version") != scene.document.fields.get("version"):
            raise Conflict(self.conflict)
        return locked

    async def write(
        self, desk: Desk, tx: Records, scene: PartiesScene, prepared: Sealed | None, now: datetime
    ) -> Written:
        if prepared is None:
            return Written(scene.document, changed=False)
        saved = prepared.document
        facts = _text_facts(saved.fields)
        await tx.save_document(saved)
        await desk.step(tx, saved, self.action, scene.who, now, data=facts)
        await desk.audit(tx, scene.who, AuditKind.DOCUMENT_TRANSCRIPT_SAVED, saved, **facts)
        return Written(await desk.keep(prepared))
