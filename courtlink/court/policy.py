"""Who may do what: the role policy, pure and exhaustively unit-tested.

A Principal is whoever is acting: an account (judge, approver, officer; some are also
administrators), an invite (a party or a terminal holding a seat of one session), or a registered
terminal. ``authorize`` raises ``Forbidden`` for every pair not explicitly allowed below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from courtlink.court.accounts import Account
from courtlink.court.cases import Case
from courtlink.court.invites import InviteClaims
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.terminals import Terminal
from courtlink.errors import Forbidden

__all__ = [
    "AccountPrincipal",
    "Action",
    "InvitePrincipal",
    "Principal",
    "TerminalPrincipal",
    "authorize",
    "may",
]


class Action(StrEnum):
    CASE_CREATE = "case.create"
    CASE_READ = "case.read"
    DETENTION_CREATE = "detention.create"
    DETENTION_READ = "detention.read"
    SESSION_CREATE = "session.create"
    SESSION_READ = "session.read"
    SESSION_END = "session.end"
    MODERATE = "session.moderate"  # lobby, admit, caucus, mute, remove
    INVITE_ISSUE = "invite.issue"
    INVITE_REVOKE = "invite.revoke"
    INVITE_READ = "invite.read"
    SEAT_JOIN = "seat.join"
    CONSENT_GIVE = "consent.give"
    TERMINAL_MANAGE = "terminal.manage"
    ACCOUNT_MANAGE = "account.manage"
    AUDIT_READ = "audit.read"


@dataclass(frozen=True, slots=True)
class AccountPrincipal:
    account: Account

    @property
    def actor(self) -> str:
        return self.account.actor


@dataclass(frozen=True, slots=True)
class InvitePrincipal:
    claims: InviteClaims

    @property
    def actor(self) -> str:
        return f"invite:{self.claims.invite_id}"


@dataclass(frozen=True, slots=True)
class TerminalPrincipal:
    terminal: Terminal

    @property
    def actor(self) -> str:
        return self.terminal.actor


Principal = AccountPrincipal | InvitePrincipal | TerminalPrincipal

# Actions whose subject is a case the judge must be assigned to.
_JUDGE_OWN_CASE = frozenset(
    {
        Action.SESSION_CREATE,
        Action.SESSION_END,
        Action.MODERATE,
        Action.INVITE_ISSUE,
        Action.INVITE_REVOKE,
        Action.INVITE_READ,
        Action.DETENTION_CREATE,
    }
)
_READ = frozenset({Action.CASE_READ, Action.DETENTION_READ, Action.SESSION_READ})
_ADMIN = frozenset({Action.TERMINAL_MANAGE, Action.ACCOUNT_MANAGE, Action.AUDIT_READ})


def _account_may(
    account: Account, action: Action, case: Case | None, seat: Seat | None
) -> str | None:
    """None when allowed, otherwise the reason."""
    if account.disabled:
        return "this account is disabled"
    if action in _ADMIN:
        return None if account.is_admin else "only an administrator may do this"
    role = account.role
    if role is AccountRole.JUDGE:
        if action in _READ or action is Action.CASE_CREATE:
            return None
        if action in _JUDGE_OWN_CASE or action is Action.SEAT_JOIN:
            if case is None:
                return "no case given"
            if case.judge_id != account.id:
                return "only the judge assigned to this case may do this"
            if action is Action.SEAT_JOIN and seat is not Seat.JUDGE:
                return f"a judge may not take the {seat} seat"
            return None
        return f"a judge may not {action}"
    if role is AccountRole.APPROVER:
        return None if action in _READ else f"an approver may not {action}"
    if role is AccountRole.OFFICER:
        return None if action is Action.DETENTION_READ else f"an officer may not {action}"
    return "unknown role"


def _invite_may(
    claims: InviteClaims, action: Action, session_id: str | None, seat: Seat | None
) -> str | None:
    if action not in (Action.SEAT_JOIN, Action.CONSENT_GIVE, Action.SESSION_READ, Action.MODERATE):
        return f"an invite does not allow {action}"
    if session_id != claims.session_id:
        return "this invite is for another session"
    if action is Action.MODERATE:
        # The judge's own invite (the judge issued it to themself) moderates like the judge.
        return None if Seat.JUDGE in claims.seats else "only the judge may moderate"
    if action is not Action.SESSION_READ and seat not in claims.seats:
        return f"this invite does not hold the {seat} seat"
    return None


def may(
    principal: Principal,
    action: Action,
    *,
    case: Case | None = None,
    session_id: str | None = None,
    seat: Seat | None = None,
) -> str | None:
    """None when ``principal`` may do ``action``; otherwise a reason for people."""
    match principal:
        case AccountPrincipal(account=account):
            return _account_may(account, action, case, seat)
        case InvitePrincipal(claims=claims):
            return _invite_may(claims, action, session_id, seat)
        case TerminalPrincipal(terminal=terminal):
            if terminal.disabled:
                return "this terminal is disabled"
            return f"a terminal may not {action}"
    return "unknown principal"  # pragma: no cover - the match is exhaustive


def authorize(
    principal: Principal,
    action: Action,
    *,
    case: Case | None = None,
    session_id: str | None = None,
    seat: Seat | None = None,
) -> None:
    """Raise ``Forbidden`` unless ``principal`` may do ``action``."""
    reason = may(principal, action, case=case, session_id=session_id, seat=seat)
    if reason is not None:
        raise Forbidden(reason)
