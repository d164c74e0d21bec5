"""Writing the audit chain: events inside the caller's transaction, checkpoints in the background.

Events are appended in the same transaction as the change they describe, so a change and its
record commit or roll back together. Checkpoints are signed after commit by a background task
the application owns (``run``), and also appended to a witness file outside the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from courtlink.clock import Clock, system_clock
from courtlink.court.audit import (
    AuditEvent,
    Checkpoint,
    VerifyReport,
    checkpoint_payload,
    verify_chain,
)
from courtlink.court.keys import KeyRing
from courtlink.storage import Records, Store

__all__ = ["Auditor", "read_witness"]


def read_witness(path: Path) -> list[Checkpoint]:
    """Checkpoints in the witness file; a torn last line (crash mid-write) is ignored."""
    if not path.exists():
        return []
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            found.append(Checkpoint.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            if number != len(lines):
                raise
    return found


class Auditor:
    def __init__(
        self,
        store: Store,
        keys: KeyRing,
        witness: Path,
        *,
        every: int = 50,
        seconds: float = 60.0,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.keys = keys
        self.witness = witness
        self.every = every
        self.seconds = seconds
        self.clock = clock
        self._wake = asyncio.Event()
        self._appended = 0

    async def record(
        self,
        tx: Records,
        kind: str,
        actor: str,
        *,
        session_id: str | None = None,
        case_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append an event within ``tx`` (it commits with the caller's change)."""
        event = await tx.append_audit(
            at=self.clock(),
            kind=kind,
            actor=actor,
            session_id=session_id,
            case_id=case_id,
            data=data or {},
        )
        self._appended += 1
        self._wake.set()
        return event

    async def log(
        self,
        kind: str,
        actor: str,
        *,
        session_id: str | None = None,
        case_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append an event in a transaction of its own."""
        async with self.store.write() as tx:
            return await self.record(
                tx, kind, actor, session_id=session_id, case_id=case_id, data=data
            )

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the head now if events came since the last checkpoint."""
        async with self.store.write() as tx:
            seq, head_hash, covered = await tx.audit_head_for_update()
            if seq <= covered:
                return None
            at = self.clock()
            kid, signature = self.keys.sign(
                checkpoint_payload(seq, head_hash, at, self.keys.current_kid)
            )
            checkpoint = Checkpoint(seq=seq, hash=head_hash, at=at, kid=kid, signature=signature)
            await tx.add_checkpoint(checkpoint)
        self._append_witness(checkpoint)
        return checkpoint

    def _append_witness(self, checkpoint: Checkpoint) -> None:
        self.witness.parent.mkdir(parents=True, exist_ok=True)
        with self.witness.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(checkpoint.to_json()) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    async def run(self) -> None:
        """Checkpoint after ``every`` events, or ``seconds`` after the first uncovered one."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            deadline = loop.time() + self.seconds
            while True:
                self._wake.clear()
                async with self.store.read() as tx:
                    seq, _, covered = await tx.audit_head()
                if seq <= covered:
                    break
                if seq - covered >= self.every or loop.time() >= deadline:
                    await self.checkpoint()
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), deadline - loop.time())

    async def verify(self, keys: KeyRing | None = None) -> VerifyReport:
        """Recompute the whole chain and check every checkpoint and the witness file."""
        async with self.store.read() as tx:
            events = [e async for e in tx.stream_audit()]
            checkpoints = await tx.checkpoints()
            seq, head_hash, _ = await tx.audit_head()
        return verify_chain(
            events, checkpoints, keys or self.keys, read_witness(self.witness), (seq, head_hash)
        )
