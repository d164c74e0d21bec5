"""Reading documents: one document and its file (the rights table, or being a named recipient),
the list court staff see, and the bare record the public verify page shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from courtlink.court.documents.desk import Desk
from courtlink.court.documents.lifecycle import DocAction, Document, allows, check_step
from courtlink.court.policy import Principal, check_lists_documents, document_actor
from courtlink.errors import Conflict, NotFound

__all__ = ["Reading"]


class Reading:
    """What may be read, by whom."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def read(self, principal: Principal, document_id: str) -> Document:
        """The document, for a named recipient of it or whoever the rights table lets read."""
        desk = self.desk
        async with desk.store.read() as tx:
            document, case, detention = await desk.context(tx, document_id)
            who = await desk.who(tx, principal, case, detention)
            recipients = await desk.inboxes(tx, principal)
            items = await tx.items(document_id=document.id)
        if not any(item.recipient in recipients for item in items):
            check_step(document.kind, document.state, DocAction.READ, who.actor)
        return document

    async def file(self, principal: Principal, document_id: str) -> tuple[Document, bytes]:
        """The document and its file, for whoever may read it."""
        document = await self.read(principal, document_id)
        if document.sha256 is None:
            raise Conflict("this document has no file yet")
        return document, await self.desk.files.get(document.id)

    async def documents(
        self, principal: Principal, case_ids: Sequence[str] | None = None
    ) -> list[Document]:
        """Documents of cases, for court staff (judges see every case's, like cases)."""
        check_lists_documents(principal)
        async with self.desk.store.read() as tx:
            return await tx.documents(case_ids=case_ids)

    async def actions(
        self, principal: Principal, documents: Sequence[Document], wanted: Iterable[DocAction]
    ) -> dict[str, frozenset[DocAction]]:
        """Which of ``wanted`` court staff may do now to each of ``documents``, by the rights
        table: the buttons a page offers (the step itself checks again when one is pressed).
        Staff only, like the list; no officer acts here, so no detention center is needed."""
        check_lists_documents(principal)
        wanted = tuple(wanted)
        async with self.desk.store.read() as tx:
            cases = {case_id: await tx.case(case_id) for case_id in {d.case_id for d in documents}}
        actors = {
            case_id: document_actor(principal, case, center=None).actor
            for case_id, case in cases.items()
        }
        return {
            d.id: frozenset(
                action for action in wanted if allows(d.kind, d.state, action, actors[d.case_id])
            )
            for d in documents
        }

    async def find(self, document_id: str) -> Document:
        """A document's record without access checks (the public /verify page shows only the
        fields that prove authenticity)."""
        async with self.desk.store.read() as tx:
            try:
                return await tx.document(document_id)
            except NotFound:
                raise NotFound("no document with this id") from None
