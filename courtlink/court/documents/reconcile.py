"""Documents against the audit chain. Each step's audit event records the document's state and
file hash after the step (Desk.audit); a documents row edited, inserted or deleted behind the
application's back no longer agrees with the last event about it. The chain itself is checked
by ``Auditor.verify``; ``courtlink audit verify`` runs both."""

from __future__ import annotations

from typing import Any

from courtlink.storage import Store

__all__ = ["DOCUMENT_EVENTS", "reconcile"]

# Every document audit kind (AuditKind.DOCUMENT_*) starts so; the chain is scanned by prefix,
# so events written before a kind was named still count.
DOCUMENT_EVENTS = "document."


async def reconcile(store: Store) -> list[tuple[str, str]]:
    """Every document row against the last audit event about it: (document id, problem)."""
    last: dict[str, dict[str, Any]] = {}
    async with store.read() as tx:
        async for event in tx.stream_audit():
            document_id = (
                event.data.get("document") if event.kind.startswith(DOCUMENT_EVENTS) else None
            )
            if isinstance(document_id, str) and "state" in event.data:
                last[document_id] = event.data
        documents = await tx.documents()
    problems = []
    for document in documents:
        seen = last.get(document.id)
        if seen is None:
            problems.append((document.id, "no audit event records this document (row inserted)"))
            continue
        if seen["state"] != str(document.state):
            problems.append(
                (document.id, f"state {document.state}, chain says {seen['state']} (row edited)")
            )
        if seen.get("file_sha256") != document.sha256:
            problems.append((document.id, "file hash differs from the audit chain (row edited)"))
    recorded = {d.id for d in documents}
    for document_id in last:
        if document_id not in recorded:
            problems.append(
                (
                    document_id,
                    "the audit chain records this document but its row is gone (row deleted)",
                )
            )
    return problems
