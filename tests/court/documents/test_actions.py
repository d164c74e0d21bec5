"""Registry.actions: the buttons a staff page offers for each document come from the rights
table and the document's state, for the principal's role in its case."""

from __future__ import annotations

import pytest

from courtlink.court.documents.lifecycle import (
    RIGHTS,
    Actor,
    DocAction,
    DocKind,
    DocState,
    allows,
    check_step,
)
from courtlink.court.policy import AccountPrincipal
from courtlink.errors import CourtlinkError, Forbidden
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.court.documents.support import drafted, registry_on
from tests.helpers import World

BUTTONS = (DocAction.APPROVE, DocAction.ISSUE, DocAction.CONFIRM)


async def test_each_stage_of_an_order_offers_the_next_step_to_whom_it_belongs(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    judge, other = AccountPrincipal(world.judge), AccountPrincipal(world.other_judge)
    approver = AccountPrincipal(world.approver)
    order = await drafted(registry, world)

    async def offered(principal: AccountPrincipal) -> frozenset[DocAction]:
        document = await registry.find(order.id)
        return (await registry.actions(principal, [document], BUTTONS))[order.id]

    assert await offered(approver) == {DocAction.APPROVE}
    assert await offered(judge) == set()
    await registry.approve(approver, order.id)
    assert await offered(judge) == {DocAction.ISSUE}
    assert await offered(other) == set()  # not this case's judge
    assert await offered(approver) == set()
    await registry.issue(judge, order.id)
    assert await offered(judge) == set()


async def test_only_court_staff_are_offered_anything(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    registry = registry_on(services, clock)
    order = await drafted(registry, world)
    with pytest.raises(Forbidden):
        await registry.actions(AccountPrincipal(world.officer), [order], BUTTONS)


@pytest.mark.parametrize("kind", list(DocKind))
@pytest.mark.parametrize("action", list(DocAction))
def test_allows_says_what_check_step_would(kind: DocKind, action: DocAction) -> None:
    """``allows`` and ``check_step`` never disagree, for every kind, state, action and actor."""
    for state in [None, *DocState]:
        for actor in Actor:
            try:
                check_step(kind, state, action, actor)
            except CourtlinkError:
                expected = False
            else:
                expected = True
            assert allows(kind, state, action, actor) is expected, (kind, state, action, actor)


def test_the_rights_table_is_not_empty() -> None:
    """A guard for the test above: it would pass on an empty table."""
    assert len(RIGHTS) > 5
    assert allows(DocKind.RENEWAL, DocState.DRAFTED, DocAction.APPROVE, Actor.APPROVER)
