"""The Registry (收发室): documents from draft to proof of execution.

Every step checks the document's rights table (rooms/documents.py), renders and seals what it
produces *before* its write transaction (rendering takes a second; the database is not held
meanwhile) and then commits, in one transaction, the new state, the step, the receipt, the
inbox items and the audit events. A step whose document changed in between is refused
(``conflict``) and leaves nothing behind but an unreferenced file.

Rendering, sealing, file storage and live notification are ports (``Printer``, ``FileStore``,
``Notifier``) implemented in web/ and signaling/.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from courtlink.clock import Clock, new_id, system_clock
from courtlink.court.auditor import Auditor
from courtlink.court.cases import Case
from courtlink.court.clerk import Clerk
from courtlink.court.detentions import Detention, check_period_days
from courtlink.court.documents.lifecycle import (
    ORDER_KINDS,
    Actor,
    DocAction,
    DocKind,
    DocState,
    Document,
    InboxItem,
    check_step,
)
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal, TerminalPrincipal
from courtlink.court.seats import AccountRole, Seat
from courtlink.errors import Conflict, Forbidden, InvalidInput, NotFound
from courtlink.storage import Records, Store

__all__ = ["FileStore", "Notifier", "Printer", "Registry", "RegistryRules"]

_DIGITS = "零一二三四五六七八九"


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


class Printer(Protocol):
    """Turns a document into a sealed PDF (web/documents: Jinja2, WeasyPrint, pyHanko)."""

    async def print(
        self, template: str, context: dict[str, Any], *, document_id: str, seal: bool = True
    ) -> tuple[bytes, str | None]:
        """(PDF bytes, key id of the court seal or None when unsealed)."""


class FileStore(Protocol):
    async def put(self, document_id: str, data: bytes) -> None:
        """Store durably (written and synced before this returns)."""

    async def get(self, document_id: str) -> bytes: ...


class Notifier(Protocol):
    """Pushes changes to whoever is connected (signaling/)."""

    async def changed(self, document: Document, recipients: Sequence[str]) -> None: ...

    async def delivered(self, item: InboxItem, document: Document) -> None: ...

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None: ...


class _Silent:
    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        return None

    async def delivered(self, item: InboxItem, document: Document) -> None:
        return None

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RegistryRules:
    max_period_days: int = 15
    ack_timeout_seconds: float = 900
    max_upload_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Who:
    """A principal as the rights table sees it, for one case."""

    actor: Actor
    name: str  # audit actor
    seat: Seat | None = None
    officer_id: str | None = None
    terminal_id: str | None = None


TITLES = {
    DocKind.RENEWAL: "续拘决定书",
    DocKind.RELEASE: "提前解除拘留决定书",
    DocKind.SETTLEMENT: "执行和解协议",
    DocKind.PAYMENT_PROOF: "收款确认书",
}
RECEIPT_TITLES = {
    DocAction.DELIVER: "文书接收回执",
    DocAction.ACKNOWLEDGE: "签收回执",
    DocAction.SERVE: "送达回证",
    DocAction.EXECUTE: "执行回执",
    DocAction.REFUSE: "拒收回执",
}


PAST = {
    DocAction.DRAFT: "drafted",
    DocAction.APPROVE: "approved",
    DocAction.ISSUE: "issued",
    DocAction.DELIVER: "delivered",
    DocAction.ACKNOWLEDGE: "acknowledged",
    DocAction.SERVE: "served",
    DocAction.EXECUTE: "executed",
    DocAction.REFUSE: "refused",
    DocAction.SIGN: "signed",
    DocAction.CONFIRM: "confirmed",
    DocAction.UPLOAD: "uploaded",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Printed:
    """A rendered, sealed and stored PDF, waiting for its record."""

    id: str
    pdf: bytes
    kid: str | None


class Registry:
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
        self.store = store
        self.auditor = auditor
        self.clerk = clerk
        self.printer = printer
        self.files = files
        self.notifier: Notifier = notifier or _Silent()
        self.rules = rules or RegistryRules()
        self.clock = clock

    # Who is acting ----------------------------------------------------------------------

    async def _who(
        self,
        tx: Records,
        principal: Principal,
        case: Case,
        detention: Detention | None,
        *,
        officer: str | None = None,
        pin: str | None = None,
    ) -> Who:
        center = detention.center if detention is not None else None
        match principal:
            case AccountPrincipal(account=account):
                if account.disabled:
                    return Who(Actor.OTHER, account.actor)
                if account.role is AccountRole.JUDGE and case.judge_id == account.id:
                    return Who(Actor.JUDGE, account.actor)
                if account.role is AccountRole.APPROVER:
                    return Who(Actor.APPROVER, account.actor)
                if (
                    account.role is AccountRole.OFFICER
                    and center is not None
                    and account.center == center
                ):
                    return Who(Actor.OFFICER, account.actor, officer_id=account.id)
                return Who(Actor.OTHER, account.actor)
            case InvitePrincipal(claims=claims):
                session = await tx.session(claims.session_id)
                if session.case_id != case.id:
                    return Who(Actor.OTHER, principal.actor)
                seats = claims.seats
                if Seat.OFFICER in seats and (officer or pin):
                    officer_id = await self.clerk.officer_by_pin(officer, pin, center=center)
                    return Who(Actor.OFFICER, f"officer:{officer_id}", Seat.OFFICER, officer_id)
                if Seat.CREDITOR in seats:
                    return Who(Actor.CREDITOR, principal.actor, Seat.CREDITOR)
                if Seat.DEBTOR in seats:
                    return Who(Actor.DEBTOR, principal.actor, Seat.DEBTOR)
                if Seat.OFFICER in seats:
                    return Who(Actor.TERMINAL, principal.actor, Seat.OFFICER)
                return Who(Actor.OTHER, principal.actor)
            case TerminalPrincipal(terminal=terminal):
                if terminal.disabled or center is None or terminal.center != center:
                    return Who(Actor.OTHER, terminal.actor)
                if officer or pin:
                    officer_id = await self.clerk.officer_by_pin(officer, pin, center=center)
                    return Who(
                        Actor.OFFICER, f"officer:{officer_id}", None, officer_id, terminal.id
                    )
                return Who(Actor.TERMINAL, terminal.actor, None, None, terminal.id)
        return Who(Actor.OTHER, "unknown")  # pragma: no cover

    async def _context(
        self, tx: Records, document_id: str
    ) -> tuple[Document, Case, Detention | None]:
        document = await tx.document(document_id)
        case = await tx.case(document.case_id)
        detention = await tx.detention(document.detention_id) if document.detention_id else None
        return document, case, detention

    async def _terminals_at(self, tx: Records, center: str) -> list[str]:
        return [
            f"terminal:{t.id}"
            for t in await tx.terminals()
            if t.center == center and not t.disabled
        ]

    async def _number(self, tx: Records, case: Case) -> str:
        return f"{case.number}之{chinese_number(await tx.count_documents(case.id) + 1)}"

    async def _audit(
        self, tx: Records, who: Who, action: str, document: Document, **data: Any
    ) -> None:
        await self.auditor.record(
            tx,
            f"document.{action}",
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

    # Reading ----------------------------------------------------------------------------

    async def read(self, principal: Principal, document_id: str) -> Document:
        async with self.store.read() as tx:
            document, case, detention = await self._context(tx, document_id)
            who = await self._who(tx, principal, case, detention)
            recipients = await self._recipients_of(tx, principal)
            items = await tx.items(document_id=document.id)
        if not any(item.recipient in recipients for item in items):
            check_step(document.kind, document.state, DocAction.READ, who.actor)
        return document

    async def file(self, principal: Principal, document_id: str) -> tuple[Document, bytes]:
        document = await self.read(principal, document_id)
        if document.sha256 is None:
            raise Conflict("this document has no file yet")
        return document, await self.files.get(document.id)

    async def _recipients_of(self, tx: Records, principal: Principal) -> list[str]:
        """The inboxes ``principal`` may read."""
        match principal:
            case AccountPrincipal(account=account):
                return [f"account:{account.id}"]
            case InvitePrincipal(claims=claims):
                session = await tx.session(claims.session_id)
                return [f"seat:{session.case_id}:{seat}" for seat in claims.seats]
            case TerminalPrincipal(terminal=terminal):
                return [f"terminal:{terminal.id}"]
        return []

    async def inbox(self, principal: Principal) -> list[tuple[InboxItem, Document]]:
        async with self.store.read() as tx:
            recipients = await self._recipients_of(tx, principal)
            items = await tx.items(recipients=recipients)
            return [(item, await tx.document(item.document_id)) for item in items]

    async def documents(
        self, principal: Principal, case_ids: Sequence[str] | None = None
    ) -> list[Document]:
        """Documents of cases, for court staff (judges see every case's, like cases)."""
        if (
            not isinstance(principal, AccountPrincipal)
            or principal.account.role is AccountRole.OFFICER
        ):
            raise Forbidden("only court staff list documents")
        async with self.store.read() as tx:
            return await tx.documents(case_ids=case_ids)

    # Orders: draft, approve, issue ----------------------------------------------------------

    async def draft_order(
        self,
        principal: Principal,
        *,
        kind: DocKind,
        detention_id: str,
        reason: str,
        days: int | None = None,
    ) -> Document:
        if kind not in ORDER_KINDS:
            raise InvalidInput("kind must be renewal or release")
        reason = reason.strip()
        if not 1 <= len(reason) <= 2000:
            raise InvalidInput("reason: 1 to 2000 characters")
        async with self.store.write() as tx:
            detention = await tx.detention(detention_id)
            case = await tx.case(detention.case_id)
            who = await self._who(tx, principal, case, detention)
            state = check_step(kind, None, DocAction.DRAFT, who.actor)
            now = self.clock()
            if detention.status(now).value != "active":
                raise Conflict(f"the detention is {detention.status(now)}")
            fields: dict[str, Any] = {"reason": reason}
            if kind is DocKind.RENEWAL:
                if days is None:
                    raise InvalidInput("days: a renewal needs its length")
                fields["days"] = check_period_days(days, self.rules.max_period_days)
                fields["from"] = detention.ends_at.isoformat()
            document = Document(
                id=new_id(),
                case_id=case.id,
                detention_id=detention.id,
                kind=kind,
                state=state,
                number=await self._number(tx, case),
                title=TITLES[kind],
                fields=fields,
                created_by=who.name,
                created_at=now,
                updated_at=now,
            )
            await tx.add_document(document)
            await tx.add_step(
                document.id, action="draft", state=str(state), actor=who.name, at=now, data=fields
            )
            await self._audit(tx, who, "drafted", document, fields=fields)
        return await self._push(document, ())

    async def approve(self, principal: Principal, document_id: str) -> Document:
        return await self._simple(principal, document_id, DocAction.APPROVE, "approved")

    async def _simple(
        self, principal: Principal, document_id: str, action: DocAction, word: str
    ) -> Document:
        async with self.store.write() as tx:
            document, case, detention = await self._context(tx, document_id)
            who = await self._who(tx, principal, case, detention)
            state = check_step(document.kind, document.state, action, who.actor)
            now = self.clock()
            updated = replace(document, state=state, updated_at=now)
            await tx.save_document(updated)
            await tx.add_step(
                document.id, action=str(action), state=str(state), actor=who.name, at=now
            )
            await self._audit(tx, who, word, updated)
        return await self._push(updated, ())

    async def issue(self, principal: Principal, document_id: str) -> Document:
        """Render, seal and store the order, then put it in the inboxes of the detention
        center's terminals and of the case's officer seat, and push it to them."""
        async with self.store.read() as tx:
            document, case, detention = await self._context(tx, document_id)
            who = await self._who(tx, principal, case, detention)
        state = check_step(document.kind, document.state, DocAction.ISSUE, who.actor)
        assert detention is not None
        now = self.clock()
        issued = await self._seal(
            replace(document, state=state, updated_at=now),
            str(document.kind),
            self._order_context(document, case, detention, now),
        )
        async with self.store.write() as tx:
            await self._unchanged(tx, document)
            await tx.save_document(issued)
            await tx.add_step(
                document.id,
                action="issue",
                state=str(state),
                actor=who.name,
                at=now,
                data={"sha256": issued.sha256},
            )
            await self._audit(tx, who, "issued", issued, sha256=issued.sha256, key=issued.signed_by)
            recipients = [
                *await self._terminals_at(tx, detention.center),
                f"seat:{case.id}:{Seat.OFFICER}",
            ]
            items = await self._deliver_to(tx, issued, recipients, now)
        return await self._push(issued, items)

    async def _seal(self, document: Document, template: str, context: dict[str, Any]) -> Document:
        """Render ``template`` to the sealed PDF of ``document``, store it, and return the
        document with its file's hash, size, name and signing key."""
        pdf, kid = await self.printer.print(template, context, document_id=document.id)
        await self.files.put(document.id, pdf)
        return replace(
            document,
            sha256=_sha256(pdf),
            size=len(pdf),
            file_name=f"{document.number}.pdf",
            signed_by=kid,
        )

    @staticmethod
    async def _unchanged(tx: Records, document: Document) -> Document:
        """The stored document, locked for this transaction; Conflict when its state moved on
        since ``document`` was read (another step won the race)."""
        current = await tx.document(document.id, for_update=True)
        if current.state is not document.state:
            raise Conflict("the document changed meanwhile; reload")
        return current

    def _order_context(
        self, document: Document, case: Case, detention: Detention, now: datetime
    ) -> dict[str, Any]:
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

    async def _deliver_to(
        self, tx: Records, document: Document, recipients: Sequence[str], now: datetime
    ) -> list[InboxItem]:
        items = []
        for recipient in dict.fromkeys(recipients):
            item = InboxItem(
                id=new_id(), document_id=document.id, recipient=recipient, created_at=now
            )
            if await tx.add_item(item):
                items.append(item)
        return items

    async def _push(self, document: Document, items: Sequence[InboxItem]) -> Document:
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

    # Delivery and the officer's steps ---------------------------------------------------------

    async def received(self, principal: Principal, item_id: str, sha256: str) -> InboxItem:
        """The recipient's client fetched the file and computed its hash. A match marks the item
        received; for an order at a terminal (or the officer's seat) it is the delivery."""
        sha256 = sha256.strip().lower()
        async with self.store.read() as tx:
            item = await tx.item(item_id)
            if item.recipient not in await self._recipients_of(tx, principal):
                raise Forbidden("this item is in another inbox")
            document, case, detention = await self._context(tx, item.document_id)
        if document.sha256 is None or sha256 != document.sha256:
            raise InvalidInput(
                "the file's hash does not match the document; fetch it again", code="hash_mismatch"
            )
        now = self.clock()
        receipt: Printed | None = None
        delivering = document.kind in ORDER_KINDS and document.state is DocState.ISSUED
        if delivering:
            assert detention is not None
            receipt = await self._print_receipt(
                document, case, detention, DocAction.DELIVER, now, who_name=item.recipient, extra={}
            )
        async with self.store.write() as tx:
            # The document as it is now: another recipient may have delivered it meanwhile (all
            # terminals of a center fetch at once), and the audit event must record the row's
            # present state, or reconcile would take the row for an edited one.
            current = await tx.document(document.id, for_update=True)
            if current.sha256 != sha256:
                raise InvalidInput(
                    "the document's file changed meanwhile; fetch it again", code="hash_mismatch"
                )
            await tx.mark_item(item.id, fetched_at=now)
            who = Who(Actor.TERMINAL, item.recipient)
            await self._audit(tx, who, "fetched", current, item=item.id, recipient=item.recipient)
            updated = current
            if delivering and receipt is not None and current.state is DocState.ISSUED:
                updated = await self._advance(
                    tx,
                    current,
                    case,
                    DocAction.DELIVER,
                    who,
                    now,
                    receipt,
                    {"recipient": item.recipient},
                )
        if updated is not current:
            await self._push(updated, [])
        return replace(item, fetched_at=now)

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
        if action not in (
            DocAction.ACKNOWLEDGE,
            DocAction.SERVE,
            DocAction.EXECUTE,
            DocAction.REFUSE,
        ):
            raise InvalidInput(f"{action} is not an officer's step")
        if action is DocAction.REFUSE and not 1 <= len(reason.strip()) <= 1000:
            raise InvalidInput("reason: say why (1 to 1000 characters)")
        if action is DocAction.SERVE and not signature_png:
            raise InvalidInput("the detainee signs the receipt of service on screen first")
        async with self.store.read() as tx:
            document, case, detention = await self._context(tx, document_id)
            if not (officer and pin):
                raise Forbidden("an officer confirms with their name and PIN")
            who = await self._who(tx, principal, case, detention, officer=officer, pin=pin)
            officer_account = await tx.account(who.officer_id) if who.officer_id else None
        check_step(document.kind, document.state, action, who.actor)
        assert detention is not None
        now = self.clock()
        when = at or now
        extra: dict[str, Any] = {
            "officer": officer_account.display_name if officer_account else "",
            "reason": reason.strip(),
        }
        if action is DocAction.SERVE:
            delivered = next((s for s in document.steps if s["action"] == "deliver"), None)
            # 送达回证: the date of service is when the order reached the detention center.
            extra["served_at"] = delivered["at"] if delivered else now.isoformat()
            extra["signature_png"] = signature_png
        if action is DocAction.EXECUTE:
            extra["executed_at"] = when.isoformat()
        receipt = await self._print_receipt(
            document, case, detention, action, now, who_name=who.name, extra=extra
        )
        async with self.store.write() as tx:
            current = await self._unchanged(tx, document)
            data = {k: v for k, v in extra.items() if k != "signature_png"}
            updated = await self._advance(tx, current, case, action, who, now, receipt, data)
            if action is DocAction.SERVE and signature_png:
                await tx.add_signature(
                    document.id, str(Seat.DEBTOR), signature_png, who.name, now, who.officer_id
                )
            if action is DocAction.ACKNOWLEDGE:
                for item in await tx.items(document_id=document.id):
                    await tx.mark_item(item.id, acknowledged_at=now)
            if action is DocAction.EXECUTE:
                await self._carry_out(tx, current, detention, when, who)
        return await self._push(updated, [])

    async def _carry_out(
        self, tx: Records, document: Document, detention: Detention, when: datetime, who: Who
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
            changed = fresh.renewed(int(document.fields["days"]), self.rules.max_period_days, when)
        await tx.save_detention(changed)
        await self.auditor.record(
            tx,
            "detention.changed",
            who.name,
            case_id=document.case_id,
            data={
                "detention": detention.id,
                "document": document.id,
                "released_at": None
                if changed.released_at is None
                else changed.released_at.isoformat(),
                "ends_at": changed.ends_at.isoformat(),
            },
        )

    async def _print_receipt(
        self,
        document: Document,
        case: Case,
        detention: Detention | None,
        action: DocAction,
        now: datetime,
        *,
        who_name: str,
        extra: dict[str, Any],
    ) -> Printed:
        receipt_id = new_id()
        context = {
            "receipt_id": receipt_id,
            "document": document,
            "case": case,
            "detention": detention,
            "action": str(action),
            "title": RECEIPT_TITLES.get(action, "回执"),
            "at": now,
            "actor": who_name,
            "officer": "",
            "reason": "",
            "executed_at": None,
            "served_at": None,
            "signature_png": None,
            **extra,
        }
        template = "service_receipt" if action is DocAction.SERVE else "receipt"
        pdf, kid = await self.printer.print(template, context, document_id=receipt_id)
        await self.files.put(receipt_id, pdf)
        return Printed(receipt_id, pdf, kid)

    async def _advance(
        self,
        tx: Records,
        document: Document,
        case: Case,
        action: DocAction,
        who: Who,
        now: datetime,
        receipt: Printed,
        data: dict[str, Any],
    ) -> Document:
        state = check_step(document.kind, document.state, action, who.actor)
        updated = replace(document, state=state, updated_at=now)
        await tx.save_document(updated)
        receipt_doc = await self._store_receipt(tx, document, case, action, who, now, receipt)
        await tx.add_step(
            document.id,
            action=str(action),
            state=str(state),
            actor=who.name,
            at=now,
            officer_id=who.officer_id,
            data=data,
            receipt_id=receipt_doc.id,
        )
        await self._audit(tx, who, PAST[action], updated, receipt=receipt_doc.id, **data)
        await self._deliver_to(tx, receipt_doc, [f"account:{case.judge_id}"], now)
        return updated

    async def _store_receipt(
        self,
        tx: Records,
        document: Document,
        case: Case,
        action: DocAction,
        who: Who,
        now: datetime,
        receipt: Printed,
    ) -> Document:
        pdf = receipt.pdf
        title = RECEIPT_TITLES.get(action, "回执")
        receipt_doc = Document(
            id=receipt.id,
            case_id=case.id,
            kind=DocKind.RECEIPT,
            state=DocState.FINAL,
            number=f"{document.number}·{title}·{now.strftime('%Y%m%d%H%M%S%f')}",
            title=RECEIPT_TITLES.get(action, "回执"),
            fields={"action": str(action), "of": document.id},
            created_by=who.name,
            created_at=now,
            updated_at=now,
            detention_id=document.detention_id,
            parent_id=document.id,
            sha256=_sha256(pdf),
            size=len(pdf),
            file_name=f"{RECEIPT_TITLES.get(action, '回执')}-{document.number}.pdf",
            signed_by=receipt.kid,
        )
        await tx.add_document(receipt_doc)
        await self._audit(tx, who, "receipt_issued", receipt_doc, of=document.id, key=receipt.kid)
        return receipt_doc

    # Settlement agreements ------------------------------------------------------------------

    async def draft_settlement(
        self, principal: Principal, *, case_id: str, terms: str, amount_fen: int, due: str = ""
    ) -> Document:
        """The judge writes the agreement; debtor and creditor receive a preview to sign."""
        terms = terms.strip()
        if not 1 <= len(terms) <= 5000:
            raise InvalidInput("terms: 1 to 5000 characters")
        if amount_fen <= 0:
            raise InvalidInput("amount: more than zero")
        async with self.store.read() as tx:
            case = await tx.case(case_id)
            detentions = [d for d in await tx.detentions(case_ids=[case.id])]
            who = await self._who(tx, principal, case, None)
        state = check_step(DocKind.SETTLEMENT, None, DocAction.DRAFT, who.actor)
        now = self.clock()
        document = Document(
            id=new_id(),
            case_id=case.id,
            kind=DocKind.SETTLEMENT,
            state=state,
            number="",
            title=TITLES[DocKind.SETTLEMENT],
            fields={"terms": terms, "amount_fen": amount_fen, "due": due.strip()[:200]},
            created_by=who.name,
            created_at=now,
            updated_at=now,
            detention_id=detentions[-1].id if detentions else None,
        )
        async with self.store.write() as tx:
            document = replace(document, number=await self._number(tx, case))
        pdf, _ = await self.printer.print(
            "settlement",
            {"document": document, "case": case, "signatures": {}, "issued_at": now, "draft": True},
            document_id=document.id,
            seal=False,
        )
        await self.files.put(document.id, pdf)
        document = replace(
            document, sha256=_sha256(pdf), size=len(pdf), file_name=f"{document.number}-草稿.pdf"
        )
        async with self.store.write() as tx:
            await tx.add_document(document)
            await tx.add_step(
                document.id,
                action="draft",
                state=str(state),
                actor=who.name,
                at=now,
                data=document.fields,
            )
            await self._audit(tx, who, "drafted", document, fields=document.fields)
            recipients = [f"seat:{case.id}:{Seat.DEBTOR}", f"seat:{case.id}:{Seat.CREDITOR}"]
            if document.detention_id:
                detention = await tx.detention(document.detention_id)
                recipients += await self._terminals_at(tx, detention.center)
            items = await self._deliver_to(tx, document, recipients, now)
        return await self._push(document, items)

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
        if not signature_png or len(signature_png) > 512 * 1024:
            raise InvalidInput("signature: a PNG of at most 512 KiB")
        async with self.store.read() as tx:
            document, case, detention = await self._context(tx, document_id)
            who = await self._who(tx, principal, case, detention, officer=officer, pin=pin)
        seat = who.seat
        if who.actor in (Actor.OFFICER, Actor.TERMINAL) and officer and pin:
            seat = Seat.DEBTOR
            who = replace(who, actor=Actor.DEBTOR)
        check_step(document.kind, document.state, DocAction.SIGN, who.actor)
        assert seat is not None
        now = self.clock()
        async with self.store.write() as tx:
            current = await tx.document(document.id, for_update=True)
            if current.state is not DocState.DRAFTED:
                raise Conflict("the agreement is no longer open for signing")
            await tx.add_signature(
                document.id, str(seat), signature_png, who.name, now, who.officer_id
            )
            signed = await tx.signatures(document.id)
            state = (
                DocState.SIGNED
                if {str(Seat.DEBTOR), str(Seat.CREDITOR)} <= set(signed)
                else DocState.DRAFTED
            )
            updated = replace(current, state=state, updated_at=now)
            await tx.save_document(updated)
            await tx.add_step(
                document.id,
                action="sign",
                state=str(state),
                actor=who.name,
                at=now,
                officer_id=who.officer_id,
                data={"seat": str(seat)},
            )
            await self._audit(
                tx, who, "signed", updated, seat=str(seat), signature_sha256=_sha256(signature_png)
            )
        return await self._push(updated, [])

    async def confirm(self, principal: Principal, document_id: str) -> Document:
        """The judge confirms the signed agreement: the final copy, with both signatures and the
        court's seal, goes to every party."""
        async with self.store.read() as tx:
            document, case, detention = await self._context(tx, document_id)
            who = await self._who(tx, principal, case, detention)
            signatures = await tx.signatures(document.id)
        state = check_step(document.kind, document.state, DocAction.CONFIRM, who.actor)
        now = self.clock()
        confirmed = await self._seal(
            replace(document, state=state, updated_at=now),
            "settlement",
            {
                "document": document,
                "case": case,
                "signatures": signatures,
                "issued_at": now,
                "draft": False,
            },
        )
        async with self.store.write() as tx:
            await self._unchanged(tx, document)
            await tx.save_document(confirmed)
            await tx.add_step(
                document.id,
                action="confirm",
                state=str(state),
                actor=who.name,
                at=now,
                data={"sha256": confirmed.sha256},
            )
            await self._audit(
                tx, who, "confirmed", confirmed, sha256=confirmed.sha256, key=confirmed.signed_by
            )
            recipients = [
                f"seat:{case.id}:{seat}" for seat in (Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR)
            ]
            if detention is not None:
                recipients += await self._terminals_at(tx, detention.center)
            # Everyone had the draft: the final copy must be fetched (and hash-checked) again.
            for item in await tx.items(document_id=document.id):
                await tx.mark_item(item.id, fetched_at=None)  # type: ignore[arg-type]
            items = await self._deliver_to(tx, confirmed, recipients, now)
        return await self._push(confirmed, items)

    # Payments and uploads -------------------------------------------------------------------

    async def confirm_payment(
        self, principal: Principal, *, case_id: str, amount_fen: int, note: str = ""
    ) -> Document:
        """The creditor confirms money received: a 收款确认书, and the case's amount paid rises."""
        if amount_fen <= 0:
            raise InvalidInput("amount: more than zero")
        async with self.store.read() as tx:
            case = await tx.case(case_id)
            who = await self._who(tx, principal, case, None)
        state = check_step(DocKind.PAYMENT_PROOF, None, DocAction.UPLOAD, who.actor)
        if amount_fen > case.amount_outstanding_fen:
            raise InvalidInput(f"amount: at most the outstanding {case.amount_outstanding_fen} fen")
        now = self.clock()
        document = Document(
            id=new_id(),
            case_id=case.id,
            kind=DocKind.PAYMENT_PROOF,
            state=state,
            number="",
            title=TITLES[DocKind.PAYMENT_PROOF],
            fields={"amount_fen": amount_fen, "note": note.strip()[:500]},
            created_by=who.name,
            created_at=now,
            updated_at=now,
        )
        async with self.store.read() as tx:
            document = replace(document, number=await self._number(tx, case))
        document = await self._seal(
            document, "payment", {"document": document, "case": case, "issued_at": now}
        )
        async with self.store.write() as tx:
            fresh = await tx.case(case.id)
            if amount_fen > fresh.amount_outstanding_fen:
                raise Conflict("the amount outstanding changed meanwhile; reload")
            await tx.add_document(document)
            await tx.set_amount_paid(case.id, fresh.amount_paid_fen + amount_fen)
            await tx.add_step(
                document.id,
                action="upload",
                state=str(state),
                actor=who.name,
                at=now,
                data=document.fields,
            )
            await self._audit(
                tx,
                who,
                "payment_confirmed",
                document,
                amount_fen=amount_fen,
                paid_fen=fresh.amount_paid_fen + amount_fen,
            )
            items = await self._deliver_to(
                tx, document, [f"account:{case.judge_id}", f"seat:{case.id}:{Seat.DEBTOR}"], now
            )
        return await self._push(document, items)

    async def upload(
        self, principal: Principal, *, case_id: str, data: bytes, media_type: str, file_name: str
    ) -> Document:
        """A checked upload (web/documents/uploads.py parses the whole file first)."""
        if len(data) > self.rules.max_upload_bytes:
            raise InvalidInput(
                f"file: at most {self.rules.max_upload_bytes // (1024 * 1024)} MB", code="too_large"
            )
        async with self.store.read() as tx:
            case = await tx.case(case_id)
            detentions = await tx.detentions(case_ids=[case.id])
            # An officer uploads for the detention center that holds the case's debtor (without
            # a detention no officer, account or PIN, would be recognized, despite the rights).
            who = await self._who(tx, principal, case, detentions[-1] if detentions else None)
        state = check_step(DocKind.UPLOAD, None, DocAction.UPLOAD, who.actor)
        now = self.clock()
        name = file_name.replace("/", "_").replace("\\", "_").strip()[:150] or "upload"
        document = Document(
            id=new_id(),
            case_id=case.id,
            kind=DocKind.UPLOAD,
            state=state,
            number="",
            title=name,
            fields={"uploaded_by_seat": None if who.seat is None else str(who.seat)},
            created_by=who.name,
            created_at=now,
            updated_at=now,
            sha256=_sha256(data),
            size=len(data),
            media_type=media_type,
            file_name=name,
        )
        await self.files.put(document.id, data)
        async with self.store.write() as tx:
            document = replace(document, number=f"{case.number}·附件·{document.id}")
            await tx.add_document(document)
            await tx.add_step(
                document.id,
                action="upload",
                state=str(state),
                actor=who.name,
                at=now,
                data={"sha256": document.sha256, "size": len(data)},
            )
            await self._audit(
                tx,
                who,
                "uploaded",
                document,
                sha256=document.sha256,
                size=len(data),
                media_type=media_type,
            )
            items = await self._deliver_to(tx, document, [f"account:{case.judge_id}"], now)
        return await self._push(document, items)

    async def share(
        self, principal: Principal, document_id: str, recipients: Sequence[str]
    ) -> list[InboxItem]:
        """The judge sends an existing document (an upload, a receipt) to more inboxes."""
        async with self.store.read() as tx:
            document, case, detention = await self._context(tx, document_id)
            who = await self._who(tx, principal, case, detention)
        if who.actor is not Actor.JUDGE:
            raise Forbidden("only the case's judge sends documents on")
        if document.sha256 is None:
            raise Conflict("this document has no file yet")
        allowed_prefixes = (f"seat:{case.id}:", "terminal:")
        if any(not r.startswith(allowed_prefixes) for r in recipients):
            raise InvalidInput("recipients: seats of this case or terminals")
        now = self.clock()
        async with self.store.write() as tx:
            # Audit the row as it is now (a step may have changed it since it was read above).
            document = await tx.document(document.id, for_update=True)
            items = await self._deliver_to(tx, document, recipients, now)
            await self._audit(tx, who, "shared", document, recipients=list(recipients))
        await self._push(document, items)
        return items

    # Watching -------------------------------------------------------------------------------

    async def report_overdue(self) -> list[InboxItem]:
        """Orders delivered to the detention center and not acknowledged in time: tell the
        judge (once per item) and record it."""
        now = self.clock()
        async with self.store.write() as tx:
            due = await tx.overdue_items(now - timedelta(seconds=self.rules.ack_timeout_seconds))
            reported = []
            for item in due:
                document = await tx.document(item.document_id)
                case = await tx.case(document.case_id)
                await tx.mark_item(item.id, alerted_at=now)
                await self._audit(
                    tx,
                    Who(Actor.OTHER, "system"),
                    "overdue",
                    document,
                    item=item.id,
                    recipient=item.recipient,
                )
                reported.append((item, document, case.judge_id))
        for item, document, judge_id in reported:
            await self.notifier.overdue(item, document, judge_id)
        return [item for item, _, _ in reported]

    async def reconcile(self) -> list[tuple[str, str]]:
        """Every document row against the last audit event about it: (document id, problem).

        Each step's audit event records the document's state and file hash after the step; a
        row edited behind the application's back no longer agrees with the chain (which itself
        is checked by ``Auditor.verify``)."""
        last: dict[str, dict[str, Any]] = {}
        async with self.store.read() as tx:
            async for event in tx.stream_audit():
                document_id = (
                    event.data.get("document") if event.kind.startswith("document.") else None
                )
                if isinstance(document_id, str) and "state" in event.data:
                    last[document_id] = event.data
            documents = await tx.documents()
        problems = []
        for document in documents:
            seen = last.get(document.id)
            if seen is None:
                problems.append(
                    (document.id, "no audit event records this document (row inserted)")
                )
                continue
            if seen["state"] != str(document.state):
                problems.append(
                    (
                        document.id,
                        f"state {document.state}, chain says {seen['state']} (row edited)",
                    )
                )
            if seen.get("file_sha256") != document.sha256:
                problems.append(
                    (document.id, "file hash differs from the audit chain (row edited)")
                )
        recorded = {d.id for d in documents}
        for document_id in last:
            if document_id not in recorded:
                problems.append(
                    (
                        document_id,
                        "the audit chain records this document but its row is gone (row deleted)",
                    )
                )
        return problems

    async def find(self, document_id: str) -> Document:
        """A document's record without access checks (the public /verify page shows only the
        fields that prove authenticity)."""
        async with self.store.read() as tx:
            try:
                return await tx.document(document_id)
            except NotFound:
                raise NotFound("no document with this id") from None
