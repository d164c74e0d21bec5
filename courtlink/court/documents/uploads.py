"""Uploads: a PDF or an image a judge, an officer or a party adds to a case (the file is parsed
whole by web/ first). It is stored as it came, unsealed, and goes to the judge's inbox; the
judge may send it on (delivery.share)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.documents.desk import Desk, sha256_of
from courtlink.court.documents.lifecycle import DocAction, DocKind, DocState, Document, check_step
from courtlink.court.documents.steps import Scene, Step, Written
from courtlink.court.policy import Principal
from courtlink.errors import InvalidInput
from courtlink.storage import Records

__all__ = ["Uploads"]


class Uploads:
    """Adding files to a case."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def upload(
        self, principal: Principal, *, case_id: str, data: bytes, media_type: str, file_name: str
    ) -> Document:
        """A checked upload (web/ parses the whole file first)."""
        limit = self.desk.rules.max_upload_bytes
        if len(data) > limit:
            raise InvalidInput(f"file: at most {limit // (1024 * 1024)} MB", code="too_large")
        step = _Upload(
            principal=principal,
            case_id=case_id,
            data=data,
            media_type=media_type,
            file_name=file_name,
        )
        return (await step.run(self.desk)).document


@dataclass(frozen=True, kw_only=True)
class _Upload(Step[Scene, Document]):
    principal: Principal
    case_id: str
    data: bytes
    media_type: str
    file_name: str

    async def load(self, desk: Desk, tx: Records) -> Scene:
        case = await tx.case(self.case_id)
        detentions = await tx.detentions(case_ids=[case.id])
        # An officer uploads for the detention center that holds the case's debtor (without
        # a detention no officer, account or PIN, would be recognized, despite the rights).
        detention = detentions[-1] if detentions else None
        who = await desk.who(tx, self.principal, case, detention)
        return Scene(case=case, detention=detention, who=who)

    def allowed(self, scene: Scene) -> DocState:
        return check_step(DocKind.UPLOAD, None, DocAction.UPLOAD, scene.who.actor)

    async def prepare(self, desk: Desk, scene: Scene, state: DocState, now: datetime) -> Document:
        name = self.file_name.replace("/", "_").replace("\\", "_").strip()[:150] or "upload"
        document = Document(
            id=new_id(),
            case_id=scene.case.id,
            kind=DocKind.UPLOAD,
            state=state,
            number="",
            title=name,
            fields={"uploaded_by_seat": None if scene.who.seat is None else str(scene.who.seat)},
            created_by=scene.who.name,
            created_at=now,
            updated_at=now,
            sha256=sha256_of(self.data),
            size=len(self.data),
            media_type=self.media_type,
            file_name=name,
        )
        await desk.files.put(document.id, self.data)
        return document

    async def write(
        self, desk: Desk, tx: Records, scene: Scene, prepared: Document, now: datetime
    ) -> Written:
        case = scene.case
        document = replace(prepared, number=f"{case.number}·附件·{prepared.id}")
        await tx.add_document(document)
        size = len(self.data)
        await desk.step(
            tx,
            document,
            DocAction.UPLOAD,
            scene.who,
            now,
            data={"sha256": document.sha256, "size": size},
        )
        await desk.audit(
            tx,
            scene.who,
            AuditKind.DOCUMENT_UPLOADED,
            document,
            sha256=document.sha256,
            size=size,
            media_type=self.media_type,
        )
        items = await desk.deliver_to(tx, document, [f"account:{case.judge_id}"], now)
        return Written(document, items)
