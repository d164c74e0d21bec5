"""Accounts, their logins, failed logins, and name locks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select, text, update

from courtlink.court.accounts import Account
from courtlink.court.seats import AccountRole
from courtlink.storage import tables as t
from courtlink.storage.queries import Queries
from courtlink.storage.rows import BOOL, RowMapper, enum

__all__ = ["ACCOUNTS", "AccountRecords"]

ACCOUNTS = RowMapper(Account, t.accounts, role=enum(AccountRole), is_admin=BOOL, disabled=BOOL)

# Remote addresses are cut to the width of the login_failures.remote column.
_REMOTE = 64


class AccountRecords(Queries):
    """Queries about accounts and logins; part of ``Records``."""

    async def add_account(self, account: Account) -> None:
        """Store a new account; ``Conflict`` when the id or the username is taken."""
        await self._insert(t.accounts, ACCOUNTS.dump(account), f"account {account.username}")

    async def account(self, account_id: str) -> Account:
        """The account; ``NotFound`` when there is none."""
        return ACCOUNTS.load(
            await self._one(select(t.accounts).where(t.accounts.c.id == account_id), "account")
        )

    async def account_by_username(self, username: str) -> Account | None:
        """The account of this username, or None."""
        row = (
            await self.conn.execute(select(t.accounts).where(t.accounts.c.username == username))
        ).first()
        return None if row is None else ACCOUNTS.load(row)

    async def accounts(self, role: AccountRole | None = None) -> list[Account]:
        """Every account (of this role), by username."""
        stmt = select(t.accounts).order_by(t.accounts.c.username)
        if role is not None:
            stmt = stmt.where(t.accounts.c.role == str(role))
        return [ACCOUNTS.load(r) for r in await self.conn.execute(stmt)]

    async def add_login(
        self, token_hash: str, account_id: str, csrf: str, now: datetime, expires: datetime
    ) -> None:
        """Store a new login (the hash of its token, never the token)."""
        await self._insert(
            t.logins,
            {
                "token_hash": token_hash,
                "account_id": account_id,
                "csrf": csrf,
                "created_at": now,
                "expires_at": expires,
            },
            "login",
        )

    async def login(self, token_hash: str, now: datetime) -> tuple[Account, str] | None:
        """(account, csrf token) of a live login, or None."""
        row = (
            await self.conn.execute(
                select(t.logins).where(
                    t.logins.c.token_hash == token_hash,
                    t.logins.c.revoked_at.is_(None),
                    t.logins.c.expires_at > now,
                )
            )
        ).first()
        if row is None:
            return None
        return await self.account(row.account_id), row.csrf

    async def end_login(self, token_hash: str, now: datetime) -> None:
        """Revoke a login (logging out)."""
        await self.conn.execute(
            update(t.logins).where(t.logins.c.token_hash == token_hash).values(revoked_at=now)
        )

    async def lock_name(self, name: str) -> None:
        """Serialize transactions about ``name`` until this one ends. PostgreSQL: an advisory
        transaction lock; SQLite needs none (write transactions already run one at a time)."""
        if self.on_postgresql:
            await self.conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name}
            )

    async def add_login_failure(self, username: str, remote: str, now: datetime) -> None:
        """Count one failed login of ``username`` from ``remote``."""
        await self.conn.execute(
            insert(t.login_failures).values(username=username, remote=remote[:_REMOTE], at=now)
        )

    async def login_failures_since(self, username: str, since: datetime) -> int:
        """Failed logins of ``username`` strictly after ``since``."""
        stmt = select(func.count()).where(
            t.login_failures.c.username == username, t.login_failures.c.at > since
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def login_failures_from(self, remote: str, since: datetime) -> int:
        """Failed logins from ``remote`` strictly after ``since``."""
        stmt = select(func.count()).where(
            t.login_failures.c.remote == remote[:_REMOTE], t.login_failures.c.at > since
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def clear_login_failures(self, username: str) -> None:
        """Forget the failed logins of ``username`` (after a successful one)."""
        await self.conn.execute(
            delete(t.login_failures).where(t.login_failures.c.username == username)
        )
