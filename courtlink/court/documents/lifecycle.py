"""Documents (文书) and their lifecycle: detention orders, settlement agreements, payment proofs,
uploads and the receipts that prove each step.

Orders (renewal 续拘决定书, early release 提前解除拘留决定书)::

    drafted --approve--> approved --issue--> issued --deliver--> delivered
        --acknowledge--> acknowledged --serve--> served --execute--> executed
                                     \\--refuse (with a reason)--> refused

``deliver`` happens when a recipient's terminal has fetched the file and checked its hash.
``serve`` is the detainee's receipt of service (送达), signed on screen at the terminal.

Settlement agreements (执行和解协议) and session transcripts (笔录), the kinds ``SIGNED_KINDS``
signed by the parties::

    drafted --sign (debtor), sign (creditor)--> signed --confirm (judge)--> issued

A transcript is drafted by the clerk (书记员) or the case's judge and saved again and again
(``save``, drafted -> drafted) until the first signature freezes its text.

Payment proofs are confirmed by the creditor (the case's amount paid rises); uploads and receipts
are final when stored. Who may do each step is ``RIGHTS`` below; ``check_step`` refuses every
other (kind, state, action, actor) combination.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from courtlink.errors import Conflict, Forbidden

__all__ = [
    "RIGHTS",
    "SIGNED_KINDS",
    "TRANSITIONS",
    "Actor",
    "DocAction",
    "DocKind",
    "DocState",
    "Document",
    "InboxItem",
    "allows",
    "check_step",
]


class DocKind(StrEnum):
    RENEWAL = "renewal"  # 续拘决定书
    RELEASE = "release"  # 提前解除拘留决定书
    SETTLEMENT = "settlement"  # 执行和解协议
    PAYMENT_PROOF = "payment_proof"  # 付款凭证 / 收款确认
    RECEIPT = "receipt"  # 回执 / 送达回证
    UPLOAD = "upload"  # an uploaded PDF or image
    TRANSCRIPT = "transcript"  # 笔录 of a session


ORDER_KINDS = frozenset({DocKind.RENEWAL, DocKind.RELEASE})
# The kinds debtor and creditor sign and the judge confirms: the one place that says so; the
# transitions and rights below, and the sign and confirm steps (signing.py), follow it.
SIGNED_KINDS = frozenset({DocKind.SETTLEMENT, DocKind.TRANSCRIPT})


class DocState(StrEnum):
    DRAFTED = "drafted"
    APPROVED = "approved"
    SIGNED = "signed"  # settlement, transcript: both parties signed
    ISSUED = "issued"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"  # 已签收
    SERVED = "served"  # 已送达 the detainee
    EXECUTED = "executed"  # 已执行
    REFUSED = "refused"
    FINAL = "final"  # receipts, uploads, confirmed payment proofs


class DocAction(StrEnum):
    DRAFT = "draft"
    APPROVE = "approve"
    ISSUE = "issue"
    DELIVER = "deliver"
    ACKNOWLEDGE = "acknowledge"
    SERVE = "serve"
    EXECUTE = "execute"
    REFUSE = "refuse"
    SIGN = "sign"
    CONFIRM = "confirm"
    UPLOAD = "upload"
    SAVE = "save"  # a transcript's text, saved again while nobody signed it
    READ = "read"


class Actor(StrEnum):
    """Who acts on documents (accounts by role, parties by seat, terminals)."""

    JUDGE = "judge"  # the judge assigned to the case
    APPROVER = "approver"
    CLERK = "clerk"  # 书记员: writes transcripts of every case's sessions
    OFFICER = "officer"  # an officer of the detention center, identified by PIN
    DEBTOR = "debtor"
    CREDITOR = "creditor"
    TERMINAL = "terminal"  # the detention center's terminal (fetching, not deciding)
    OTHER = "other"  # anyone else: another judge, a party of another case


# (kind, state before, action) -> state after
TRANSITIONS: dict[tuple[DocKind, DocState | None, DocAction], DocState] = {}
for _kind in ORDER_KINDS:
    TRANSITIONS.update(
        {
            (_kind, None, DocAction.DRAFT): DocState.DRAFTED,
            (_kind, DocState.DRAFTED, DocAction.APPROVE): DocState.APPROVED,
            (_kind, DocState.APPROVED, DocAction.ISSUE): DocState.ISSUED,
            (_kind, DocState.ISSUED, DocAction.DELIVER): DocState.DELIVERED,
            (_kind, DocState.DELIVERED, DocAction.ACKNOWLEDGE): DocState.ACKNOWLEDGED,
            (_kind, DocState.ACKNOWLEDGED, DocAction.SERVE): DocState.SERVED,
            (_kind, DocState.SERVED, DocAction.EXECUTE): DocState.EXECUTED,
            (_kind, DocState.DELIVERED, DocAction.REFUSE): DocState.REFUSED,
            (_kind, DocState.ACKNOWLEDGED, DocAction.REFUSE): DocState.REFUSED,
            (_kind, DocState.SERVED, DocAction.REFUSE): DocState.REFUSED,
        }
    )
for _kind in SIGNED_KINDS:
    TRANSITIONS.update(
        {
            (_kind, None, DocAction.DRAFT): DocState.DRAFTED,
            (_kind, DocState.DRAFTED, DocAction.SIGN): DocState.DRAFTED,  # until both signed
            (_kind, DocState.SIGNED, DocAction.CONFIRM): DocState.ISSUED,
            (_kind, DocState.ISSUED, DocAction.DELIVER): DocState.ISSUED,
        }
    )
TRANSITIONS.update(
    {
        # Only while nobody signed: the save step checks the signatures too (the state stays
        # drafted after the first one).
        (DocKind.TRANSCRIPT, DocState.DRAFTED, DocAction.SAVE): DocState.DRAFTED,
        (DocKind.PAYMENT_PROOF, None, DocAction.UPLOAD): DocState.FINAL,
        (DocKind.RECEIPT, None, DocAction.UPLOAD): DocState.FINAL,
        (DocKind.UPLOAD, None, DocAction.UPLOAD): DocState.FINAL,
    }
)

# (kind, action) -> the actors allowed. Reading is separate (``may_read``).
RIGHTS: dict[tuple[DocKind, DocAction], frozenset[Actor]] = {}
for _kind in ORDER_KINDS:
    RIGHTS.update(
        {
            (_kind, DocAction.DRAFT): frozenset({Actor.JUDGE}),
            (_kind, DocAction.APPROVE): frozenset({Actor.APPROVER}),
            (_kind, DocAction.ISSUE): frozenset({Actor.JUDGE}),
            (_kind, DocAction.DELIVER): frozenset({Actor.TERMINAL, Actor.OFFICER}),
            (_kind, DocAction.ACKNOWLEDGE): frozenset({Actor.OFFICER}),
            (_kind, DocAction.SERVE): frozenset({Actor.OFFICER}),
            (_kind, DocAction.EXECUTE): frozenset({Actor.OFFICER}),
            (_kind, DocAction.REFUSE): frozenset({Actor.OFFICER}),
        }
    )
for _kind in SIGNED_KINDS:
    RIGHTS.update(
        {
            (_kind, DocAction.SIGN): frozenset({Actor.DEBTOR, Actor.CREDITOR}),
            (_kind, DocAction.CONFIRM): frozenset({Actor.JUDGE}),
            (_kind, DocAction.DELIVER): frozenset(
                {Actor.TERMINAL, Actor.OFFICER, Actor.DEBTOR, Actor.CREDITOR}
            ),
        }
    )
RIGHTS.update(
    {
        (DocKind.SETTLEMENT, DocAction.DRAFT): frozenset({Actor.JUDGE}),
        (DocKind.TRANSCRIPT, DocAction.DRAFT): frozenset({Actor.CLERK, Actor.JUDGE}),
        (DocKind.TRANSCRIPT, DocAction.SAVE): frozenset({Actor.CLERK, Actor.JUDGE}),
        (DocKind.PAYMENT_PROOF, DocAction.UPLOAD): frozenset({Actor.CREDITOR}),
        (DocKind.RECEIPT, DocAction.UPLOAD): frozenset({Actor.OFFICER}),
        (DocKind.UPLOAD, DocAction.UPLOAD): frozenset(
            {Actor.JUDGE, Actor.OFFICER, Actor.DEBTOR, Actor.CREDITOR}
        ),
    }
)

# Who may read a document of each kind (besides being a named recipient of it).
READERS: dict[DocKind, frozenset[Actor]] = {
    DocKind.RENEWAL: frozenset(
        {Actor.JUDGE, Actor.APPROVER, Actor.OFFICER, Actor.TERMINAL, Actor.DEBTOR}
    ),
    DocKind.RELEASE: frozenset(
        {Actor.JUDGE, Actor.APPROVER, Actor.OFFICER, Actor.TERMINAL, Actor.DEBTOR}
    ),
    DocKind.SETTLEMENT: frozenset(
        {Actor.JUDGE, Actor.APPROVER, Actor.OFFICER, Actor.TERMINAL, Actor.DEBTOR, Actor.CREDITOR}
    ),
    DocKind.PAYMENT_PROOF: frozenset({Actor.JUDGE, Actor.APPROVER, Actor.CREDITOR, Actor.DEBTOR}),
    DocKind.RECEIPT: frozenset({Actor.JUDGE, Actor.APPROVER, Actor.OFFICER, Actor.TERMINAL}),
    DocKind.UPLOAD: frozenset(
        {Actor.JUDGE, Actor.APPROVER, Actor.OFFICER, Actor.TERMINAL, Actor.DEBTOR, Actor.CREDITOR}
    ),
    DocKind.TRANSCRIPT: frozenset(
        {
            Actor.JUDGE,
            Actor.APPROVER,
            Actor.CLERK,
            Actor.OFFICER,
            Actor.TERMINAL,
            Actor.DEBTOR,
            Actor.CREDITOR,
        }
    ),
}


def check_step(kind: DocKind, state: DocState | None, action: DocAction, actor: Actor) -> DocState:
    """The state after ``actor`` does ``action`` on a ``kind`` document in ``state``.

    Forbidden when the actor may never do this to this kind; Conflict when the state does not
    allow it now.
    """
    if action is DocAction.READ:
        if actor not in READERS[kind]:
            raise Forbidden(f"a {actor} may not read a {kind} document")
        if state is None:
            raise Conflict("no such document")
        return state
    allowed = RIGHTS.get((kind, action))
    if allowed is None or actor not in allowed:
        raise Forbidden(f"a {actor} may not {action} a {kind} document")
    after = TRANSITIONS.get((kind, state, action))
    if after is None:
        raise Conflict(f"a {kind} document that is {state or 'new'} cannot be {action}d now")
    return after


def allows(kind: DocKind, state: DocState | None, action: DocAction, actor: Actor) -> bool:
    """Whether ``check_step`` would let ``actor`` do ``action`` now (for what a page offers)."""
    if action is DocAction.READ:
        return actor in READERS[kind] and state is not None
    return actor in RIGHTS.get((kind, action), ()) and (kind, state, action) in TRANSITIONS


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    case_id: str
    kind: DocKind
    state: DocState
    number: str
    title: str
    fields: dict[str, Any]
    created_by: str
    created_at: datetime
    detention_id: str | None = None
    parent_id: str | None = None  # a receipt's document, an upload's case document
    sha256: str | None = None
    size: int | None = None
    media_type: str = "application/pdf"
    file_name: str = ""
    signed_by: str | None = None  # key id of the court signature on the PDF
    updated_at: datetime | None = None
    steps: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def is_order(self) -> bool:
        return self.kind in ORDER_KINDS


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A document waiting in one recipient's inbox.

    Recipients: ``terminal:<id>`` (a detention-center terminal), ``seat:<case id>:<seat>`` (a
    party's seat of a case), ``account:<id>`` (a judge or approver).
    """

    id: str
    document_id: str
    recipient: str
    created_at: datetime
    fetched_at: datetime | None = None  # the file arrived and its hash was checked
    acknowledged_at: datetime | None = None
    alerted_at: datetime | None = None  # the judge was told it is overdue
