"""Two steps on one document at once (a double click on 发出): the template refuses the loser
with Conflict, and only the winner's sealed file is kept. Files are kept by document id, so a
loser that stored its file while preparing (as ``issue`` and ``confirm`` once did) would replace
the winner's with one whose hash nobody recorded."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from courtlink.court.policy import AccountPrincipal
from courtlink.errors import Conflict
from courtlink.web.services import Services
from tests.court.conftest import MovableClock
from tests.court.documents.support import MemoryFiles, drafted, registry_on
from tests.helpers import World


class TwoAtOnce:
    """A Printer for two concurrent steps: each rendering differs (as real ones do: a signing
    time), and neither finishes before both have started."""

    def __init__(self) -> None:
        self.count = 0
        self.both = asyncio.Barrier(2)

    async def print(
        self, template: str, context: dict[str, Any], *, document_id: str, seal: bool = True
    ) -> tuple[bytes, str | None]:
        self.count += 1
        pdf = f"%PDF-test rendering {self.count}".encode()
        await self.both.wait()
        return pdf, "test-key"


async def issue_twice(services: Services, world: World, clock: MovableClock) -> tuple[Any, ...]:
    registry = registry_on(services, clock)
    document = await drafted(registry, world)
    await registry.approve(AccountPrincipal(world.approver), document.id)
    registry.printer = TwoAtOnce()
    judge = AccountPrincipal(world.judge)
    results = await asyncio.gather(
        registry.issue(judge, document.id),
        registry.issue(judge, document.id),
        return_exceptions=True,
    )
    stored = await registry.find(document.id)
    files = registry.files
    assert isinstance(files, MemoryFiles)
    return results, stored, hashlib.sha256(files.files[document.id]).hexdigest()


async def test_of_two_issues_at_once_one_wins(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    results, stored, _ = await issue_twice(services, world, clock)
    assert sum(isinstance(r, Conflict) for r in results) == 1
    assert [s["action"] for s in stored.steps] == ["draft", "approve", "issue"]


async def test_the_winners_file_is_the_one_kept(
    world_services: tuple[Services, World], clock: MovableClock
) -> None:
    services, world = world_services
    _, stored, kept = await issue_twice(services, world, clock)
    assert kept == stored.sha256
