"""``courtlink participant``: one headless participant (courtlink/bench/participant.py) joining a
session from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from courtlink.cli.common import run

__all__ = ["participant"]


@click.command()
@click.option(
    "--invite", "invite_url", required=True, help="The invite link, https://host/i/<token>."
)
@click.option(
    "--video",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A video file (VP8 is sent as is).",
)
@click.option(
    "--audio",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An audio file (Opus is sent as is).",
)
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write what is received here.",
)
@click.option(
    "--seconds", type=float, default=None, help="Stay this long (default: until stopped)."
)
@click.option(
    "--consent",
    is_flag=True,
    help="The party has agreed to online mediation: give consent if asked.",
)
@click.option("--officer", help="At a terminal: the officer who confirms consent for the detainee.")
@click.option("--pin", help="That officer's PIN.")
@click.option(
    "--keyframe-interval",
    type=float,
    default=None,
    help="Seconds between key frames of the test pattern.",
)
@click.option(
    "--insecure", is_flag=True, help="Accept a self-signed server certificate (LAN trials)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines: events, then the report.")
def participant(
    invite_url: str,
    video: Path | None,
    audio: Path | None,
    record: Path | None,
    seconds: float | None,
    consent: bool,
    officer: str | None,
    pin: str | None,
    keyframe_interval: float | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Join a session headless: publish a file or a test pattern and tone, report what arrives."""
    from courtlink.bench.participant import Participant, report_line

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if as_json:
            click.echo(report_line({"event": kind, "data": data}))
        elif kind in ("joined", "replaced", "removed", "session_ended", "peer"):
            click.echo(f"{kind}: {data.get('state', '') or ''}".rstrip(": "))

    async def go() -> dict[str, Any]:
        member = Participant(
            invite_url,
            video=video,
            audio=audio,
            record=record,
            keyframe_interval=keyframe_interval,
            consent=consent,
            officer=officer,
            pin=pin,
            on_event=on_event,
            ssl=not insecure,
        )
        return await member.run(seconds)

    report = run(go())
    click.echo(report_line(report) if as_json else json.dumps(report, ensure_ascii=False, indent=2))
    if report.get("stopped") and str(report["stopped"]).startswith(
        ("join refused", "connection refused", "answer refused")
    ):
        sys.exit(1)
