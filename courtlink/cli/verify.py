"""``courtlink verify``: is this PDF the court's, and the one it issued? Is this recording (or
exported archive) whole, and sealed by the court?"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from courtlink.cli.common import fail, run, with_services

__all__ = ["verify", "verify_directory"]


def _offline_seal(certs: Path) -> Any:
    from courtlink.papers.seal import CourtSeal, load_certificates

    try:
        certificates = load_certificates(certs.read_text())
    except (ValueError, UnicodeDecodeError):
        fail(f"{certs}: no PEM certificates in it (save them from /api/keys)")
    if not certificates:
        fail(f"{certs}: no PEM certificates in it (save them from /api/keys)")
    return CourtSeal(None, certificates)


@click.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--certs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Offline: the court's public certificates (PEM, as served at /api/keys); "
    "without it the server's keys and records in the data directory are used.",
)
def verify(file: Path, certs: Path | None) -> None:
    """Check a Courtlink PDF (the court's seal, and with the records that it is the one
    issued), or a recording directory or exported archive (every file against its sealed
    manifest; every problem one line)."""
    if file.is_dir():
        verify_directory(file, certs)
        return
    from courtlink.papers.seal import CourtSeal
    from courtlink.papers.verify import check_copy

    pdf = file.read_bytes()
    if certs is not None:
        seal: CourtSeal = _offline_seal(certs)

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


def verify_directory(directory: Path, certs: Path | None) -> None:
    """Check a recording directory or an exported archive; print one line per finding and
    exit 1 when there is any, else one line saying what is genuine."""
    # pyHanko logs a certificate it cannot trust as a warning with a traceback; the finding is
    # printed here, in one line, so that noise is turned off for this command.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    from courtlink.court.export import is_export, verify_export
    from courtlink.court.recordings import check_recording
    from courtlink.papers.manifest_seal import CmsSeal

    async def check_with(sealer: Any) -> Any:
        if is_export(directory):
            return await verify_export(directory, sealer, None)
        return await check_recording(directory, sealer)

    if certs is not None:
        sealer = CmsSeal(_offline_seal(certs))
        check = run(check_with(sealer))
    else:

        async def online(services: Any) -> Any:
            return await check_with(services.archive.sealer)

        check = with_services(online, checkpoint=False)()
    for finding in check.findings:
        click.echo(str(finding))
    if is_export(directory):
        index = check.index or {}
        what = f"archive of case {index.get('case_number', '?')}"
        size = (
            f"{len(index.get('files', []))} files, {len(check.recordings)} recordings, "
            f"{check.events} audit events, {check.checkpoints} checkpoints"
        )
    else:
        manifest = check.manifest
        what = f"recording of session {manifest.session_id if manifest else '?'}"
        if manifest is not None:
            what += f" (case {manifest.case_number})"
            state = "complete" if manifest.complete else f"incomplete: {manifest.stopped_because}"
            size = f"{len(manifest.files)} files, {state}"
        else:
            size = "no manifest"
    if check.findings:
        count = len(check.findings)
        click.echo(f"NOT GENUINE: {what}: {count} problem{'s' if count > 1 else ''}")
        sys.exit(1)
    click.echo(f"genuine: {what}, {size}")
