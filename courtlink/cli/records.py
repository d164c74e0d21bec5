"""The commands that write the records: ``db upgrade``, ``account add``, ``terminal add`` and
``demo``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from courtlink.cli.common import run, settings_of, with_services
from courtlink.court.seats import AccountRole

__all__ = ["account", "db", "demo", "terminal"]


@click.group()
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


@click.group()
def account() -> None:
    """Accounts of judges, approvers and officers."""


@account.command("add")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True, help="Name shown to others, e.g. 张法官.")
@click.option("--role", type=click.Choice([r.value for r in AccountRole]), required=True)
@click.option("--court", default="", help="Court of a judge, approver or clerk.")
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


@click.group()
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


@click.command()
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
