"""The audit chain: every event hash-linked to the one before, with signed checkpoints.

Each event's hash is ``sha256(prev_hash || "\\n" || canonical JSON of the event)``, the first
event's ``prev_hash`` being 64 zeros. An edited row no longer matches its hash; an inserted or
removed row breaks the next row's ``prev_hash`` or the sequence. Hashes alone cannot catch a cut
tail (the shorter chain is still consistent), so the server periodically signs the head
(sequence number and hash) with its Ed25519 key: a checkpoint. Checkpoints are kept in the
database and in a witness file outside it; a chain shorter than any checkpoint, or disagreeing
with one, fails verification.

What remains possible for someone with write access to the database and the witness file but
not the key: appending forged events after the last checkpoint. The checkpoint interval bounds
that window (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from courtlink.clock import utc
from courtlink.court.keys import KeyRing

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditKind",
    "Checkpoint",
    "VerifyReport",
    "canonical",
    "checkpoint_payload",
    "event_hash",
    "verify_chain",
]

GENESIS = "0" * 64


class AuditKind(StrEnum):
    LOGIN = "account.login"
    LOGIN_FAILED = "account.login_failed"
    LOGOUT = "account.logout"
    ACCOUNT_CREATED = "account.created"
    TERMINAL_CREATED = "terminal.created"
    TERMINAL_CONNECTED = "terminal.connected"
    CASE_CREATED = "case.created"
    DETENTION_CREATED = "detention.created"
    SESSION_CREATED = "session.created"
    SESSION_STATE = "session.state"
    SESSION_ENDED = "session.ended"
    INVITE_ISSUED = "invite.issued"
    INVITE_OPENED = "invite.opened"
    INVITE_REVOKED = "invite.revoked"
    INVITE_REFUSED = "invite.refused"
    CONSENT_GIVEN = "consent.given"
    JOINED = "participant.joined"
    LEFT = "participant.left"
    REPLACED = "participant.replaced"
    REMOVED = "participant.removed"
    MODERATED = "session.moderated"
    DETENTION_CHANGED = "detention.changed"  # an order executed: released, or a period added
    # Documents: one kind per step. ``courtlink audit verify`` reconciles each document with the
    # last event about it, found by the ``document.`` prefix (documents/reconcile.py).
    DOCUMENT_DRAFTED = "document.drafted"
    DOCUMENT_APPROVED = "document.approved"
    DOCUMENT_ISSUED = "document.issued"
    DOCUMENT_FETCHED = "document.fetched"
    DOCUMENT_DELIVERED = "document.delivered"
    DOCUMENT_ACKNOWLEDGED = "document.acknowledged"
    DOCUMENT_SERVED = "document.served"
    DOCUMENT_EXECUTED = "document.executed"
    DOCUMENT_REFUSED = "document.refused"
    DOCUMENT_SIGNED = "document.signed"
    DOCUMENT_CONFIRMED = "document.confirmed"
    DOCUMENT_PAYMENT_CONFIRMED = "document.payment_confirmed"
    DOCUMENT_UPLOADED = "document.uploaded"
    DOCUMENT_SHARED = "document.shared"
    DOCUMENT_OVERDUE = "document.overdue"
    DOCUMENT_RECEIPT_ISSUED = "document.receipt_issued"
    DOCUMENT_TRANSCRIPT_SAVED = "document.transcript_saved"
    # Recordings (court/recordings.py): sealed with the manifest's SHA-256, or refused with the
    # findings; deleted by retention (audited before the files go), or failing to be.
    RECORDING_SEALED = "recording.sealed"
    RECORDING_SEAL_REFUSED = "recording.seal_refused"
    RECORDING_DELETED = "recording.deleted"
    RECORDING_DELETE_FAILED = "recording.delete_failed"
    # A case exported for long-term storage (court/export.py): one event per recording it
    # holds, one for the package with the SHA-256 of its sealed index.
    RECORDING_EXPORTED = "recording.exported"
    ARCHIVE_EXPORTED = "archive.exported"


def canonical(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 (names in Chinese stay readable)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(at: datetime) -> str:
    # One spelling per instant: the database gives times back in UTC, whatever zone the writer's
    # clock used, and the hash must come out the same when the row is read back.
    return utc(at).isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    at: datetime,
    kind: str,
    actor: str,
    session_id: str | None,
    case_id: str | None,
    data: dict[str, Any],
    prev_hash: str,
) -> str:
    body = canonical(
        {
            "seq": seq,
            "at": _iso(at),
            "kind": kind,
            "actor": actor,
            "session": session_id,
            "case": case_id,
            "data": data,
        }
    )
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: datetime
    kind: str
    actor: str
    session_id: str | None
    case_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def recomputed(self) -> str:
        return event_hash(
            seq=self.seq,
            at=self.at,
            kind=self.kind,
            actor=self.actor,
            session_id=self.session_id,
            case_id=self.case_id,
            data=self.data,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    kid: str
    signature: str

    def payload(self) -> bytes:
        return checkpoint_payload(self.seq, self.hash, self.at, self.kid)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": _iso(self.at),
            "kid": self.kid,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Checkpoint:
        return cls(
            seq=int(value["seq"]),
            hash=str(value["hash"]),
            at=datetime.fromisoformat(value["at"]),
            kid=str(value["kid"]),
            signature=str(value["signature"]),
        )


def checkpoint_payload(seq: int, head_hash: str, at: datetime, kid: str) -> bytes:
    return canonical(
        {
            "type": "courtlink.audit.checkpoint",
            "seq": seq,
            "hash": head_hash,
            "at": _iso(at),
            "kid": kid,
        }
    )


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    reason: str


@dataclass
class VerifyReport:
    events: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    def summary(self) -> str:
        first = self.first
        if first is None:
            return f"audit chain ok: {self.events} events, {self.checkpoints} signed checkpoints"
        return f"audit chain broken at seq {first.seq}: {first.reason}"


def verify_chain(
    events: Iterable[AuditEvent],
    checkpoints: Iterable[Checkpoint],
    keys: KeyRing,
    witness: Iterable[Checkpoint] = (),
    head: tuple[int, str] | None = None,
) -> VerifyReport:
    """Recompute the chain from ``events`` (in sequence order) and check every checkpoint.

    ``witness`` holds the checkpoints read from outside the database; one that the database
    lacks, or that disagrees with it, is a problem too. ``head`` is the (seq, hash) the writer
    recorded last; rows beyond it were not written by the server.
    """
    report = VerifyReport()
    hashes: dict[int, str] = {}
    expected_seq = 1
    prev = GENESIS
    chain_broken = False
    for event in events:
        report.events += 1
        if not chain_broken:
            if event.seq != expected_seq:
                if event.seq > expected_seq:
                    report.problems.append(
                        Problem(
                            expected_seq,
                            f"missing from the chain (row removed); next row is seq {event.seq}",
                        )
                    )
                else:
                    report.problems.append(
                        Problem(event.seq, "sequence out of order (row inserted)")
                    )
                chain_broken = True
            elif event.prev_hash != prev:
                report.problems.append(
                    Problem(
                        event.seq,
                        f"does not link to seq {event.seq - 1} (row inserted or removed before it)",
                    )
                )
                chain_broken = True
            elif event.recomputed() != event.hash:
                report.problems.append(
                    Problem(event.seq, "content does not match its hash (row altered)")
                )
                chain_broken = True
        hashes[event.seq] = event.hash
        prev = event.hash
        expected_seq = event.seq + 1
    last_seq = expected_seq - 1
    if head is not None:
        head_seq, head_hash = head
        if last_seq > head_seq:
            report.problems.append(
                Problem(head_seq + 1, f"beyond the recorded head seq {head_seq} (row inserted)")
            )
        elif last_seq < head_seq:
            report.problems.append(
                Problem(
                    last_seq + 1,
                    f"tail cut off: chain ends at seq {last_seq}, the head says seq {head_seq}",
                )
            )
        elif last_seq and hashes.get(last_seq) != head_hash:
            report.problems.append(Problem(last_seq, "does not match the recorded head hash"))

    stored = {c.seq: c for c in checkpoints}
    witnessed = {c.seq: c for c in witness}
    for seq, outside in witnessed.items():
        inside = stored.get(seq)
        if inside is None:
            report.problems.append(
                Problem(seq, "a witnessed checkpoint is missing from the database")
            )
        elif inside != outside:
            report.problems.append(
                Problem(seq, "the database checkpoint differs from the witness file")
            )
    for seq, checkpoint in sorted({**witnessed, **stored}.items()):
        report.checkpoints += 1
        if not keys.verify(checkpoint.kid, checkpoint.payload(), checkpoint.signature):
            report.problems.append(
                Problem(seq, f"checkpoint signature invalid (key {checkpoint.kid})")
            )
        elif seq > last_seq:
            report.problems.append(
                Problem(
                    last_seq + 1,
                    f"tail cut off: chain ends at seq {last_seq}, signed checkpoint covers {seq}",
                )
            )
        elif hashes.get(seq) != checkpoint.hash:
            report.problems.append(
                Problem(seq, "does not match the signed checkpoint (chain rewritten)")
            )
    return report
