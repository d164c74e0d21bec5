"""The Gate: who someone is. Accounts log in with a password (officers also hold a PIN),
terminals present a device credential. Creation of accounts and terminals lives here too.

Login tokens and terminal credentials are random; only their hashes are stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from courtlink.clock import Clock, new_id, system_clock
from courtlink.court.accounts import Account, check_password, check_pin, check_username
from courtlink.court.audit import AuditKind
from courtlink.court.auditor import Auditor
from courtlink.court.hashing import SecretHasher
from courtlink.court.policy import AccountPrincipal, Action, Principal, TerminalPrincipal, authorize
from courtlink.court.seats import AccountRole
from courtlink.court.terminals import Terminal
from courtlink.errors import InvalidInput, NotAuthenticated, NotFound, RateLimited
from courtlink.storage import Store

__all__ = ["Gate", "GateRules", "Login"]


@dataclass(frozen=True, slots=True)
class GateRules:
    session_hours: float = 12
    max_failures: int = 5
    window_seconds: int = 300


@dataclass(frozen=True, slots=True)
class Login:
    token: str  # goes into the HttpOnly cookie, never stored
    csrf: str
    account: Account


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Gate:
    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        hasher: SecretHasher,
        rules: GateRules | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.auditor = auditor
        self.hasher = hasher
        self.rules = rules or GateRules()
        self.clock = clock

    # Accounts ---------------------------------------------------------------------------

    async def add_account(
        self,
        by: Principal | None,
        *,
        username: str,
        display_name: str,
        role: AccountRole,
        password: str | None = None,
        pin: str | None = None,
        court: str = "",
        center: str = "",
        is_admin: bool = False,
    ) -> Account:
        """Create an account. ``by`` is None only for the CLI run by the server's operator."""
        if by is not None:
            authorize(by, Action.ACCOUNT_MANAGE)
        if role is AccountRole.OFFICER:
            if pin is None:
                raise InvalidInput("an officer needs a PIN")
            if not center.strip():
                raise InvalidInput("an officer needs a detention center")
        elif password is None:
            raise InvalidInput(f"a {role} needs a password")
        display_name = display_name.strip()
        if not 1 <= len(display_name) <= 100:
            raise InvalidInput("display name must be 1 to 100 characters")
        account = Account(
            id=new_id(),
            username=check_username(username),
            display_name=display_name,
            role=role,
            court=court.strip(),
            center=center.strip(),
            is_admin=is_admin,
            password_hash=None if password is None else self.hasher.hash(check_password(password)),
            pin_hash=None if pin is None else self.hasher.hash(check_pin(pin)),
            created_at=self.clock(),
        )
        async with self.store.write() as tx:
            await tx.add_account(account)
            await self.auditor.record(
                tx,
                AuditKind.ACCOUNT_CREATED,
                by.actor if by else "operator",
                data={"username": account.username, "role": str(role), "admin": is_admin},
            )
        return account

    async def accounts(self, by: Principal) -> list[Account]:
        authorize(by, Action.ACCOUNT_MANAGE)
        async with self.store.read() as tx:
            return await tx.accounts()

    # Logins -----------------------------------------------------------------------------

    async def login(self, username: str, password: str, remote: str) -> Login:
        """Check the password; at most ``max_failures`` failures per name or address per window."""
        name = username.strip().lower()[:40]
        now = self.clock()
        since = now - timedelta(seconds=self.rules.window_seconds)
        async with self.store.write() as tx:
            # Several servers on one PostgreSQL: one login check per name at a time everywhere.
            await tx.lock_name(f"login:{name}")
            by_name = await tx.login_failures_since(name, since)
            by_remote = await tx.login_failures_from(remote, since)
            if by_name >= self.rules.max_failures or by_remote >= self.rules.max_failures * 4:
                raise RateLimited("too many failed logins; wait a few minutes and try again")
            account = await tx.account_by_username(name)
            # Counted as a failure until the password proves right (a success clears it), in
            # the same write as the check: guesses sent in parallel each see those before them.
            await tx.add_login_failure(name, remote, now)
        stored = account.password_hash if account is not None and not account.disabled else None
        if not self.hasher.verify(stored, password) or account is None:
            async with self.store.write() as tx:
                await self.auditor.record(
                    tx, AuditKind.LOGIN_FAILED, f"remote:{remote[:64]}", data={"username": name}
                )
            raise NotAuthenticated("wrong username or password")
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        async with self.store.write() as tx:
            await tx.add_login(
                _digest(token),
                account.id,
                csrf,
                now,
                now + timedelta(hours=self.rules.session_hours),
            )
            await tx.clear_login_failures(name)
            await self.auditor.record(
                tx, AuditKind.LOGIN, account.actor, data={"remote": remote[:64]}
            )
        return Login(token, csrf, account)

    async def account_for(self, token: str) -> tuple[AccountPrincipal, str] | None:
        """(principal, csrf) for a login cookie, or None when it is unknown or expired."""
        if not token or len(token) > 200:
            return None
        async with self.store.read() as tx:
            found = await tx.login(_digest(token), self.clock())
        if found is None or found[0].disabled:
            return None
        return AccountPrincipal(found[0]), found[1]

    async def logout(self, token: str, principal: AccountPrincipal) -> None:
        async with self.store.write() as tx:
            await tx.end_login(_digest(token), self.clock())
            await self.auditor.record(tx, AuditKind.LOGOUT, principal.actor)

    # Terminals --------------------------------------------------------------------------

    async def add_terminal(
        self, by: Principal | None, *, name: str, center: str
    ) -> tuple[Terminal, str]:
        """Register a terminal. Returns it and its credential, which is shown only this once."""
        if by is not None:
            authorize(by, Action.TERMINAL_MANAGE)
        name, center = name.strip(), center.strip()
        if not name or not center or len(name) > 100 or len(center) > 100:
            raise InvalidInput(
                "a terminal needs a name and a detention center (1 to 100 characters)"
            )
        terminal_id = new_id()
        secret = secrets.token_urlsafe(32)
        terminal = Terminal(
            id=terminal_id,
            name=name,
            center=center,
            credential_hash=self.hasher.hash(secret),
            created_at=self.clock(),
        )
        async with self.store.write() as tx:
            await tx.add_terminal(terminal)
            await self.auditor.record(
                tx,
                AuditKind.TERMINAL_CREATED,
                by.actor if by else "operator",
                data={"terminal": terminal.id, "name": name, "center": center},
            )
        return terminal, f"{terminal_id}.{secret}"

    async def terminals(self, by: Principal) -> list[Terminal]:
        authorize(by, Action.TERMINAL_MANAGE)
        async with self.store.read() as tx:
            return await tx.terminals()

    async def terminal_for(self, credential: str) -> TerminalPrincipal:
        """The terminal whose credential this is (``<terminal id>.<secret>``)."""
        terminal_id, _, secret = credential.partition(".")
        if not terminal_id or not secret or len(credential) > 200:
            raise NotAuthenticated("terminal credential is malformed")
        async with self.store.read() as tx:
            try:
                terminal = await tx.terminal(terminal_id)
            except NotFound:  # answer exactly as for a wrong secret
                terminal = None
        if (
            terminal is None
            or terminal.disabled
            or not self.hasher.verify(terminal.credential_hash, secret)
        ):
            raise NotAuthenticated("terminal credential is not valid")
        return TerminalPrincipal(terminal)
