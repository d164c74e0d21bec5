"""``courtlink audit verify``: the audit chain and the document rows checked against it."""

from __future__ import annotations

import sys
from typing import Any

import click

from courtlink.cli.common import with_services

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The audit chain."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute the chain and check every signed checkpoint; exit 1 at the first bad link."""

    async def check(services: Any) -> bool:
        report = await services.auditor.verify()
        click.echo(report.summary())
        for problem in sorted(report.problems, key=lambda p: p.seq)[1:6]:
            click.echo(f"  also seq {problem.seq}: {problem.reason}")
        # Document rows against the chain (an edited row), only when the chain itself holds.
        mismatches = await services.registry.reconcile() if report.ok else []
        for document_id, reason in mismatches[:10]:
            click.echo(f"document {document_id}: {reason}")
        return bool(report.ok) and not mismatches

    go = with_services(check, checkpoint=False)
    if not go():
        sys.exit(1)
