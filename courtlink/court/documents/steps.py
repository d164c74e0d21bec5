"""The one template every document step follows, written once (``Step.run``):

1. read what the step is about and who acts for this case (policy.document_actor), in a read
   transaction (``load``);
2. check the rights table (``allowed``: lifecycle.check_step, by default);
3. render and seal what the step produces, *outside* any write transaction (``prepare``):
   rendering takes a second, and the database is not held meanwhile;
4. in one write transaction, lock the document and refuse a lost race (``lock``: Conflict when
   another step moved the document on since step 1), then write the new state, the step, the
   receipt, the inbox items and the audit events together (``write``): they commit or roll back
   as one, and a refused step leaves nothing behind but an unreferenced file;
5. after commit, tell the screens (``Desk.push``): nobody hears of a change that rolled back.

A step supplies only what differs. ``DocumentStep`` is a step on an existing document (load,
rights and race check are the same for most); a step creating a document implements ``load``
and ``allowed`` itself and has no race to lose on a row that does not exist yet.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

from courtlink.court.cases import Case
from courtlink.court.detentions import Detention
from courtlink.court.documents.desk import Desk
from courtlink.court.documents.lifecycle import (
    DocAction,
    DocState,
    Document,
    InboxItem,
    check_step,
)
from courtlink.court.policy import Principal, Who
from courtlink.errors import Conflict
from courtlink.storage import Records

__all__ = ["DocumentScene", "DocumentStep", "PlainDocumentStep", "Scene", "Step", "Written"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scene:
    """What a step read before deciding: the case, its detention, and who acts."""

    case: Case
    detention: Detention | None
    who: Who


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentScene(Scene):
    """The scene of a step on an existing document."""

    document: Document


@dataclass(frozen=True, slots=True)
class Written:
    """What a step's write transaction committed."""

    document: Document
    items: Sequence[InboxItem] = ()  # new inbox items, pushed to their recipients
    changed: bool = True  # False: the document is as it was, nobody is told
    item: InboxItem | None = None  # the inbox item the step marked (a fetch)


S = TypeVar("S", bound=Scene)
D = TypeVar("D", bound=DocumentScene)
P = TypeVar("P")


class Step(ABC, Generic[S, P]):
    """One step of a document's lifecycle; ``run`` is the template, the rest what differs.

    ``S`` is what ``load`` read, ``P`` what ``prepare`` made ready for the write.
    """

    async def run(self, desk: Desk) -> Written:
        """Load, check, prepare, lock and write, then push: in this order, always."""
        async with desk.store.read() as tx:
            scene = await self.load(desk, tx)
        state = self.allowed(scene)
        now = desk.clock()  # one instant for the whole step: document, step, receipt, items
        prepared = await self.prepare(desk, scene, state, now)
        async with desk.store.write() as tx:
            scene = await self.lock(tx, scene)
            written = await self.write(desk, tx, scene, prepared, now)
        if not written.changed:
            return written
        return replace(written, document=await desk.push(written.document, written.items))

    @abstractmethod
    async def load(self, desk: Desk, tx: Records) -> S:
        """Read the step's subject and resolve who acts (``Desk.who``)."""

    @abstractmethod
    def allowed(self, scene: S) -> DocState:
        """The state after the step; Forbidden or Conflict (or InvalidInput) when refused."""

    @abstractmethod
    async def prepare(self, desk: Desk, scene: S, state: DocState, now: datetime) -> P:
        """Everything decided outside the write transaction: rendering, sealing, storing."""

    async def lock(self, tx: Records, scene: S) -> S:
        """Lock what the write depends on and refuse a lost race; the scene as it is now.
        A new document has no row to lock: nothing to do by default."""
        return scene

    @abstractmethod
    async def write(self, desk: Desk, tx: Records, scene: S, prepared: P, now: datetime) -> Written:
        """Write the state, step, receipt, inbox items and audit events (one transaction)."""


@dataclass(frozen=True, kw_only=True)
class DocumentStep(Step[D, P]):
    """A step on an existing document by ``principal`` (an officer names themself with
    ``officer`` and ``pin``). By default the rights table decides, and a document whose state
    moved on since it was read is a lost race (``conflict`` says so)."""

    action: ClassVar[DocAction]
    conflict: ClassVar[str] = "the document changed meanwhile; reload"

    principal: Principal
    document_id: str
    officer: str | None = None
    pin: str | None = None

    async def read_scene(self, desk: Desk, tx: Records) -> DocumentScene:
        """The document, its case and detention, and who acts."""
        document, case, detention = await desk.context(tx, self.document_id)
        who = await desk.who(
            tx, self.principal, case, detention, officer=self.officer, pin=self.pin
        )
        return DocumentScene(case=case, detention=detention, who=who, document=document)

    def allowed(self, scene: D) -> DocState:
        """The rights table (lifecycle.check_step) for this document, action and actor."""
        document = scene.document
        return check_step(document.kind, document.state, self.action, scene.who.actor)

    async def lock(self, tx: Records, scene: D) -> D:
        """The stored document, locked for this transaction; Conflict when its state moved on
        since it was read (another step won the race)."""
        current = await tx.document(scene.document.id, for_update=True)
        if current.state is not scene.document.state:
            raise Conflict(self.conflict)
        return replace(scene, document=current)


class PlainDocumentStep(DocumentStep[DocumentScene, P]):
    """A step on a document that needs nothing read beyond the document, its case, its
    detention and who acts."""

    async def load(self, desk: Desk, tx: Records) -> DocumentScene:
        """``read_scene``."""
        return await self.read_scene(desk, tx)
