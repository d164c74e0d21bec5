"""Who may do what: the role policy, pure and exhaustively unit-tested.

A Principal is whoever is acting: an account (judge, approver, clerk, officer; some are also
administrators), an invite (a party or a terminal holding a seat of one session), or a registered
terminal. ``authorize`` raises ``Forbidden`` for every pair not explicitly allowed below.

Documents have their own rights table (documents/lifecycle.py, by ``Actor``); which ``Actor`` a
principal is for one case is decided here too (``document_actor``), with the other role rules of
documents: whose inboxes a principal reads, who lists documents, who sends them on, who signs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from courtlink.court.accounts import Account
from courtlink.court.cases import Case
from courtlink.court.documents.lifecycle import Actor
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
    "Who",
    "authorize",
    "check_lists_documents",
    "check_shares",
    "document_actor",
    "inboxes_of",
    "may",
    "signer",
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
    RECORDING_READ = "recording.read"  # list, play and check a case's recorded sessions


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
        Action.RECORDING_READ,
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
        if action in _READ or action is Action.RECORDING_READ:
            return None
        return f"an approver may not {action}"
    if role is AccountRole.CLERK:
        # The clerk serves every judge of the court: reads cases and sessions to write their
        # transcripts (documents' rights are lifecycle.RIGHTS), and changes nothing else.
        return None if action in _READ else f"a clerk may not {action}"
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


# Documents -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Who:
    """A principal as the documents' rights table sees it, for one case."""

    actor: Actor
    name: str  # the audit actor
    seat: Seat | None = None
    officer_id: str | None = None
    terminal_id: str | None = None

    @classmethod
    def system(cls) -> Who:
        """The server itself (the overdue watch): no rights, named in the audit chain."""
        return cls(Actor.OTHER, "system")

    @classmethod
    def fetching(cls, recipient: str) -> Who:
        """Whoever holds an inbox, fetching a document from it: like a terminal, it fetches and
        never decides; the audit chain names the inbox."""
        return cls(Actor.TERMINAL, recipient)

    @property
    def needs_pin(self) -> bool:
        """An officer at a shared screen (an invite's officer seat, a terminal) who has not yet
        said who they are: their name and PIN decide it (``confirmed``)."""
        return self.actor is Actor.OFFICER and self.officer_id is None

    def confirmed(self, officer_id: str) -> Who:
        """The officer whose PIN was checked acts, and is the one the audit chain names."""
        return replace(self, name=f"officer:{officer_id}", officer_id=officer_id)


def document_actor(
    principal: Principal,
    case: Case,
    *,
    center: str | None,
    session_case_id: str | None = None,
    names_officer: bool = False,
) -> Who:
    """Who ``principal`` is for the documents of ``case``.

    ``center`` is the detention center holding the case's debtor (None without a detention):
    officers and terminals act only for their own center. ``session_case_id`` is the case of an
    invite's session (an invite acts only for that case). ``names_officer``: an officer name or
    PIN came with the request; at an officer seat or a terminal that makes the actor an officer
    whose PIN must still be checked (``Who.needs_pin``).
    """
    match principal:
        case AccountPrincipal(account=account):
            if account.disabled:
                return Who(Actor.OTHER, account.actor)
            if account.role is AccountRole.JUDGE and case.judge_id == account.id:
                return Who(Actor.JUDGE, account.actor)
            if account.role is AccountRole.APPROVER:
                return Who(Actor.APPROVER, account.actor)
            if account.role is AccountRole.CLERK:
                return Who(Actor.CLERK, account.actor)
            if (
                account.role is AccountRole.OFFICER
                and center is not None
                and account.center == center
            ):
                return Who(Actor.OFFICER, account.actor, officer_id=account.id)
            return Who(Actor.OTHER, account.actor)
        case InvitePrincipal(claims=claims):
            if session_case_id != case.id:
                return Who(Actor.OTHER, principal.actor)
            seats = claims.seats
            if Seat.OFFICER in seats and names_officer:
                return Who(Actor.OFFICER, principal.actor, Seat.OFFICER)
            if Seat.CREDITOR in seats:
                return Who(Actor.CREDITOR, principal.actor, Seat.CREDITOR)
            if Seat.DEBTOR in seats:
                return Who(Actor.DEBTOR, principal.actor, Seat.DEBTOR)
            if Seat.OFFICER in seats:
                # The officer seat without a PIN is the screen itself: it fetches, never decides.
                return Who(Actor.TERMINAL, principal.actor, Seat.OFFICER)
            return Who(Actor.OTHER, principal.actor)
        case TerminalPrincipal(terminal=terminal):
            if terminal.disabled or center is None or terminal.center != center:
                return Who(Actor.OTHER, terminal.actor)
            if names_officer:
                return Who(Actor.OFFICER, terminal.actor, terminal_id=terminal.id)
            return Who(Actor.TERMINAL, terminal.actor, terminal_id=terminal.id)
    return Who(Actor.OTHER, "unknown")  # pragma: no cover - the match is exhaustive


def inboxes_of(principal: Principal, *, session_case_id: str | None = None) -> list[str]:
    """The inboxes ``principal`` reads (``session_case_id``: the case of an invite's session):
    an account its own, an invite its seats of that case, a terminal its own."""
    match principal:
        case AccountPrincipal(account=account):
            return [f"account:{account.id}"]
        case InvitePrincipal(claims=claims):
            return [f"seat:{session_case_id}:{seat}" for seat in claims.seats]
        case TerminalPrincipal(terminal=terminal):
            return [f"terminal:{terminal.id}"]
    return []  # pragma: no cover - the match is exhaustive


def check_lists_documents(principal: Principal) -> None:
    """Court staff list the documents of cases (judges every case's, as they list cases);
    ``Forbidden`` for anyone else."""
    if not isinstance(principal, AccountPrincipal) or principal.account.role is AccountRole.OFFICER:
        raise Forbidden("only court staff list documents")


def check_shares(who: Who) -> None:
    """Only the case's judge sends a document on to more inboxes; ``Forbidden`` otherwise."""
    if who.actor is not Actor.JUDGE:
        raise Forbidden("only the case's judge sends documents on")


def signer(who: Who, *, officer_confirms: bool) -> tuple[Who, Seat | None]:
    """Who signs an agreement or a transcript, and for which seat. At a terminal the debtor
    signs and an officer confirms with their name and PIN that it was the debtor: the signature
    is the debtor's, recorded under the officer's name."""
    if who.actor in (Actor.OFFICER, Actor.TERMINAL) and officer_confirms:
        return replace(who, actor=Actor.DEBTOR), Seat.DEBTOR
    return who, who.seat
