"""The whole role matrix: every kind of principal x every Action x every relevant seat.

The expectations are written out below by hand, from the roles in docs/architecture.md, not
derived from rooms.policy. A new Action fails ``test_every_action_has_an_expectation`` until
someone decides here who may do it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from courtlink.court.accounts import Account
from courtlink.court.cases import Case
from courtlink.court.documents.lifecycle import Actor as DocActor
from courtlink.court.invites import InviteClaims
from courtlink.court.policy import (
    AccountPrincipal,
    Action,
    InvitePrincipal,
    Principal,
    TerminalPrincipal,
    Who,
    authorize,
    check_lists_documents,
    check_shares,
    document_actor,
    inboxes_of,
    may,
    signer,
)
from courtlink.court.seats import SEATS, AccountRole, Seat
from courtlink.court.terminals import Terminal
from courtlink.errors import Forbidden

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SESSION = "s-mine"
OTHER_SESSION = "s-other"
CASE = Case(
    id="c1",
    number="(2021)苏0903执1234号",
    court="盐城市盐都区人民法院",
    judge_id="judge-assigned",
    creditor_name="王建国",
    debtor_name="李某",
    amount_owed_fen=35_600_000,
    amount_paid_fen=0,
    created_at=T0,
)

A = Action
J, OF, D, C = Seat.JUDGE, Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR

# Every action the test knows, and whether a seat qualifies it. Adding an Action to the code
# without adding it here fails the suite.
SEAT_SCOPED: dict[Action, bool] = {
    A.CASE_CREATE: False,
    A.CASE_READ: False,
    A.DETENTION_CREATE: False,
    A.DETENTION_READ: False,
    A.SESSION_CREATE: False,
    A.SESSION_READ: False,
    A.SESSION_END: False,
    A.MODERATE: False,
    A.INVITE_ISSUE: False,
    A.INVITE_REVOKE: False,
    A.INVITE_READ: False,
    A.SEAT_JOIN: True,
    A.CONSENT_GIVE: True,
    A.TERMINAL_MANAGE: False,
    A.ACCOUNT_MANAGE: False,
    A.AUDIT_READ: False,
    A.RECORDING_READ: False,
}

Grant = tuple[Action, Seat | None]


def plain(*actions: Action) -> set[Grant]:
    return {(action, None) for action in actions}


def seated(action: Action, *seats: Seat) -> set[Grant]:
    return {(action, seat) for seat in seats}


READS = plain(A.CASE_READ, A.DETENTION_READ, A.SESSION_READ)
ANY_JUDGE = READS | plain(A.CASE_CREATE)
ASSIGNED_JUDGE = (
    ANY_JUDGE
    | plain(
        A.DETENTION_CREATE,
        A.SESSION_CREATE,
        A.SESSION_END,
        A.MODERATE,
        A.INVITE_ISSUE,
        A.INVITE_REVOKE,
        A.INVITE_READ,
        A.RECORDING_READ,  # the case's recordings: its own judge
    )
    | seated(A.SEAT_JOIN, J)  # a judge sits in the judge seat only
)
ADMIN = plain(A.TERMINAL_MANAGE, A.ACCOUNT_MANAGE, A.AUDIT_READ)
# Approvers read every case, and listen to its recordings (they approve what was agreed).
APPROVER = READS | plain(A.RECORDING_READ)


def party(*seats: Seat) -> set[Grant]:
    """An invite of this session: read it, and join / consent for exactly its seats; the judge's
    invite also moderates."""
    grants = plain(A.SESSION_READ) | seated(A.SEAT_JOIN, *seats) | seated(A.CONSENT_GIVE, *seats)
    return grants | (plain(A.MODERATE) if J in seats else set())


def account(
    id: str,
    role: AccountRole,
    *,
    admin: bool = False,
    disabled: bool = False,
) -> AccountPrincipal:
    return AccountPrincipal(
        Account(
            id=id,
            username=id,
            display_name=id,
            role=role,
            court="盐城市盐都区人民法院",
            center="盐城市拘留所" if role is AccountRole.OFFICER else "",
            is_admin=admin,
            password_hash="x",
            pin_hash=None,
            created_at=T0,
            disabled=disabled,
        )
    )


def invite(session_id: str, *seats: Seat) -> InvitePrincipal:
    return InvitePrincipal(InviteClaims("inv-" + "-".join(seats), session_id, seats, T0))


def terminal(*, disabled: bool = False) -> TerminalPrincipal:
    return TerminalPrincipal(Terminal("t1", "会见室一号终端", "盐城市拘留所", "x", T0, disabled))


@dataclass(frozen=True)
class Row:
    name: str
    principal: Principal
    allowed: set[Grant]


SEAT_SETS: list[tuple[Seat, ...]] = [(J,), (OF,), (D,), (C,), (OF, D)]

MATRIX: list[Row] = [
    Row("judge assigned to the case", account("judge-assigned", AccountRole.JUDGE), ASSIGNED_JUDGE),
    Row("judge not assigned", account("judge-other", AccountRole.JUDGE), ANY_JUDGE),
    Row("approver", account("approver", AccountRole.APPROVER), APPROVER),
    Row("officer account", account("officer", AccountRole.OFFICER), plain(A.DETENTION_READ)),
    # The clerk (书记员) reads every case and session to write transcripts; nothing else here.
    Row("clerk", account("clerk", AccountRole.CLERK), READS),
    Row("disabled clerk", account("clerk", AccountRole.CLERK, disabled=True), set()),
    Row(
        "admin judge, not assigned",
        account("admin", AccountRole.JUDGE, admin=True),
        ANY_JUDGE | ADMIN,
    ),
    Row(
        "admin judge, assigned",
        account("judge-assigned", AccountRole.JUDGE, admin=True),
        ASSIGNED_JUDGE | ADMIN,
    ),
    Row("admin approver", account("approver", AccountRole.APPROVER, admin=True), APPROVER | ADMIN),
    # Disabled beats everything: assigned, admin.
    Row(
        "disabled account",
        account("judge-assigned", AccountRole.JUDGE, admin=True, disabled=True),
        set(),
    ),
    Row("disabled officer", account("officer", AccountRole.OFFICER, disabled=True), set()),
    *(Row(f"invite {'+'.join(s)}", invite(SESSION, *s), party(*s)) for s in SEAT_SETS),
    *(
        Row(f"invite {'+'.join(s)}, other session", invite(OTHER_SESSION, *s), set())
        for s in SEAT_SETS
    ),
    # A registered terminal proves which kiosk it is; seats come from the invite it opens.
    Row("terminal", terminal(), set()),
    Row("disabled terminal", terminal(disabled=True), set()),
]


def test_every_action_has_an_expectation() -> None:
    assert set(Action) == set(SEAT_SCOPED), (
        "decide in SEAT_SCOPED and the MATRIX who may do each new Action"
    )


def test_the_matrix_mentions_only_known_grants() -> None:
    for row in MATRIX:
        for action, seat in row.allowed:
            assert SEAT_SCOPED[action] == (seat is not None), (row.name, action, seat)


def cells() -> list[Grant]:
    found: list[Grant] = []
    for action in Action:
        # An action missing from SEAT_SCOPED is reported by the test above; here it is
        # still checked, as unscoped and denied for everyone.
        seats: tuple[Seat | None, ...] = SEATS if SEAT_SCOPED.get(action) else (None,)
        found.extend((action, seat) for seat in seats)
    return found


@pytest.mark.parametrize("row", MATRIX, ids=[row.name for row in MATRIX])
def test_policy_matrix(row: Row) -> None:
    wrong = []
    for action, seat in cells():
        expected = (action, seat) in row.allowed
        reason = may(row.principal, action, case=CASE, session_id=SESSION, seat=seat)
        if (reason is None) != expected:
            verdict = "allowed" if reason is None else f"denied ({reason})"
            wrong.append(
                f"{action} seat={seat}: expected {'allow' if expected else 'deny'}, got {verdict}"
            )
            continue
        if expected:
            authorize(row.principal, action, case=CASE, session_id=SESSION, seat=seat)
        else:
            assert reason  # a reason for people, never empty
            with pytest.raises(Forbidden) as caught:
                authorize(row.principal, action, case=CASE, session_id=SESSION, seat=seat)
            assert caught.value.message == reason
            assert caught.value.status == 403
    assert not wrong, f"{row.name}:\n  " + "\n  ".join(wrong)


CASE_BOUND = [
    A.DETENTION_CREATE,
    A.SESSION_CREATE,
    A.SESSION_END,
    A.MODERATE,
    A.INVITE_ISSUE,
    A.INVITE_REVOKE,
    A.INVITE_READ,
    A.RECORDING_READ,
]


@pytest.mark.parametrize("action", CASE_BOUND)
def test_case_bound_actions_need_the_case(action: Action) -> None:
    judge = account("judge-assigned", AccountRole.JUDGE)
    assert may(judge, action, case=CASE) is None
    assert may(judge, action) == "no case given"
    with pytest.raises(Forbidden):
        authorize(judge, action)


def test_a_judge_joining_needs_the_case_and_the_judge_seat() -> None:
    judge = account("judge-assigned", AccountRole.JUDGE)
    assert may(judge, A.SEAT_JOIN, case=CASE, seat=J) is None
    assert may(judge, A.SEAT_JOIN, seat=J) is not None
    assert may(judge, A.SEAT_JOIN, case=CASE) is not None  # no seat named


@pytest.mark.parametrize("seats", SEAT_SETS)
def test_an_invite_needs_its_session_named(seats: tuple[Seat, ...]) -> None:
    principal = invite(SESSION, *seats)
    for action in (A.SEAT_JOIN, A.CONSENT_GIVE, A.SESSION_READ):
        assert may(principal, action, seat=seats[0]) is not None
        assert may(principal, action, session_id=SESSION, seat=seats[0]) is None


def test_reads_without_a_case_are_allowed_for_court_staff() -> None:
    # Listing pages ask without a case.
    for name in ("judge-assigned", "judge-other"):
        judge = account(name, AccountRole.JUDGE)
        for action in (A.CASE_READ, A.SESSION_READ, A.DETENTION_READ, A.CASE_CREATE):
            assert may(judge, action) is None
    assert may(account("approver", AccountRole.APPROVER), A.CASE_READ) is None
    assert may(account("officer", AccountRole.OFFICER), A.DETENTION_READ) is None


def test_actors_name_the_principal() -> None:
    assert account("judge-assigned", AccountRole.JUDGE).actor == "account:judge-assigned"
    assert invite(SESSION, C).actor == "invite:inv-creditor"
    assert terminal().actor == "terminal:t1"


# Documents: who a principal is for the documents of one case --------------------------------

CENTER = "盐城市拘留所"


def other_center_officer() -> AccountPrincipal:
    principal = account("officer-elsewhere", AccountRole.OFFICER)
    return AccountPrincipal(replace(principal.account, center="别处拘留所"))


def other_center_terminal() -> TerminalPrincipal:
    return TerminalPrincipal(Terminal("t2", "别处终端", "别处拘留所", "x", T0, False))


# (name, principal, the invite's session's case, an officer named) -> (actor, seat, pin asked)
DOCUMENT_ACTORS: list[tuple[str, Principal, str | None, bool, DocActor, Seat | None, bool]] = [
    ("assigned judge", account("judge-assigned", AccountRole.JUDGE), None, False,
     DocActor.JUDGE, None, False),
    ("other judge", account("judge-other", AccountRole.JUDGE), None, False,
     DocActor.OTHER, None, False),
    ("disabled judge", account("judge-assigned", AccountRole.JUDGE, disabled=True), None, False,
     DocActor.OTHER, None, False),
    ("approver", account("approver", AccountRole.APPROVER), None, False,
     DocActor.APPROVER, None, False),
    ("officer of the center", account("officer", AccountRole.OFFICER), None, False,
     DocActor.OFFICER, None, False),
    ("clerk", account("clerk", AccountRole.CLERK), None, False, DocActor.CLERK, None, False),
    ("clerk, PIN sent", account("clerk", AccountRole.CLERK), None, True,
     DocActor.CLERK, None, False),
    ("disabled clerk", account("clerk", AccountRole.CLERK, disabled=True), None, False,
     DocActor.OTHER, None, False),
    # A logged-in officer is known: a name or PIN sent along asks nothing more.
    ("officer of the center, PIN sent", account("officer", AccountRole.OFFICER), None, True,
     DocActor.OFFICER, None, False),
    ("officer of another center", other_center_officer(), None, False,
     DocActor.OTHER, None, False),
    ("debtor invite", invite(SESSION, D), CASE.id, False, DocActor.DEBTOR, D, False),
    ("debtor invite, PIN sent", invite(SESSION, D), CASE.id, True, DocActor.DEBTOR, D, False),
    ("creditor invite", invite(SESSION, C), CASE.id, False, DocActor.CREDITOR, C, False),
    ("officer invite", invite(SESSION, OF), CASE.id, False, DocActor.TERMINAL, OF, False),
    ("officer invite, PIN sent", invite(SESSION, OF), CASE.id, True, DocActor.OFFICER, OF, True),
    ("terminal invite", invite(SESSION, OF, D), CASE.id, False, DocActor.DEBTOR, D, False),
    ("terminal invite, PIN sent", invite(SESSION, OF, D), CASE.id, True,
     DocActor.OFFICER, OF, True),
    ("judge invite", invite(SESSION, J), CASE.id, False, DocActor.OTHER, None, False),
    ("invite of another case", invite(OTHER_SESSION, D), "c-other", True,
     DocActor.OTHER, None, False),
    ("terminal of the center", terminal(), None, False, DocActor.TERMINAL, None, False),
    ("terminal of the center, PIN sent", terminal(), None, True, DocActor.OFFICER, None, True),
    ("disabled terminal", terminal(disabled=True), None, True, DocActor.OTHER, None, False),
    ("terminal of another center", other_center_terminal(), None, True,
     DocActor.OTHER, None, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "session_case", "named", "actor", "seat", "pin"),
    [row[1:] for row in DOCUMENT_ACTORS],
    ids=[row[0] for row in DOCUMENT_ACTORS],
)
def test_document_actor(
    principal: Principal,
    session_case: str | None,
    named: bool,
    actor: DocActor,
    seat: Seat | None,
    pin: bool,
) -> None:
    who = document_actor(
        principal, CASE, center=CENTER, session_case_id=session_case, names_officer=named
    )
    assert (who.actor, who.seat, who.needs_pin) == (actor, seat, pin)
    assert who.name == principal.actor  # until a PIN names the officer
    if pin:
        confirmed = who.confirmed("officer-7")
        assert (confirmed.name, confirmed.officer_id) == ("officer:officer-7", "officer-7")
        assert not confirmed.needs_pin


def test_without_a_detention_no_officer_or_terminal_acts() -> None:
    for principal in (account("officer", AccountRole.OFFICER), terminal()):
        who = document_actor(principal, CASE, center=None, names_officer=True)
        assert who.actor is DocActor.OTHER
        assert not who.needs_pin


def test_inboxes_of_each_principal() -> None:
    assert inboxes_of(account("judge-assigned", AccountRole.JUDGE)) == ["account:judge-assigned"]
    assert inboxes_of(invite(SESSION, OF, D), session_case_id=CASE.id) == [
        f"seat:{CASE.id}:officer",
        f"seat:{CASE.id}:debtor",
    ]
    assert inboxes_of(terminal()) == ["terminal:t1"]


def test_only_court_staff_list_documents() -> None:
    staff: list[Principal] = [
        account("judge-other", AccountRole.JUDGE),
        account("approver", AccountRole.APPROVER),
    ]
    for principal in staff:
        check_lists_documents(principal)
    others: list[Principal] = [
        account("officer", AccountRole.OFFICER),
        invite(SESSION, D),
        terminal(),
    ]
    for principal in others:
        with pytest.raises(Forbidden, match="only court staff"):
            check_lists_documents(principal)


def test_only_the_judge_shares() -> None:
    check_shares(Who(DocActor.JUDGE, "account:judge-assigned"))
    for actor in set(DocActor) - {DocActor.JUDGE}:
        with pytest.raises(Forbidden, match="only the case's judge"):
            check_shares(Who(actor, "x"))


def test_at_a_terminal_the_debtor_signs_and_the_officer_confirms() -> None:
    officer = Who(DocActor.OFFICER, "officer:o1", Seat.OFFICER, "o1")
    who, seat = signer(officer, officer_confirms=True)
    assert (who.actor, who.name, who.officer_id, seat) == (
        DocActor.DEBTOR,
        "officer:o1",
        "o1",
        Seat.DEBTOR,
    )
    creditor = Who(DocActor.CREDITOR, "invite:c", Seat.CREDITOR)
    assert signer(creditor, officer_confirms=True) == (creditor, Seat.CREDITOR)
    assert signer(officer, officer_confirms=False) == (officer, Seat.OFFICER)
    judge = Who(DocActor.JUDGE, "account:j")
    assert signer(judge, officer_confirms=False) == (judge, None)
