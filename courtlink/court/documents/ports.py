"""What the Registry needs from the edges: rendering and sealing (``Printer``, papers/), durable
files (``FileStore``, papers/) and live notification (``Notifier``, signaling/). The domain
names them; the edges implement them, so court/ imports no web, PDF or socket library."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from courtlink.court.documents.lifecycle import Document, InboxItem

__all__ = ["FileStore", "Notifier", "Printer", "Silent"]


class Printer(Protocol):
    """Turns a document into a sealed PDF (papers/: Jinja2, WeasyPrint, pyHanko)."""

    async def print(
        self, template: str, context: dict[str, Any], *, document_id: str, seal: bool = True
    ) -> tuple[bytes, str | None]:
        """(PDF bytes, key id of the court seal or None when unsealed)."""


class FileStore(Protocol):
    """Where documents' files live, by document id."""

    async def put(self, document_id: str, data: bytes) -> None:
        """Store durably (written and synced before this returns)."""

    async def get(self, document_id: str) -> bytes:
        """The stored file."""


class Notifier(Protocol):
    """Pushes changes to whoever is connected (signaling/)."""

    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        """``document`` changed; ``recipients`` hold it in their inboxes."""

    async def delivered(self, item: InboxItem, document: Document) -> None:
        """``document`` arrived in ``item``'s inbox."""

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        """Nobody acknowledged ``item`` in time: tell the judge."""


class Silent:
    """A Notifier that tells nobody (the CLI, and tests that do not listen)."""

    async def changed(self, document: Document, recipients: Sequence[str]) -> None:
        """Nothing to tell."""

    async def delivered(self, item: InboxItem, document: Document) -> None:
        """Nothing to tell."""

    async def overdue(self, item: InboxItem, document: Document, judge_id: str) -> None:
        """Nothing to tell."""
