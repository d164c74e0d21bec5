"""The Gate: logins with a rate limit, logouts, terminal credentials, and account creation.

The services fixture (tests/rooms/conftest.py) allows 3 failed logins per 300 seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import update

from courtlink.court.accounts import Account
from courtlink.court.audit import AuditEvent, AuditKind
from courtlink.court.policy import AccountPrincipal, TerminalPrincipal
from courtlink.court.seats import AccountRole
from courtlink.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, RateLimited
from courtlink.storage import tables as t
from courtlink.web.services import Services
from tests.court.conftest import MovableClock

PASSWORD = "correct horse battery"
REMOTE = "203.0.113.9"


async def events(services: Services, kind: str) -> list[AuditEvent]:
    async with services.store.read() as tx:
        return [e for e in await tx.audit_events() if e.kind == kind]


async def add(
    services: Services,
    username: str = "judge",
    role: AccountRole = AccountRole.JUDGE,
    *,
    by: AccountPrincipal | None = None,
    **kw: object,
) -> Account:
    defaults: dict[str, object] = {"display_name": "张法官", "password": PASSWORD}
    if role is AccountRole.OFFICER:
        defaults = {"display_name": "陈警官", "pin": "246810", "center": "盐城市拘留所"}
    return await services.gate.add_account(
        by,
        username=username,
        role=role,
        **{**defaults, **kw},  # type: ignore[arg-type]
    )


# Logins -------------------------------------------------------------------------------------


async def test_login_with_the_right_password(services: Services) -> None:
    account = await add(services)
    login = await services.gate.login(" Judge ", PASSWORD, REMOTE)
    assert login.account == account
    assert login.token != login.csrf
    found = await services.gate.account_for(login.token)
    assert found == (AccountPrincipal(account), login.csrf)
    recorded = (await events(services, AuditKind.LOGIN))[-1]
    assert recorded.actor == "account:judge"
    assert recorded.data == {"remote": REMOTE}
    # Only a hash of the token is stored.
    async with services.store.read() as tx:
        rows = list(await tx.conn.execute(t.logins.select()))
    assert login.token not in {r.token_hash for r in rows}


async def test_a_wrong_password_or_unknown_name_is_refused_the_same_way(
    services: Services,
) -> None:
    await add(services)
    messages = []
    for username, password in (("judge", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(NotAuthenticated) as caught:
            await services.gate.login(username, password, REMOTE)
        messages.append(caught.value.message)
    assert messages[0] == messages[1]
    failed = await events(services, AuditKind.LOGIN_FAILED)
    assert [e.data["username"] for e in failed] == ["judge", "nobody"]
    assert all(PASSWORD not in str(e.data) for e in failed)


async def test_disabled_accounts_and_officers_without_password_cannot_log_in(
    services: Services,
) -> None:
    judge = await add(services)
    await add(services, "officer", AccountRole.OFFICER)
    async with services.store.write() as tx:
        await tx.conn.execute(
            update(t.accounts).where(t.accounts.c.id == judge.id).values(disabled=True)
        )
    with pytest.raises(NotAuthenticated):
        await services.gate.login("judge", PASSWORD, REMOTE)
    with pytest.raises(NotAuthenticated):
        await services.gate.login("officer", "246810", REMOTE)


async def test_the_rate_limit_stops_guessing_even_the_right_password(
    services: Services, clock: MovableClock
) -> None:
    await add(services)
    limit = services.gate.rules.max_failures
    for _ in range(limit):
        with pytest.raises(NotAuthenticated):
            await services.gate.login("judge", "guess", REMOTE)
    with pytest.raises(RateLimited):
        await services.gate.login("judge", "guess", REMOTE)
    # While limited, the right password does not get in either.
    with pytest.raises(RateLimited):
        await services.gate.login("judge", PASSWORD, "198.51.100.1")
    # The limit is per name: someone else logs in meanwhile.
    await add(services, "judge2")
    assert (await services.gate.login("judge2", PASSWORD, REMOTE)).account.username == "judge2"
    # After the window, the right password works and clears the count.
    clock.advance(seconds=services.gate.rules.window_seconds + 1)
    await services.gate.login("judge", PASSWORD, REMOTE)
    for _ in range(limit):
        with pytest.raises(NotAuthenticated):
            await services.gate.login("judge", "guess", REMOTE)


async def test_a_success_clears_earlier_failures(services: Services) -> None:
    await add(services)
    limit = services.gate.rules.max_failures
    for _ in range(limit - 1):
        with pytest.raises(NotAuthenticated):
            await services.gate.login("judge", "guess", REMOTE)
    await services.gate.login("judge", PASSWORD, REMOTE)
    for _ in range(limit - 1):
        with pytest.raises(NotAuthenticated):
            await services.gate.login("judge", "guess", REMOTE)
    await services.gate.login("judge", PASSWORD, REMOTE)


async def test_parallel_guesses_do_not_get_past_the_limit(services: Services) -> None:
    """Guesses sent all at once must not each see the count before any of them is recorded."""
    await add(services)
    limit = services.gate.rules.max_failures
    outcomes = await asyncio.gather(
        *(services.gate.login("judge", f"guess {i}", REMOTE) for i in range(limit * 4)),
        return_exceptions=True,
    )
    wrong = [o for o in outcomes if type(o) is NotAuthenticated]
    limited = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(wrong) == limit
    assert len(limited) == limit * 3
    assert len(await events(services, AuditKind.LOGIN_FAILED)) == limit


async def test_many_names_from_one_address_are_limited_too(services: Services) -> None:
    limit = services.gate.rules.max_failures * 4
    for i in range(limit):
        with pytest.raises(NotAuthenticated):
            await services.gate.login(f"user{i}", "guess", REMOTE)
    with pytest.raises(RateLimited):
        await services.gate.login("someone", "guess", REMOTE)
    with pytest.raises(NotAuthenticated):  # another address is not limited
        await services.gate.login("someone", "guess", "198.51.100.1")


async def test_logout_ends_the_login(services: Services) -> None:
    await add(services)
    login = await services.gate.login("judge", PASSWORD, REMOTE)
    principal, _ = await services.gate.account_for(login.token) or (None, None)
    assert principal is not None
    await services.gate.logout(login.token, principal)
    assert await services.gate.account_for(login.token) is None
    assert (await events(services, AuditKind.LOGOUT))[-1].actor == "account:judge"


async def test_a_login_expires_and_unknown_tokens_are_nobody(
    services: Services, clock: MovableClock
) -> None:
    await add(services)
    login = await services.gate.login("judge", PASSWORD, REMOTE)
    clock.advance(hours=services.gate.rules.session_hours - 0.01)
    assert await services.gate.account_for(login.token) is not None
    clock.advance(hours=0.02)
    assert await services.gate.account_for(login.token) is None
    for token in ("", "x" * 201, "unknown-token"):
        assert await services.gate.account_for(token) is None


async def test_a_login_of_a_disabled_account_no_longer_counts(services: Services) -> None:
    judge = await add(services)
    login = await services.gate.login("judge", PASSWORD, REMOTE)
    async with services.store.write() as tx:
        await tx.conn.execute(
            update(t.accounts).where(t.accounts.c.id == judge.id).values(disabled=True)
        )
    assert await services.gate.account_for(login.token) is None


# Terminals ----------------------------------------------------------------------------------


async def test_a_terminal_credential_identifies_the_terminal(services: Services) -> None:
    terminal, credential = await services.gate.add_terminal(
        None, name=" 会见室一号终端 ", center="盐城市拘留所"
    )
    assert terminal.name == "会见室一号终端"
    assert credential.startswith(terminal.id + ".")
    assert credential.split(".", 1)[1] not in terminal.credential_hash
    found = await services.gate.terminal_for(credential)
    assert found == TerminalPrincipal(terminal)
    assert (await events(services, AuditKind.TERMINAL_CREATED))[-1].data["terminal"] == terminal.id


async def test_wrong_or_unknown_terminal_credentials_are_refused_alike(
    services: Services,
) -> None:
    terminal, credential = await services.gate.add_terminal(None, name="终端", center="拘留所")
    secret = credential.split(".", 1)[1]
    other, _ = await services.gate.add_terminal(None, name="终端二", center="拘留所")
    messages = set()
    for wrong in (
        f"{terminal.id}.{secret[:-1]}x",  # wrong secret
        f"{other.id}.{secret}",  # another terminal's id
        f"{'0' * 16}.{secret}",  # unknown id
    ):
        with pytest.raises(NotAuthenticated) as caught:
            await services.gate.terminal_for(wrong)
        messages.add(caught.value.message)
    assert len(messages) == 1


@pytest.mark.parametrize(
    "credential", ["", "no-dot", ".secret", "id.", ".", "a." + "x" * 200, "a" * 201]
)
async def test_malformed_terminal_credentials_are_refused(
    services: Services, credential: str
) -> None:
    with pytest.raises(NotAuthenticated):
        await services.gate.terminal_for(credential)


async def test_a_disabled_terminal_is_refused(services: Services) -> None:
    terminal, credential = await services.gate.add_terminal(None, name="终端", center="拘留所")
    async with services.store.write() as tx:
        await tx.conn.execute(
            update(t.terminals).where(t.terminals.c.id == terminal.id).values(disabled=True)
        )
    with pytest.raises(NotAuthenticated):
        await services.gate.terminal_for(credential)


@pytest.mark.parametrize(("name", "center"), [("", "拘留所"), ("终端", " "), ("x" * 101, "拘留所")])
async def test_terminal_fields_are_validated(services: Services, name: str, center: str) -> None:
    with pytest.raises(InvalidInput):
        await services.gate.add_terminal(None, name=name, center=center)


async def test_only_administrators_manage_terminals(services: Services) -> None:
    judge = AccountPrincipal(await add(services))
    admin = AccountPrincipal(await add(services, "admin", is_admin=True))
    with pytest.raises(Forbidden):
        await services.gate.add_terminal(judge, name="终端", center="拘留所")
    made, _ = await services.gate.add_terminal(admin, name="终端", center="拘留所")
    assert await services.gate.terminals(admin) == [made]
    with pytest.raises(Forbidden):
        await services.gate.terminals(judge)


# Accounts -----------------------------------------------------------------------------------


async def test_accounts_are_created_with_hashed_secrets(services: Services) -> None:
    officer = await add(services, "Officer.Chen", AccountRole.OFFICER, center=" 盐城市拘留所 ")
    assert officer.username == "officer.chen"
    assert officer.center == "盐城市拘留所"
    assert officer.pin_hash is not None
    assert "246810" not in officer.pin_hash
    assert services.gate.hasher.verify(officer.pin_hash, "246810")
    assert officer.password_hash is None
    created = (await events(services, AuditKind.ACCOUNT_CREATED))[-1]
    assert created.actor == "operator"
    assert created.data == {"username": "officer.chen", "role": "officer", "admin": False}


@pytest.mark.parametrize(
    ("username", "role", "changes"),
    [
        ("officer", AccountRole.OFFICER, {"pin": None}),
        ("officer", AccountRole.OFFICER, {"center": "  "}),
        ("officer", AccountRole.OFFICER, {"pin": "12"}),
        ("officer", AccountRole.OFFICER, {"pin": "12ab"}),
        ("officer", AccountRole.OFFICER, {"pin": "123456789"}),
        ("judge", AccountRole.JUDGE, {"password": None}),
        ("approver", AccountRole.APPROVER, {"password": None}),
        ("judge", AccountRole.JUDGE, {"password": "short"}),
        ("judge", AccountRole.JUDGE, {"password": "x" * 257}),
        ("judge", AccountRole.JUDGE, {"display_name": "  "}),
        ("judge", AccountRole.JUDGE, {"display_name": "张" * 101}),
        ("j", AccountRole.JUDGE, {}),
        ("-judge", AccountRole.JUDGE, {}),
        ("judge zhang", AccountRole.JUDGE, {}),
        ("张法官", AccountRole.JUDGE, {}),
        ("j" * 41, AccountRole.JUDGE, {}),
    ],
)
async def test_account_fields_are_validated(
    services: Services, username: str, role: AccountRole, changes: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput):
        await add(services, username, role, **changes)
    async with services.store.read() as tx:
        assert await tx.accounts() == []
    assert await events(services, AuditKind.ACCOUNT_CREATED) == []


async def test_a_username_is_taken_once(services: Services) -> None:
    await add(services, "judge")
    with pytest.raises(Conflict):
        await add(services, "JUDGE")


async def test_only_administrators_create_accounts(services: Services) -> None:
    judge = AccountPrincipal(await add(services))
    admin = AccountPrincipal(await add(services, "admin", is_admin=True))
    disabled_admin = AccountPrincipal(replace(admin.account, disabled=True))
    for by in (judge, disabled_admin):
        with pytest.raises(Forbidden):
            await add(services, "new", by=by)
        with pytest.raises(Forbidden):
            await services.gate.accounts(by)
    made = await add(services, "new", by=admin)
    assert (await events(services, AuditKind.ACCOUNT_CREATED))[-1].actor == "account:admin"
    assert made in await services.gate.accounts(admin)
