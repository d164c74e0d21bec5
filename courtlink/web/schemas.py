"""The bodies of the web edge: what the HTTP API accepts and every view of a record that the
API and the pages show.

Each record has one function that builds its view (``case_out``, ``document_out``, ...). The API
declares these models as its responses, which gives validation, serialization and
/api/openapi.json from one source; the pages render the very same views, so a field (a
detention's days left, whether an invite link is live) is worked out in one place only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import segno
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from courtlink.court.accounts import Account
from courtlink.court.cases import Case
from courtlink.court.clerk import InviteLink
from courtlink.court.detentions import Detention
from courtlink.court.documents.lifecycle import DocKind, Document, InboxItem
from courtlink.court.documents.transcripts import MAX_TEXT
from courtlink.court.invites import Invite
from courtlink.court.recordings import Manifest, Recording
from courtlink.court.seats import SEATS, AccountRole, Seat
from courtlink.court.sessions import Session
from courtlink.court.terminals import Terminal

__all__ = [
    "AccountIn",
    "AccountOut",
    "CaseIn",
    "CaseOut",
    "DetentionIn",
    "DetentionOut",
    "DocumentOut",
    "InboxEntryOut",
    "InboxItemOut",
    "InviteIn",
    "InviteLinkView",
    "InviteOut",
    "IssuedInviteOut",
    "IssuedTerminalOut",
    "KeysOut",
    "LoginIn",
    "MeOut",
    "OfficerIn",
    "OrderIn",
    "PaymentIn",
    "PeriodOut",
    "ReceivedIn",
    "RecordingEntryOut",
    "RecordingFileOut",
    "RecordingOut",
    "RecordingSeatOut",
    "SessionIn",
    "SessionOut",
    "SettlementIn",
    "ShareIn",
    "SignIn",
    "TerminalIn",
    "TerminalOut",
    "TranscriptIn",
    "TranscriptTextIn",
    "account_out",
    "case_out",
    "detention_out",
    "document_json",
    "document_out",
    "inbox_entry_out",
    "invite_link_view",
    "invite_out",
    "item_json",
    "item_out",
    "qr_data_uri",
    "recording_entry_out",
    "recording_file_url",
    "recording_out",
    "session_out",
    "terminal_out",
]


class In(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# Request bodies: accounts, cases, sessions, invites, terminals ------------------------------


class LoginIn(In):
    username: StrictStr = Field(min_length=1, max_length=40)
    password: StrictStr = Field(min_length=1, max_length=256)


class CaseIn(In):
    number: StrictStr = Field(max_length=64, examples=["(2021)苏0903执1234号"])
    creditor_name: StrictStr = Field(max_length=100)
    debtor_name: StrictStr = Field(max_length=100)
    amount_owed_fen: StrictInt = Field(gt=0, description="amount owed, in fen (1 yuan = 100 fen)")
    amount_paid_fen: StrictInt = Field(0, ge=0)
    court: StrictStr | None = Field(None, max_length=100, description="default: the judge's court")


class DetentionIn(In):
    case_id: StrictStr = Field(max_length=32)
    center: StrictStr = Field(max_length=100)
    start: AwareDatetime
    days: StrictInt = Field(ge=1, description="at most the configured legal maximum (15)")


class SessionIn(In):
    case_id: StrictStr = Field(max_length=32)
    scheduled_at: AwareDatetime | None = None
    lobby: StrictBool | None = None
    recorded: StrictBool | None = None


class InviteIn(In):
    seats: list[Seat] = Field(min_length=1, max_length=2)
    ttl_hours: float | None = Field(None, gt=0, le=24 * 90)
    label: StrictStr = Field("", max_length=100)


class TerminalIn(In):
    name: StrictStr = Field(min_length=1, max_length=100)
    center: StrictStr = Field(min_length=1, max_length=100)


class AccountIn(In):
    username: StrictStr = Field(max_length=40)
    display_name: StrictStr = Field(max_length=100)
    role: AccountRole
    password: StrictStr | None = Field(None, max_length=256)
    pin: StrictStr | None = Field(None, max_length=8)
    court: StrictStr = Field("", max_length=100)
    center: StrictStr = Field("", max_length=100)
    is_admin: StrictBool = False


# Request bodies: documents ----------------------------------------------------------------


class OrderIn(In):
    kind: DocKind = Field(description="renewal (续拘) or release (提前解除拘留)")
    detention_id: StrictStr = Field(max_length=32)
    reason: StrictStr = Field(min_length=1, max_length=2000)
    days: StrictInt | None = Field(None, ge=1, description="renewals: at most the legal maximum")


class OfficerIn(In):
    officer: StrictStr = Field(min_length=1, max_length=40, description="the officer's username")
    pin: StrictStr = Field(min_length=4, max_length=8)
    reason: StrictStr = Field("", max_length=1000, description="refusals: why")
    signature: StrictStr | None = Field(
        None, max_length=800_000, description="service: the detainee's drawn signature, base64 PNG"
    )
    executed_at: AwareDatetime | None = None


class SettlementIn(In):
    case_id: StrictStr = Field(max_length=32)
    terms: StrictStr = Field(min_length=1, max_length=5000)
    amount_fen: StrictInt = Field(gt=0)
    due: StrictStr = Field("", max_length=200)


class TranscriptIn(In):
    session_id: StrictStr = Field(max_length=32)
    text: StrictStr = Field(
        min_length=1, max_length=MAX_TEXT, description="the transcript's text (笔录)"
    )


class TranscriptTextIn(In):
    text: StrictStr = Field(min_length=1, max_length=MAX_TEXT, description="the whole text again")


class SignIn(In):
    signature: StrictStr = Field(min_length=1, max_length=800_000, description="base64 PNG")
    officer: StrictStr | None = Field(
        None, max_length=40, description="at a terminal: the officer who witnesses"
    )
    pin: StrictStr | None = Field(None, max_length=8)
    version: StrictInt | None = Field(
        None,
        ge=0,
        description="a transcript: the version of its text that was read (fields.version); "
        "required for a transcript, and a newer one is refused (409)",
    )


class PaymentIn(In):
    amount_fen: StrictInt = Field(gt=0)
    note: StrictStr = Field("", max_length=500)


class ReceivedIn(In):
    sha256: StrictStr = Field(min_length=64, max_length=64, pattern="^[0-9a-fA-F]{64}$")


class ShareIn(In):
    recipients: list[StrictStr] = Field(min_length=1, max_length=20)


# Views: accounts, cases, detentions, sessions, invites, terminals ----------------------------


class AccountOut(BaseModel):
    id: str
    username: str
    display_name: str
    role: AccountRole
    court: str
    center: str
    is_admin: bool


def account_out(a: Account) -> AccountOut:
    """An account without its secrets (password and PIN hashes stay inside)."""
    return AccountOut(
        id=a.id,
        username=a.username,
        display_name=a.display_name,
        role=a.role,
        court=a.court,
        center=a.center,
        is_admin=a.is_admin,
    )


class MeOut(BaseModel):
    kind: str
    account: AccountOut | None = None
    session: str | None = None
    seats: list[Seat] = []
    csrf: str | None = None


class CaseOut(BaseModel):
    id: str
    number: str
    court: str
    judge_id: str
    creditor_name: str
    debtor_name: str
    amount_owed_fen: int
    amount_paid_fen: int
    amount_outstanding_fen: int
    created_at: datetime


def case_out(c: Case) -> CaseOut:
    """A case with what is still owed."""
    return CaseOut(
        id=c.id,
        number=c.number,
        court=c.court,
        judge_id=c.judge_id,
        creditor_name=c.creditor_name,
        debtor_name=c.debtor_name,
        amount_owed_fen=c.amount_owed_fen,
        amount_paid_fen=c.amount_paid_fen,
        amount_outstanding_fen=c.amount_outstanding_fen,
        created_at=c.created_at,
    )


class PeriodOut(BaseModel):
    start: datetime
    days: int
    end: datetime


class DetentionOut(BaseModel):
    id: str
    case_id: str
    debtor_name: str
    center: str
    periods: list[PeriodOut]
    ends_at: datetime
    status: str
    days_left: float
    expiring_soon: bool
    released_at: datetime | None


def detention_out(d: Detention, now: datetime, soon_days: int) -> DetentionOut:
    """A detention as of ``now``: its status, days left, and whether it ends within
    ``soon_days`` (the dashboard's warning)."""
    return DetentionOut(
        id=d.id,
        case_id=d.case_id,
        debtor_name=d.debtor_name,
        center=d.center,
        periods=[PeriodOut(start=p.start, days=p.days, end=p.end) for p in d.periods],
        ends_at=d.ends_at,
        status=str(d.status(now)),
        days_left=round(d.days_left(now), 2),
        expiring_soon=d.expiring_soon(now, soon_days),
        released_at=d.released_at,
    )


class SessionOut(BaseModel):
    id: str
    case_id: str
    scheduled_at: datetime
    state: str
    lobby: bool
    recorded: bool
    created_at: datetime
    ended_at: datetime | None


def session_out(s: Session) -> SessionOut:
    """A session without its moderation state (that travels over Socket.IO)."""
    return SessionOut(
        id=s.id,
        case_id=s.case_id,
        scheduled_at=s.scheduled_at,
        state=str(s.state),
        lobby=s.lobby,
        recorded=s.recorded,
        created_at=s.created_at,
        ended_at=s.ended_at,
    )


class InviteOut(BaseModel):
    id: str
    session_id: str
    seats: list[Seat]
    expires_at: datetime
    revoked_at: datetime | None
    label: str


def invite_out(i: Invite) -> InviteOut:
    """An invite without its token (the token is shown once, when issued)."""
    return InviteOut(
        id=i.id,
        session_id=i.session_id,
        seats=list(i.seats),
        expires_at=i.expires_at,
        revoked_at=i.revoked_at,
        label=i.label,
    )


class IssuedInviteOut(BaseModel):
    invite: InviteOut
    url: str = Field(description="the invite link; shown once here, keep it like a key")


class InviteLinkView(BaseModel):
    """An invite on its judge's dashboard: the link and its QR code while it is live."""

    invite: InviteOut
    live: bool
    url: str
    qr: str


def qr_data_uri(url: str) -> str:
    """The QR code of ``url`` as an SVG data URI (medium error correction, for phone screens)."""
    return str(segno.make(url, error="m").svg_data_uri(scale=4, border=2))


def invite_link_view(link: InviteLink, public_url: str) -> InviteLinkView:
    """A dashboard invite: its URL under ``public_url`` and QR code if live, else blanks."""
    url = f"{public_url}/i/{link.token}" if link.token is not None else ""
    return InviteLinkView(
        invite=invite_out(link.invite), live=link.live, url=url, qr=qr_data_uri(url) if url else ""
    )


class TerminalOut(BaseModel):
    id: str
    name: str
    center: str
    created_at: datetime


def terminal_out(t: Terminal) -> TerminalOut:
    """A terminal without its credential."""
    return TerminalOut(id=t.id, name=t.name, center=t.center, created_at=t.created_at)


class IssuedTerminalOut(BaseModel):
    terminal: TerminalOut
    credential: str = Field(description="shown once; open /t/<credential> on the terminal")


# Views: documents ----------------------------------------------------------------------------


class DocumentOut(BaseModel):
    id: str
    case_id: str
    detention_id: str | None
    parent_id: str | None
    kind: str
    state: str
    number: str
    title: str
    fields: dict[str, Any]
    sha256: str | None
    size: int | None
    media_type: str
    file_name: str
    signed_by: str | None
    created_at: datetime
    updated_at: datetime | None
    steps: list[dict[str, Any]]


def document_out(d: Document) -> DocumentOut:
    """A document with its steps (who did what, when), without who created it."""
    return DocumentOut(
        id=d.id,
        case_id=d.case_id,
        detention_id=d.detention_id,
        parent_id=d.parent_id,
        kind=str(d.kind),
        state=str(d.state),
        number=d.number,
        title=d.title,
        fields=d.fields,
        sha256=d.sha256,
        size=d.size,
        media_type=d.media_type,
        file_name=d.file_name,
        signed_by=d.signed_by,
        created_at=d.created_at,
        updated_at=d.updated_at,
        steps=list(d.steps),
    )


def document_json(d: Document) -> dict[str, Any]:
    """``document_out`` as JSON data, for the messages pushed over Socket.IO."""
    return document_out(d).model_dump(mode="json")


class InboxItemOut(BaseModel):
    id: str
    document_id: str
    recipient: str
    created_at: datetime
    fetched_at: datetime | None
    acknowledged_at: datetime | None


def item_out(i: InboxItem) -> InboxItemOut:
    """An inbox item; when the judge was alerted about it stays inside."""
    return InboxItemOut(
        id=i.id,
        document_id=i.document_id,
        recipient=i.recipient,
        created_at=i.created_at,
        fetched_at=i.fetched_at,
        acknowledged_at=i.acknowledged_at,
    )


def item_json(i: InboxItem) -> dict[str, Any]:
    """``item_out`` as JSON data, for the messages pushed over Socket.IO."""
    return item_out(i).model_dump(mode="json")


class InboxEntryOut(BaseModel):
    item: InboxItemOut
    document: DocumentOut


def inbox_entry_out(item: InboxItem, document: Document) -> InboxEntryOut:
    """One entry of an inbox: the item and the document it brings."""
    return InboxEntryOut(item=item_out(item), document=document_out(document))


class KeysOut(BaseModel):
    court_certificates_pem: str = Field(description="every court seal certificate, PEM")
    current: str | None
    audit_keys: dict[str, str] = Field(
        description="{kid: base64 Ed25519 public key} of audit checkpoints"
    )


# Views: recordings ---------------------------------------------------------------------------


class RecordingFileOut(BaseModel):
    """One file of a recording, as its manifest lists it, and where the judge's browser reads it."""

    name: str
    seat: str
    kind: str = Field(description="audio or video")
    codec: str
    started_at: datetime
    offset_seconds: float = Field(description="where the file starts on the session clock")
    duration_seconds: float
    bytes: int
    sha256: str
    url: str = Field(description="the file, with Range requests")


class RecordingSeatOut(BaseModel):
    """A seat on the playback page: its video and audio file, or neither (absent)."""

    seat: Seat
    video: RecordingFileOut | None
    audio: RecordingFileOut | None

    @property
    def present(self) -> bool:
        return self.video is not None or self.audio is not None


class RecordingOut(BaseModel):
    """A recorded session: its manifest (courtlink-recording/1), whether the court sealed it,
    its length on the session clock and its size."""

    session_id: str
    case_id: str
    case_number: str
    started_at: datetime
    ended_at: datetime | None
    complete: bool = Field(description="false: the recording stopped early or was cut short")
    stopped_because: str = Field(description="ended, disk_full, failed, recovered_after_crash")
    sealed: bool = Field(description="manifest.p7s holds the court's seal on manifest.json")
    duration_seconds: float = Field(description="from the first start to the last end")
    bytes: int = Field(description="all files together")
    files: list[RecordingFileOut]
    seats: list[RecordingSeatOut] = Field(description="every seat, in order, absent or not")


def recording_file_url(session_id: str, name: str) -> str:
    """Where the browser reads one file of a recording (the API's authorized file route)."""
    return f"/api/sessions/{session_id}/recording/files/{quote(name, safe='')}"


def recording_out(manifest: Manifest, sealed: bool) -> RecordingOut:
    """A recording from its manifest, with each seat's files paired for the player. Its length
    is the last file's end on the session clock."""
    session_id = manifest.session_id
    files = [
        RecordingFileOut(
            name=f.name,
            seat=str(f.seat),
            kind=f.kind,
            codec=f.codec,
            started_at=f.started_at,
            offset_seconds=f.offset_seconds,
            duration_seconds=f.duration_seconds,
            bytes=f.bytes,
            sha256=f.sha256,
            url=recording_file_url(session_id, f.name),
        )
        for f in manifest.files
    ]
    by_seat = {(f.seat, f.kind): f for f in files}
    return RecordingOut(
        session_id=session_id,
        case_id=manifest.case_id,
        case_number=manifest.case_number,
        started_at=manifest.started_at,
        ended_at=manifest.ended_at,
        complete=manifest.complete,
        stopped_because=manifest.stopped_because,
        sealed=sealed,
        duration_seconds=round(
            max((f.offset_seconds + f.duration_seconds for f in files), default=0.0), 3
        ),
        bytes=manifest.total_bytes,
        files=files,
        seats=[
            RecordingSeatOut(
                seat=seat,
                video=by_seat.get((str(seat), "video")),
                audio=by_seat.get((str(seat), "audio")),
            )
            for seat in SEATS
        ],
    )


class RecordingEntryOut(BaseModel):
    """A recorded session on its case's list: the recording once the recorder finished it
    (None while it runs, or when its manifest cannot be read: ``problem`` says why)."""

    session: SessionOut
    recording: RecordingOut | None
    sealed: bool
    problem: str | None


def recording_entry_out(r: Recording) -> RecordingEntryOut:
    """One entry of a case's recordings."""
    return RecordingEntryOut(
        session=session_out(r.session),
        recording=recording_out(r.manifest, r.sealed) if r.manifest is not None else None,
        sealed=r.sealed,
        problem=r.problem,
    )
