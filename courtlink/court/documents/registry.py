"""The Registry (收发室): documents from draft to proof of execution.

One facade over the parts, so callers (web/, signaling/, cli/, bench/) see one object:

- orders.py: renewal and release orders, from draft to the officer's steps, with receipts;
- settlement.py: settlement agreements, drafted; transcripts.py: session transcripts, drafted
  and saved until the first signature; signing.py: both signed by the parties, confirmed;
- payments.py: payment proofs; uploads.py: files added to a case;
- delivery.py: inboxes, fetching (hash-checked), sending on, the overdue watch;
- reading.py: reading documents and their files; reconcile.py: documents against the audit chain.

Every step follows one template (steps.py): read and resolve who acts (policy.document_actor),
check the rights table (lifecycle.check_step), render and seal *before* the write transaction,
commit state, step, receipt, inbox items and audit events in one transaction (a lost race is a
``Conflict``), push after commit. Rendering, sealing, file storage and live notification are
ports (ports.py) implemented in papers/ and signaling/.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from courtlink.clock import Clock, system_clock
from courtlink.court.auditor import Auditor
from courtlink.court.clerk import Clerk
from courtlink.court.documents.delivery import Delivery
from courtlink.court.documents.desk import Desk, RegistryRules, chinese_number
from courtlink.court.documents.lifecycle import DocAction, DocKind, Document, InboxItem
from courtlink.court.documents.orders import Orders
from courtlink.court.documents.payments import Payments
from courtlink.court.documents.ports import FileStore, Notifier, Printer, Silent
from courtlink.court.documents.reading import Reading
from courtlink.court.documents.reconcile import reconcile
from courtlink.court.documents.settlement import Settlements
from courtlink.court.documents.signing import Signing
from courtlink.court.documents.transcripts import Transcripts
from courtlink.court.documents.uploads import Uploads
from courtlink.court.policy import Principal
from courtlink.storage import Store

__all__ = ["FileStore", "Notifier", "Printer", "Registry", "RegistryRules", "chinese_number"]


class Registry:
    """Documents from draft to proof of execution: every step checked, sealed, recorded."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        clerk: Clerk,
        printer: Printer,
        files: FileStore,
        *,
        notifier: Notifier | None = None,
        rules: RegistryRules | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.desk = Desk(
            store,
            auditor,
            clerk,
            printer,
            files,
            notifier or Silent(),
            rules or RegistryRules(),
            clock,
        )
        self.orders = Orders(self.desk)
        self.settlements = Settlements(self.desk)
        self.transcripts = Transcripts(self.desk)
        self.signing = Signing(self.desk)
        self.payments = Payments(self.desk)
        self.uploads = Uploads(self.desk)
        self.delivery = Delivery(self.desk)
        self.reading = Reading(self.desk)

    # The shared ports: read here, replaced here (the app installs its notifier after start-up,
    # tests wrap the printer); every part sees the change, as they share the one Desk.

    @property
    def store(self) -> Store:
        """The database."""
        return self.desk.store

    @property
    def auditor(self) -> Auditor:
        """The audit writer."""
        return self.desk.auditor

    @property
    def clerk(self) -> Clerk:
        """Checks officers' PINs."""
        return self.desk.clerk

    @property
    def rules(self) -> RegistryRules:
        """The limits in force."""
        return self.desk.rules

    @property
    def clock(self) -> Clock:
        """The clock every step reads."""
        return self.desk.clock

    @property
    def printer(self) -> Printer:
        """Renders and seals documents."""
        return self.desk.printer

    @printer.setter
    def printer(self, printer: Printer) -> None:
        self.desk.printer = printer

    @property
    def files(self) -> FileStore:
        """Where documents' files are kept."""
        return self.desk.files

    @files.setter
    def files(self, files: FileStore) -> None:
        self.desk.files = files

    @property
    def notifier(self) -> Notifier:
        """Tells connected screens about changes."""
        return self.desk.notifier

    @notifier.setter
    def notifier(self, notifier: Notifier) -> None:
        self.desk.notifier = notifier

    # Reading ----------------------------------------------------------------------------

    async def read(self, principal: Principal, document_id: str) -> Document:
        """The document, for a named recipient of it or whoever the rights table lets read."""
        return await self.reading.read(principal, document_id)

    async def file(self, principal: Principal, document_id: str) -> tuple[Document, bytes]:
        """The document and its file, for whoever may read it."""
        return await self.reading.file(principal, document_id)

    async def documents(
        self, principal: Principal, case_ids: Sequence[str] | None = None
    ) -> list[Document]:
        """Documents of cases, for court staff (judges see every case's, like cases)."""
        return await self.reading.documents(principal, case_ids)

    async def actions(
        self, principal: Principal, documents: Sequence[Document], wanted: Iterable[DocAction]
    ) -> dict[str, frozenset[DocAction]]:
        """Which of ``wanted`` court staff may do now to each document (the page's buttons)."""
        return await self.reading.actions(principal, documents, wanted)

    async def find(self, document_id: str) -> Document:
        """A document's record without access checks (the public /verify page)."""
        return await self.reading.find(document_id)

    # Orders -----------------------------------------------------------------------------

    async def draft_order(
        self,
        principal: Principal,
        *,
        kind: DocKind,
        detention_id: str,
        reason: str,
        days: int | None = None,
    ) -> Document:
        """The judge drafts a renewal or release order."""
        return await self.orders.draft(
            principal, kind=kind, detention_id=detention_id, reason=reason, days=days
        )

    async def approve(self, principal: Principal, document_id: str) -> Document:
        """The approver approves a drafted order."""
        return await self.orders.approve(principal, document_id)

    async def issue(self, principal: Principal, document_id: str) -> Document:
        """The judge issues an approved order: sealed, to the detention center's inboxes."""
        return await self.orders.issue(principal, document_id)

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
        """An officer, named by their PIN, acknowledges, serves, executes or refuses an order."""
        return await self.orders.officer_step(
            principal,
            document_id,
            action,
            officer=officer,
            pin=pin,
            reason=reason,
            signature_png=signature_png,
            at=at,
        )

    # Settlement agreements --------------------------------------------------------------

    async def draft_settlement(
        self, principal: Principal, *, case_id: str, terms: str, amount_fen: int, due: str = ""
    ) -> Document:
        """The judge writes the agreement; debtor and creditor receive a preview to sign."""
        return await self.settlements.draft(
            principal, case_id=case_id, terms=terms, amount_fen=amount_fen, due=due
        )

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
        """A party signs an agreement or a transcript on screen (at a terminal, confirmed by an
        officer); a transcript's ``version`` is the one the party read."""
        return await self.signing.sign(
            principal, document_id, signature_png, officer=officer, pin=pin, version=version
        )

    async def confirm(self, principal: Principal, document_id: str) -> Document:
        """The judge confirms a signed agreement or transcript; the sealed copy goes to every
        party."""
        return await self.signing.confirm(principal, document_id)

    # Transcripts ------------------------------------------------------------------------

    async def draft_transcript(
        self, principal: Principal, *, session_id: str, text: str
    ) -> Document:
        """The clerk (or the case's judge) starts a session's transcript; the parties receive
        a preview."""
        return await self.transcripts.draft(principal, session_id=session_id, text=text)

    async def save_transcript(self, principal: Principal, document_id: str, text: str) -> Document:
        """The transcript's text again, while nobody signed it (the same text changes nothing)."""
        return await self.transcripts.save(principal, document_id, text)

    # Payments and uploads ---------------------------------------------------------------

    async def confirm_payment(
        self, principal: Principal, *, case_id: str, amount_fen: int, note: str = ""
    ) -> Document:
        """The creditor confirms money received: a 收款确认书, and the case's amount paid rises."""
        return await self.payments.confirm(
            principal, case_id=case_id, amount_fen=amount_fen, note=note
        )

    async def upload(
        self, principal: Principal, *, case_id: str, data: bytes, media_type: str, file_name: str
    ) -> Document:
        """A checked upload (web/ parses the whole file first)."""
        return await self.uploads.upload(
            principal, case_id=case_id, data=data, media_type=media_type, file_name=file_name
        )

    # Delivery ---------------------------------------------------------------------------

    async def inbox(self, principal: Principal) -> list[tuple[InboxItem, Document]]:
        """The items in the inboxes ``principal`` reads, with their documents."""
        return await self.delivery.inbox(principal)

    async def received(self, principal: Principal, item_id: str, sha256: str) -> InboxItem:
        """The recipient fetched the file and reports its hash; for an issued order at the
        detention center, a match is its delivery."""
        return await self.delivery.received(principal, item_id, sha256)

    async def share(
        self, principal: Principal, document_id: str, recipients: Sequence[str]
    ) -> list[InboxItem]:
        """The judge sends an existing document (an upload, a receipt) to more inboxes."""
        return await self.delivery.share(principal, document_id, recipients)

    async def report_overdue(self) -> list[InboxItem]:
        """Orders not acknowledged in time: tell the judge (once per item) and record it."""
        return await self.delivery.report_overdue()

    # The audit chain --------------------------------------------------------------------

    async def reconcile(self) -> list[tuple[str, str]]:
        """Every document row against the last audit event about it: (document id, problem)."""
        return await reconcile(self.desk.store)
