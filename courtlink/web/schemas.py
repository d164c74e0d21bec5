"""Request and response bodies of the HTTP API (documented at /api/openapi.json)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from courtlink.court.accounts import Account
from courtlink.court.cases import Case
from courtlink.court.detentions import Detention
from courtlink.court.invites import Invite
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.sessions import Session
from courtlink.court.terminals import Terminal

__all__ = [
    "AccountIn",
    "AccountOut",
    "CaseIn",
    "CaseOut",
    "DetentionIn",
    "DetentionOut",
    "InviteIn",
    "InviteOut",
    "IssuedInviteOut",
    "LoginIn",
    "MeOut",
    "PeriodOut",
    "SessionIn",
    "SessionOut",
    "TerminalIn",
    "TerminalOut",
]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class AccountOut(BaseModel):
    id: str
    username: str
    display_name: str
    role: AccountRole
    court: str
    center: str
    is_admin: bool

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls(
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

    @classmethod
    def of(cls, c: Case) -> CaseOut:
        return cls(
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

    @classmethod
    def of(cls, d: Detention, now: datetime, soon_days: int) -> DetentionOut:
        return cls(
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

    @classmethod
    def of(cls, s: Session) -> SessionOut:
        return cls(
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

    @classmethod
    def of(cls, i: Invite) -> InviteOut:
        return cls(
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


class TerminalOut(BaseModel):
    id: str
    name: str
    center: str
    created_at: datetime

    @classmethod
    def of(cls, t: Terminal) -> TerminalOut:
        return cls(id=t.id, name=t.name, center=t.center, created_at=t.created_at)


class IssuedTerminalOut(BaseModel):
    terminal: TerminalOut
    credential: str = Field(description="shown once; open /t/<credential> on the terminal")
