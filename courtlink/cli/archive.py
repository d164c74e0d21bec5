"""``courtlink archive``: a case as one package for long-term storage, and its check."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from courtlink.cli.common import with_services
from courtlink.cli.verify import verify_directory

__all__ = ["archive"]


@click.group()
def archive() -> None:
    """Export a case's recordings, documents and audit extract; verify a package."""


@archive.command("export")
@click.argument("case")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="A new (or empty) directory for the package; default ./archive-<case id>.",
)
def export(case: str, out: Path | None) -> None:
    """Write case CASE (its number or id) as one signed package, then verify it."""
    started = time.monotonic()

    target = out.resolve() if out is not None else None

    async def go(services: Any) -> Any:
        return await services.archive.export(case, target, actor="operator")

    report = with_services(go)()
    for line in report.skipped:
        click.echo(f"skipped: {line}")
    for finding in report.check.findings:
        click.echo(str(finding))
    seconds = time.monotonic() - started
    click.echo(
        f"exported case {report.case.number} to {report.directory}: {report.files} files, "
        f"{report.bytes} bytes, {len(report.recordings)} recordings, "
        f"{len(report.documents)} documents, archive.json sha256 {report.index_sha256} "
        f"({seconds:.1f} s)"
    )
    if not report.check.ok:
        click.echo("NOT GENUINE: the package written does not verify")
        sys.exit(1)
    click.echo("verified: every file matches archive.json, sealed by the court")


@archive.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--certs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Offline: the court's public certificates (PEM, as served at /api/keys).",
)
def verify(directory: Path, certs: Path | None) -> None:
    """Check an exported package or a recording directory (the same as courtlink verify)."""
    verify_directory(directory, certs)
