"""The documents' rights table, checked whole: every kind x action x actor x state (none yet, and
every DocState) against an expectation written out here, not derived from rooms.documents.

``check_step`` answers Forbidden when the actor may never take that action on that kind,
Conflict when the actor may but the state does not allow it now, else the state after.
"""

from __future__ import annotations

import itertools

import pytest

from courtlink.court.documents.lifecycle import (
    Actor,
    DocAction,
    DocKind,
    DocState,
    Document,
    check_step,
)
from courtlink.court.documents.registry import chinese_number
from courtlink.errors import Conflict, Forbidden

# Every member the expectations below speak about. A new member of an enum without a line here
# fails test_every_enum_member_has_an_expectation: add its expected rights first.
KINDS = ("renewal", "release", "settlement", "payment_proof", "receipt", "upload", "transcript")
STATES = (
    "drafted",
    "approved",
    "signed",
    "issued",
    "delivered",
    "acknowledged",
    "served",
    "executed",
    "refused",
    "final",
)
ACTIONS = (
    "draft",
    "approve",
    "issue",
    "deliver",
    "acknowledge",
    "serve",
    "execute",
    "refuse",
    "sign",
    "confirm",
    "upload",
    "save",
    "read",
)
ACTORS = ("judge", "approver", "clerk", "officer", "debtor", "creditor", "terminal", "other")

# Every step that can succeed: kind, state before ("-": a new document), action, the actors who
# may take it, the state after. Any other (kind, state, action, actor) is refused: Forbidden when
# the actor appears on no line of that kind and action, Conflict otherwise.
STEPS = """
renewal        -             draft        judge                               drafted
renewal        drafted       approve      approver                            approved
renewal        approved      issue        judge                               issued
renewal        issued        deliver      terminal,officer                    delivered
renewal        delivered     acknowledge  officer                             acknowledged
renewal        acknowledged  serve        officer                             served
renewal        served        execute      officer                             executed
renewal        delivered     refuse       officer                             refused
renewal        acknowledged  refuse       officer                             refused
renewal        served        refuse       officer                             refused
release        -             draft        judge                               drafted
release        drafted       approve      approver                            approved
release        approved      issue        judge                               issued
release        issued        deliver      terminal,officer                    delivered
release        delivered     acknowledge  officer                             acknowledged
release        acknowledged  serve        officer                             served
release        served        execute      officer                             executed
release        delivered     refuse       officer                             refused
release        acknowledged  refuse       officer                             refused
release        served        refuse       officer                             refused
settlement     -             draft        judge                               drafted
settlement     drafted       sign         debtor,creditor                     drafted
settlement     signed        confirm      judge                               issued
settlement     issued        deliver      terminal,officer,debtor,creditor    issued
payment_proof  -             upload       creditor                            final
receipt        -             upload       officer                             final
upload         -             upload       judge,officer,debtor,creditor       final
transcript     -             draft        clerk,judge                         drafted
transcript     drafted       save         clerk,judge                         drafted
transcript     drafted       sign         debtor,creditor                     drafted
transcript     signed        confirm      judge                               issued
transcript     issued        deliver      terminal,officer,debtor,creditor    issued
"""

# Who may read each kind (besides a named recipient: that is the Registry's business).
READERS = {
    "renewal": "judge approver officer terminal debtor",
    "release": "judge approver officer terminal debtor",
    "settlement": "judge approver officer terminal debtor creditor",
    "payment_proof": "judge approver creditor debtor",
    "receipt": "judge approver officer terminal",
    "upload": "judge approver officer terminal debtor creditor",
    "transcript": "judge approver clerk officer terminal debtor creditor",
}

Step = tuple[str, str | None, str]  # kind, state before, action


def _steps() -> dict[Step, tuple[frozenset[str], str]]:
    table: dict[Step, tuple[frozenset[str], str]] = {}
    for line in STEPS.strip().splitlines():
        kind, before, action, actors, after = line.split()
        key = (kind, None if before == "-" else before, action)
        assert key not in table, f"line twice: {line}"
        table[key] = (frozenset(actors.split(",")), after)
    return table


EXPECTED = _steps()


def _rights() -> dict[tuple[str, str], frozenset[str]]:
    """(kind, action) -> actors, from the lines above (which must agree with each other)."""
    rights: dict[tuple[str, str], frozenset[str]] = {}
    for (kind, _, action), (actors, _) in EXPECTED.items():
        seen = rights.setdefault((kind, action), actors)
        assert seen == actors, f"{kind} {action}: the lines name different actors"
    return rights


RIGHTS = _rights()


def _outcome(kind: str, state: str | None, action: str, actor: str) -> str:
    """The expected answer: the state after, or 'Forbidden' or 'Conflict'."""
    if action == "read":
        if actor not in READERS[kind].split():
            return "Forbidden"
        return "Conflict" if state is None else state
    if actor not in RIGHTS.get((kind, action), frozenset()):
        return "Forbidden"
    step = EXPECTED.get((kind, state, action))
    return "Conflict" if step is None else step[1]


def _actual(kind: DocKind, state: DocState | None, action: DocAction, actor: Actor) -> str:
    try:
        return str(check_step(kind, state, action, actor))
    except Forbidden:
        return "Forbidden"
    except Conflict:
        return "Conflict"


def test_every_enum_member_has_an_expectation() -> None:
    assert {str(k) for k in DocKind} == set(KINDS), "a kind without expected rights"
    assert {str(s) for s in DocState} == set(STATES), "a state without expectations"
    assert {str(a) for a in DocAction} == set(ACTIONS), "an action without expected rights"
    assert {str(a) for a in Actor} == set(ACTORS), "an actor without expected rights"
    assert set(READERS) == set(KINDS)
    for kind, before, action in EXPECTED:
        assert kind in KINDS
        assert before is None or before in STATES
        assert action in ACTIONS
    for actors, after in EXPECTED.values():
        assert actors <= set(ACTORS)
        assert after in STATES
    for readers in READERS.values():
        assert set(readers.split()) <= set(ACTORS)


def test_the_whole_matrix() -> None:
    """Every kind x state (None and each) x action x actor, reading included."""
    wrong = []
    checked = successes = 0
    for kind, state, action, actor in itertools.product(
        DocKind, [None, *DocState], DocAction, Actor
    ):
        expected = _outcome(str(kind), None if state is None else str(state), str(action), actor)
        actual = _actual(kind, state, action, actor)
        checked += 1
        successes += expected not in ("Forbidden", "Conflict")
        if actual != expected:
            wrong.append(f"{kind} {state or '-'} {action} by {actor}: {actual}, want {expected}")
    print(f"rights matrix: {checked} combinations, {successes} allowed")
    assert checked == len(KINDS) * (len(STATES) + 1) * len(ACTIONS) * len(ACTORS)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("kind", "before", "action"), sorted(EXPECTED, key=str))
def test_each_allowed_step_and_its_refusals(kind: str, before: str | None, action: str) -> None:
    """A line of the table, spelled out: its actors get the state after, the others Forbidden;
    the same action in a state of no line is a Conflict even for its actors."""
    actors, after = EXPECTED[(kind, before, action)]
    state = None if before is None else DocState(before)
    for actor in Actor:
        if str(actor) in actors:
            assert check_step(DocKind(kind), state, DocAction(action), actor) is DocState(after)
        else:
            with pytest.raises(Forbidden):
                check_step(DocKind(kind), state, DocAction(action), actor)
    allowed_in = {b for (k, b, a) in EXPECTED if (k, a) == (kind, action)}
    for other in [None, *DocState]:
        if (None if other is None else str(other)) in allowed_in:
            continue
        for actor in actors:
            with pytest.raises(Conflict):
                check_step(DocKind(kind), other, DocAction(action), Actor(actor))


def test_orders_run_from_draft_to_execution_and_stop() -> None:
    for kind in (DocKind.RENEWAL, DocKind.RELEASE):
        path = [
            (DocAction.DRAFT, Actor.JUDGE),
            (DocAction.APPROVE, Actor.APPROVER),
            (DocAction.ISSUE, Actor.JUDGE),
            (DocAction.DELIVER, Actor.TERMINAL),
            (DocAction.ACKNOWLEDGE, Actor.OFFICER),
            (DocAction.SERVE, Actor.OFFICER),
            (DocAction.EXECUTE, Actor.OFFICER),
        ]
        state: DocState | None = None
        for action, actor in path:
            state = check_step(kind, state, action, actor)
        assert state is DocState.EXECUTED
        # Nothing more happens to an executed or a refused order.
        for final in (DocState.EXECUTED, DocState.REFUSED):
            for action in DocAction:
                if action is DocAction.READ:
                    continue
                for actor in Actor:
                    with pytest.raises((Forbidden, Conflict)):
                        check_step(kind, final, action, actor)


def test_no_one_decides_for_another_role() -> None:
    """The judge cannot approve their own order; an approver cannot issue it; a terminal only
    fetches; 'other' (another judge, a party of another case) may do and read nothing."""
    with pytest.raises(Forbidden):
        check_step(DocKind.RENEWAL, DocState.DRAFTED, DocAction.APPROVE, Actor.JUDGE)
    with pytest.raises(Forbidden):
        check_step(DocKind.RENEWAL, DocState.APPROVED, DocAction.ISSUE, Actor.APPROVER)
    for action in (DocAction.ACKNOWLEDGE, DocAction.SERVE, DocAction.EXECUTE, DocAction.REFUSE):
        with pytest.raises(Forbidden):
            check_step(DocKind.RELEASE, DocState.DELIVERED, action, Actor.TERMINAL)
    for kind, action, state in itertools.product(DocKind, DocAction, [None, *DocState]):
        with pytest.raises(Forbidden):
            check_step(kind, state, action, Actor.OTHER)


def test_refusal_messages_say_who_and_what() -> None:
    with pytest.raises(Forbidden, match="approver may not issue a renewal"):
        check_step(DocKind.RENEWAL, DocState.APPROVED, DocAction.ISSUE, Actor.APPROVER)
    with pytest.raises(Conflict, match="release document that is drafted cannot be issued"):
        check_step(DocKind.RELEASE, DocState.DRAFTED, DocAction.ISSUE, Actor.JUDGE)
    with pytest.raises(Conflict, match="no such document"):
        check_step(DocKind.UPLOAD, None, DocAction.READ, Actor.JUDGE)
    with pytest.raises(Forbidden, match="creditor may not read a receipt"):
        check_step(DocKind.RECEIPT, DocState.FINAL, DocAction.READ, Actor.CREDITOR)


def test_is_order() -> None:
    from datetime import UTC, datetime

    def doc(kind: DocKind) -> Document:
        return Document(
            id="d",
            case_id="c",
            kind=kind,
            state=DocState.DRAFTED,
            number="n",
            title="t",
            fields={},
            created_by="x",
            created_at=datetime.now(UTC),
        )

    assert {k for k in DocKind if doc(k).is_order} == {DocKind.RENEWAL, DocKind.RELEASE}


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (1, "一"),
        (2, "二"),
        (9, "九"),
        (10, "十"),
        (11, "十一"),
        (19, "十九"),
        (20, "二十"),
        (21, "二十一"),
        (35, "三十五"),
        (99, "九十九"),
        (100, "一百"),
        (101, "一百零一"),
        (105, "一百零五"),
        (110, "一百一十"),
        (111, "一百一十一"),
        (120, "一百二十"),
        (200, "二百"),
        (305, "三百零五"),
        (999, "九百九十九"),
        # Outside 1..999 the number is written with digits.
        (0, "0"),
        (1000, "1000"),
        (-3, "-3"),
    ],
)
def test_chinese_number(n: int, text: str) -> None:
    assert chinese_number(n) == text
