"""The registry's desk: what every part of the Registry shares (the store, the audit writer, the
ports, the rules, the clock) and the few things every step does alike: find out who acts,
number a document, seal it, put it in inboxes, write its audit event, tell the screens.

The parts (orders, settlement, payments, uploads, delivery) each hold the one Desk the
Registry made; replacing a port on the Registry (the app installs its Notifier after start-up)
replaces it for all of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from courtlink.clock import Clock, new_id
from courtlink.court.audit import AuditKind
from courtlink.court.auditor import Auditor
from courtlink.court.cases import Case
from courtlink.court.clerk import Clerk
from courtlink.court.detentions import Detention
from courtlink.court.documents.lifecycle import DocAction, DocKind, Document, InboxItem
from courtlink.court.documents.ports import FileStore, Notifier, Printer
from courtlink.court.policy import InvitePrincipal, Principal, Who, document_actor, inboxes_of
from courtlink.storage import Records, Store

__all__ = ["TITLES", "Desk", "RegistryRules", "Sealed", "chinese_number", "sha256_of"]

_DIGITS = "零一二三四五六七八九"

TITLES = {
    DocKind.RENEWAL: "续拘决定书",
    DocKind.RELEASE: "提前解除拘留决定书",
    DocKind.SETTLEMENT: "执行和解协议",
    DocKind.PAYMENT_PROOF: "收款确认书",
    DocKind.TRANSCRIPT: "笔录",
}


def chinese_number(n: int) -> str:
    """1 -> 一, 12 -> 十二, 35 -> 三十五 (document numbers: 之一, 之二, ...)."""
    if not 0 < n < 1000:
        return str(n)
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    text = ""
    if hundreds:
        text += _DIGITS[hundreds] + "百"
        if tens == 0 and ones:
            text += "零"
    if tens:
        text += ("" if tens == 1 and not hundreds else _DIGITS[tens]) + "十"
    if ones:
        text += _DIGITS[ones]
    return text


@dataclass(frozen=True, slots=True)
class Sealed:
    """A document with the sealed PDF it will be kept with (``Desk.seal``, ``Desk.keep``)."""

    document: Document
    pdf: bytes


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 recorded for every file and checked by every recipient."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class RegistryRules:
    """The Registry's limits (from settings)."""

    max_period_days: int = 15
    ack_timeout_seconds: float = 900
    max_upload_bytes: int = 20 * 1024 * 1024


class Desk:
    """The Registry's shared ports and the helpers its steps have in common."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        clerk: Clerk,
        printer: Printer,
        files: FileStore,
        notifier: Notifier,
        rules: RegistryRules,
        clock: Clock,
    ) -> None:
        self.store = store
        self.auditor = auditor
        self.clerk = clerk
        self.printer = printer
        self.files = files
        self.notifier = notifier
        self.rules = rules
        self.clock = clock

    # Reading ----------------------------------------------------------------------------

    async def context(
        self, tx: Records, document_id: str
    ) -> tuple[Document, Case, Detention | None]:
        """A document with its case and detention (None for documents without one)."""
        document = await tx.document(document_id)
        case = await tx.case(document.case_id)
        detention = await tx.detention(document.detention_id) if document.detention_id else None
        return document, case, detention

    async def who(
        self,
        tx: Records,
        principal: Principal,
        case: Case,
        detention: Detention | None,
        *,
        officer: str | None = None,
        pin: str | None = None,
    ) -> Who:
        """Who ``principal`` is for ``case`` (policy.document_actor), with the facts the policy
        needs looked up: the case of an invite's session, and the officer a PIN names (checked
        only when the policy says an officer acts, so a PIN never counts as a failure for an
        invite or terminal that could not use it anyway)."""
        center = detention.center if detention is not None else None
        session_case_id = None
        if isinstance(principal, InvitePrincipal):
            session_case_id = (await tx.session(principal.claims.session_id)).case_id
        who = document_actor(
            principal,
            case,
            center=center,
            session_case_id=session_case_id,
            names_officer=bool(officer or pin),
        )
        if who.needs_pin:
            who = who.confirmed(await self.clerk.officer_by_pin(officer, pin, center=center))
        return who

    async def inboxes(self, tx: Records, principal: Principal) -> list[str]:
        """The inboxes ``principal`` reads (policy.inboxes_of)."""
        session_case_id = None
        if isinstance(principal, InvitePrincipal):
            session_case_id = (await tx.session(principal.claims.session_id)).case_id
        return inboxes_of(principal, session_case_id=session_case_id)

    async def terminals_at(self, tx: Records, center: str) -> list[str]:
        """The inboxes of the working terminals of a detention center."""
        return [
            f"terminal:{t.id}"
            for t in await tx.terminals()
            if t.center == center and not t.disabled
        ]

    async def number(self, tx: Records, case: Case) -> str:
        """The next document number of a case: (2021)苏0903执1234号之三."""
        return f"{case.number}之{chinese_number(await tx.count_documents(case.id) + 1)}"

    # Writing ----------------------------------------------------------------------------

    async def seal(self, document: Document, template: str, context: dict[str, Any]) -> Sealed:
        """Render ``template`` to the sealed PDF of ``document``: the document with its file's
        hash, size, name and signing key, and the file, not stored yet (``keep``). Called
        outside any write transaction: rendering takes a second and the database is not held
        meanwhile."""
        pdf, kid = await self.printer.print(template, context, document_id=document.id)
        document = replace(
            document,
            sha256=sha256_of(pdf),
            size=len(pdf),
            file_name=f"{document.number}.pdf",
            signed_by=kid,
        )
        return Sealed(document, pdf)

    async def keep(self, sealed: Sealed) -> Document:
        """Store a sealed file under its document's id. Steps call it last in their write
        transaction, once ``lock`` has won the race: files are kept by document id, so a step
        that stored its file before knowing it won (two 发出 clicks at once) would replace the
        winner's file with one whose hash nobody recorded, and every recipient's hash check
        would fail for good. The file is whole on disk before the commit; a commit that fails
        after it leaves that document's file replaced by the refused step's, which the next
        try of the step replaces again."""
        await self.files.put(sealed.document.id, sealed.pdf)
        return sealed.document

    async def step(
        self,
        tx: Records,
        document: Document,
        action: DocAction,
        who: Who,
        at: datetime,
        *,
        data: dict[str, Any] | None = None,
        officer_id: str | None = None,
        receipt_id: str | None = None,
    ) -> None:
        """Append ``action`` to the document's history, at the state ``document`` is now in."""
        await tx.add_step(
            document.id,
            action=str(action),
            state=str(document.state),
            actor=who.name,
            at=at,
            officer_id=officer_id,
            data=data,
            receipt_id=receipt_id,
        )

    async def audit(
        self, tx: Records, who: Who, kind: AuditKind, document: Document, **data: Any
    ) -> None:
        """The audit event of a step, in the step's transaction."""
        await self.auditor.record(
            tx,
            kind,
            who.name,
            case_id=document.case_id,
            data={
                "document": document.id,
                "kind": str(document.kind),
                "number": document.number,
                # The record's state and file after this step: audit verify compares them with
                # the documents table, so an edited row is caught (``reconcile``).
                "state": str(document.state),
                "file_sha256": document.sha256,
                **data,
            },
        )

    async def deliver_to(
        self, tx: Records, document: Document, recipients: Sequence[str], now: datetime
    ) -> list[InboxItem]:
        """Put ``document`` in each inbox once; the items new to an inbox."""
        items = []
        for recipient in dict.fromkeys(recipients):
            item = InboxItem(
                id=new_id(), document_id=document.id, recipient=recipient, created_at=now
            )
            if await tx.add_item(item):
                items.append(item)
        return items

    # After commit -----------------------------------------------------------------------

    async def push(self, document: Document, items: Sequence[InboxItem]) -> Document:
        """Tell the staff and every inbox holding the document that it changed; push new items.
        Returns the document as stored, with all its steps (what callers answer with)."""
        async with self.store.read() as tx:
            holders = [i.recipient for i in await tx.items(document_id=document.id)]
            document = await tx.document(document.id)  # with its steps
        new = {i.recipient for i in items}
        await self.notifier.changed(document, [r for r in holders if r not in new])
        for item in items:
            await self.notifier.delivered(item, document)
        return document
