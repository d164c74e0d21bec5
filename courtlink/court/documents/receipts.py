"""Receipts (回执): the sealed proof of each step an order takes after it is issued:
delivered (文书接收回执), acknowledged (签收回执), served (送达回证), executed (执行回执) or
refused (拒收回执).

A receipt is printed and sealed before the step's write transaction (``print_receipt``, in the
step's ``prepare``); ``advance`` then records the step and its receipt in the transaction, and
puts the receipt in the judge's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from courtlink.clock import new_id
from courtlink.court.audit import AuditKind
from courtlink.court.cases import Case
from courtlink.court.detentions import Detention
from courtlink.court.documents.desk import Desk, sha256_of
from courtlink.court.documents.lifecycle import DocAction, DocKind, DocState, Document, check_step
from courtlink.court.policy import Who
from courtlink.storage import Records

__all__ = ["PAST", "RECEIPT_TITLES", "Printed", "advance", "print_receipt"]

RECEIPT_TITLES = {
    DocAction.DELIVER: "文书接收回执",
    DocAction.ACKNOWLEDGE: "签收回执",
    DocAction.SERVE: "送达回证",
    DocAction.EXECUTE: "执行回执",
    DocAction.REFUSE: "拒收回执",
}

# The audit event of each step that leaves a receipt.
PAST = {
    DocAction.DELIVER: AuditKind.DOCUMENT_DELIVERED,
    DocAction.ACKNOWLEDGE: AuditKind.DOCUMENT_ACKNOWLEDGED,
    DocAction.SERVE: AuditKind.DOCUMENT_SERVED,
    DocAction.EXECUTE: AuditKind.DOCUMENT_EXECUTED,
    DocAction.REFUSE: AuditKind.DOCUMENT_REFUSED,
}


def receipt_title(action: DocAction) -> str:
    """The receipt's title for a step (回执 for a step without its own)."""
    return RECEIPT_TITLES.get(action, "回执")


@dataclass(frozen=True, slots=True)
class Printed:
    """A rendered, sealed and stored PDF, waiting for its record."""

    id: str
    pdf: bytes
    kid: str | None


async def print_receipt(
    desk: Desk,
    document: Document,
    case: Case,
    detention: Detention | None,
    action: DocAction,
    now: datetime,
    *,
    who_name: str,
    extra: dict[str, Any],
) -> Printed:
    """Render, seal and store the receipt of ``action`` on ``document`` (outside any write
    transaction); its record is written by ``advance``."""
    receipt_id = new_id()
    context = {
        "receipt_id": receipt_id,
        "document": document,
        "case": case,
        "detention": detention,
        "action": str(action),
        "title": receipt_title(action),
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
    pdf, kid = await desk.printer.print(template, context, document_id=receipt_id)
    await desk.files.put(receipt_id, pdf)
    return Printed(receipt_id, pdf, kid)


async def advance(
    desk: Desk,
    tx: Records,
    document: Document,
    case: Case,
    action: DocAction,
    who: Who,
    now: datetime,
    receipt: Printed,
    data: dict[str, Any],
) -> Document:
    """Take ``action`` on ``document`` (as locked in ``tx``): its new state, the receipt's
    record, the step naming the receipt, both audit events, and the receipt in the judge's
    inbox. Returns the document in its new state."""
    state = check_step(document.kind, document.state, action, who.actor)
    updated = replace(document, state=state, updated_at=now)
    await tx.save_document(updated)
    receipt_doc = await _store_receipt(desk, tx, document, case, action, who, now, receipt)
    await desk.step(
        tx,
        updated,
        action,
        who,
        now,
        officer_id=who.officer_id,
        data=data,
        receipt_id=receipt_doc.id,
    )
    await desk.audit(tx, who, PAST[action], updated, receipt=receipt_doc.id, **data)
    await desk.deliver_to(tx, receipt_doc, [f"account:{case.judge_id}"], now)
    return updated


async def _store_receipt(
    desk: Desk,
    tx: Records,
    document: Document,
    case: Case,
    action: DocAction,
    who: Who,
    now: datetime,
    receipt: Printed,
) -> Document:
    pdf = receipt.pdf
    title = receipt_title(action)
    receipt_doc = Document(
        id=receipt.id,
        case_id=case.id,
        kind=DocKind.RECEIPT,
        state=DocState.FINAL,
        number=f"{document.number}·{title}·{now.strftime('%Y%m%d%H%M%S%f')}",
        title=title,
        fields={"action": str(action), "of": document.id},
        created_by=who.name,
        created_at=now,
        updated_at=now,
        detention_id=document.detention_id,
        parent_id=document.id,
        sha256=sha256_of(pdf),
        size=len(pdf),
        file_name=f"{title}-{document.number}.pdf",
        signed_by=receipt.kid,
    )
    await tx.add_document(receipt_doc)
    await desk.audit(
        tx, who, AuditKind.DOCUMENT_RECEIPT_ISSUED, receipt_doc, of=document.id, key=receipt.kid
    )
    return receipt_doc
