"""The ``courtlink`` command.

Errors print one line, ``courtlink: error: <cause>``, and exit with status 1 (2 for bad usage or
configuration); never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from courtlink.config import Settings, load_settings
from courtlink.court.seats import AccountRole
from courtlink.errors import ConfigError, CourtlinkError

__all__ = ["main"]

T = TypeVar("T")


def fail(message: str, status: int = 1) -> None:
    click.echo(f"courtlink: error: {message}", err=True)
    sys.exit(status)


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        fail(exc.message, 2)
    except CourtlinkError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # a bug or a broken database: still one line, never a traceback
        detail = str(exc).splitlines()[0] if str(exc) else ""
        fail(f"unexpected {type(exc).__name__}: {detail[:300]}")
    raise AssertionError("unreachable")  # pragma: no cover


def settings_of(ctx: click.Context) -> Settings:
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings(obj.get("config"))
        except ConfigError as exc:
            fail(exc.message, 2)
    settings: Settings = obj["settings"]
    return settings


def with_services(fn: Callable[..., Awaitable[T]], *, checkpoint: bool = True) -> Callable[..., T]:
    """Run ``fn(services, ...)`` with the records side opened from the settings."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from courtlink.web.services import open_services

        settings = settings_of(click.get_current_context())

        async def go() -> T:
            async with open_services(settings, checkpoint_on_close=checkpoint) as services:
                return await fn(services, *args, **kwargs)

        return run(go())

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="COURTLINK_CONFIG",
    help="A TOML file with the keys to change from config/default.toml.",
)
@click.version_option(package_name="courtlink")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """Courtlink: court and detention-center coordination by video and by document."""
    ctx.ensure_object(dict)["config"] = config_file


@main.command()
@click.option("--host", help="Address to bind (default from config: 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default from config: 8080).")
@click.option(
    "--demo/--no-demo", default=None, help="Create the demo on first start (default from config)."
)
@click.option(
    "--tls-self-signed",
    is_flag=True,
    help="Serve HTTPS with a self-signed certificate made in the data directory (LAN trials).",
)
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, demo: bool | None, tls_self_signed: bool
) -> None:
    """Run the server."""
    from courtlink.cli.serve import serve as run_server
    from courtlink.cli.serve import use_uvloop

    settings = settings_of(ctx)
    updates: dict[str, Any] = {}
    if host is not None:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    if tls_self_signed:
        from courtlink.web.tls import self_signed

        cert, key = self_signed(
            settings.data_dir / "tls", updates.get("host", settings.server.host)
        )
        updates.update({"tls_cert": str(cert), "tls_key": str(key)})
    if updates:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update=updates)}
        )
    use_uvloop()
    run(run_server(settings, demo=settings.demo.enabled if demo is None else demo))


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration."""
    from courtlink.storage import Store

    settings = settings_of(ctx)
    if not settings.database.url:  # the default SQLite file lives in the data directory
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def go() -> str:
        store = Store(settings.database_url)
        await store.open(migrate=False)
        try:
            return await store.upgrade()
        finally:
            await store.close()

    click.echo(f"database at revision {run(go())}")


@main.group()
def account() -> None:
    """Accounts of judges, approvers and officers."""


@account.command("add")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True, help="Name shown to others, e.g. 张法官.")
@click.option("--role", type=click.Choice([r.value for r in AccountRole]), required=True)
@click.option("--court", default="", help="Court of a judge or approver.")
@click.option("--center", default="", help="Detention center of an officer.")
@click.option("--admin", is_flag=True, help="May manage accounts and terminals.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password (and PIN, next line) from stdin."
)
def account_add(
    username: str,
    display_name: str,
    role: str,
    court: str,
    center: str,
    admin: bool,
    password_stdin: bool,
) -> None:
    """Create an account. Asks for the password (officers: the PIN)."""
    kind = AccountRole(role)
    password: str | None = None
    pin: str | None = None
    if password_stdin:
        lines = sys.stdin.read().splitlines()
        if kind is AccountRole.OFFICER:
            pin = lines[0] if lines else ""
            password = lines[1] if len(lines) > 1 and lines[1] else None
        else:
            password = lines[0] if lines else ""
    elif kind is AccountRole.OFFICER:
        pin = click.prompt("PIN (4-8 digits)", hide_input=True, confirmation_prompt=True)
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    @with_services
    async def go(services: Any) -> None:
        created = await services.gate.add_account(
            None,
            username=username,
            display_name=display_name,
            role=kind,
            password=password,
            pin=pin,
            court=court,
            center=center,
            is_admin=admin,
        )
        click.echo(f"account {created.username} ({created.role}) created")

    go()


@main.group()
def terminal() -> None:
    """Detention-center terminals."""


@terminal.command("add")
@click.option("--name", required=True, help="e.g. 会见室一号终端")
@click.option("--center", required=True, help="e.g. 盐城市拘留所")
@click.option("--json", "as_json", is_flag=True)
def terminal_add(name: str, center: str, as_json: bool) -> None:
    """Register a terminal and print its credential (shown only once)."""

    @with_services
    async def go(services: Any) -> None:
        made, credential = await services.gate.add_terminal(None, name=name, center=center)
        url = f"{services.settings.public_url}/t/{credential}"
        if as_json:
            click.echo(json.dumps({"terminal": made.id, "credential": credential, "url": url}))
        else:
            click.echo(f"terminal {made.id} ({made.name}, {made.center}) created")
            click.echo(f"open this link once on the terminal (keep it secret): {url}")

    go()


@main.group()
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def demo(as_json: bool) -> None:
    """Create the demo case, detention and session (idempotent) and print the invite links."""

    @with_services
    async def go(services: Any) -> None:
        from courtlink.court.demo import ensure_demo

        made = await ensure_demo(services.clerk, services.gate)
        links = made.links(services.settings.public_url)
        if as_json:
            click.echo(
                json.dumps({"session": made.session_id, "invites": links}, ensure_ascii=False)
            )
            return
        click.echo(f"demo session {made.session_id}")
        for seat, url in links.items():
            click.echo(f"  {seat:9} {url}")
        for username, secret in made.new_credentials.items():
            click.echo(f"  login {username}: {secret}")

    go()


@main.command()
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


@main.command()
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


@main.group()
def bench() -> None:
    """Benchmarks that print numbers (docs/benchmarks.md)."""


def _echo_result(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        for key, value in data.items():
            click.echo(f"  {key:24} {value}")


SFU_KEYS = (
    "rooms",
    "consumers",
    "server_cpu_cores",
    "consumers_per_core",
    "forwarded_pps",
    "added_latency_ms_p50",
    "added_latency_ms_p95",
    "frame_loss_ratio",
    "rss_mb_per_room",
)


@bench.command("sfu")
@click.option("--rooms", type=click.IntRange(1, 500), default=10, show_default=True)
@click.option("--seconds", type=click.FloatRange(2, 600), default=15, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
@click.option(
    "--curve", is_flag=True, help="Four or more load levels; consumers per core from the slope."
)
@click.option(
    "--baseline", type=click.Choice(["transcode"]), help="aiortc's decode, relay, re-encode path."
)
@click.option("--peer", type=click.Choice(["janus"]), help="The Janus gateway's VideoRoom instead.")
@click.option(
    "--compare", is_flag=True, help="Courtlink, the transcoding baseline and Janus, one table."
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --compare: a PNG of CPU over consumers.",
)
def bench_sfu(
    rooms: int,
    seconds: float,
    as_json: bool,
    curve: bool,
    baseline: str | None,
    peer: str | None,
    compare: bool,
    plot: Path | None,
) -> None:
    """The media path under load: the server pinned to core 0, the load generator on core 1."""
    from courtlink.bench.report import compare_paths, measure_path

    if baseline and peer:
        raise click.UsageError("choose one of --baseline and --peer")
    if compare and (baseline or peer or curve):
        raise click.UsageError(
            "--compare runs every path as a curve: drop --baseline, --peer, --curve"
        )
    if plot is not None and not compare:
        raise click.UsageError("--plot needs --compare")

    def log(line: str) -> None:
        if not as_json:
            click.echo(line, err=True)

    async def go() -> dict[str, Any]:
        if compare:
            return await compare_paths(rooms, seconds, plot=plot, log=log)
        path = "janus" if peer == "janus" else (baseline or "sfu")
        return await measure_path(path, rooms, seconds, curve=curve, log=log)

    outcome = run(go())
    if compare:
        if as_json:
            paths = {
                name: {key: data.get(key) for key in SFU_KEYS} | {"levels": data.get("levels")}
                for name, data in outcome["paths"].items()
            }
            click.echo(json.dumps({"paths": paths}, ensure_ascii=False))
        else:
            click.echo(outcome["table"])
        return
    summary = {key: outcome.get(key) for key in SFU_KEYS}
    summary["path"] = outcome.get("path")
    if curve:
        summary["levels"] = outcome.get("levels")
    _echo_result(summary if as_json else outcome, as_json)


@bench.command("join")
@click.option("--groups", type=click.IntRange(1, 100), default=4, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_join(groups: int, as_json: bool) -> None:
    """N groups of four join at once: connect to first remote frame decoded, p50 and p95."""
    from courtlink.bench.flows import run_join

    _echo_result(run(run_join(groups)), as_json)


@bench.command("documents")
@click.option("--rounds", type=click.IntRange(1, 200), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_documents(rounds: int, as_json: bool) -> None:
    """An order to verified on the terminal; acknowledgment to the judge's dashboard."""
    from courtlink.bench.flows import run_documents

    _echo_result(run(run_documents(rounds)), as_json)
