"""``courtlink verify``: is this PDF the court's, and the one it issued?"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from courtlink.cli.common import fail, run, with_services

__all__ = ["verify"]


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--certs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Offline: the court's public certificates (PEM, as served at /api/keys); "
    "without it the server's keys and records in the data directory are used.",
)
def verify(file: Path, certs: Path | None) -> None:
    """Check a Courtlink PDF: the court's seal, and (with the records) that it is the one issued."""
    from courtlink.papers.seal import CourtSeal, load_certificates
    from courtlink.papers.verify import check_copy

    pdf = file.read_bytes()
    if certs is not None:
        try:
            certificates = load_certificates(certs.read_text())
        except (ValueError, UnicodeDecodeError):
            fail(f"{certs}: no PEM certificates in it (save them from /api/keys)")
        seal = CourtSeal(None, certificates)

        async def offline() -> Any:
            return await check_copy(seal, pdf, None)

        check = run(offline())
    else:

        async def online(services: Any) -> Any:
            return await check_copy(services.seal, pdf, services.registry)

        check = with_services(online, checkpoint=False)()
    name = check.document.number if check.document is not None else (check.seal.document_id or "?")
    if check.ok:
        when = check.seal.signing_time.isoformat() if check.seal.signing_time else "?"
        click.echo(f"genuine: {name}, sealed with key {check.seal.kid} at {when}")
        return
    click.echo(f"NOT GENUINE: {name}: {'; '.join(check.problems)}")
    sys.exit(1)
