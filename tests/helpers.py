"""Builders for tests: a small world of accounts, a case, a detention, a session, invites."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from courtlink.court.accounts import Account
from courtlink.court.cases import Case
from courtlink.court.detentions import Detention
from courtlink.court.invites import Invite
from courtlink.court.policy import AccountPrincipal
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.sessions import Session
from courtlink.web.services import Services

PASSWORD = "correct horse battery"
PIN = "246810"


@dataclass
class World:
    judge: Account
    other_judge: Account
    approver: Account
    officer: Account
    admin: Account
    case: Case
    detention: Detention
    session: Session
    tokens: dict[str, str]  # "judge", "officer", "debtor", "creditor", "terminal" -> token
    invites: dict[str, Invite]

    @property
    def me(self) -> AccountPrincipal:
        return AccountPrincipal(self.judge)


async def build_world(services: Services) -> World:
    gate, clerk = services.gate, services.clerk

    async def account(username: str, role: AccountRole, name: str, **kw: object) -> Account:
        return await gate.add_account(
            None,
            username=username,
            display_name=name,
            role=role,
            password=None if role is AccountRole.OFFICER else PASSWORD,
            pin=PIN if role is AccountRole.OFFICER else None,
            court="盐城市盐都区人民法院" if role is not AccountRole.OFFICER else "",
            center="盐城市拘留所" if role is AccountRole.OFFICER else "",
            **kw,  # type: ignore[arg-type]
        )

    judge = await account("judge", AccountRole.JUDGE, "张法官")
    other = await account("judge2", AccountRole.JUDGE, "刘法官")
    approver = await account("approver", AccountRole.APPROVER, "朱院长")
    officer = await account("officer", AccountRole.OFFICER, "陈警官")
    admin = await account("admin", AccountRole.JUDGE, "管理员", is_admin=True)
    me = AccountPrincipal(judge)
    case = await clerk.create_case(
        me,
        number="(2021)苏0903执1234号",
        creditor_name="王建国",
        debtor_name="李某",
        amount_owed_fen=35_600_000,
    )
    detention = await clerk.create_detention(
        me,
        case_id=case.id,
        center="盐城市拘留所",
        start=datetime.now(UTC) - timedelta(days=3),
        days=15,
    )
    session = await clerk.create_session(me, case_id=case.id)
    tokens: dict[str, str] = {}
    invites: dict[str, Invite] = {}
    for name, seats in (
        ("judge", [Seat.JUDGE]),
        ("officer", [Seat.OFFICER]),
        ("debtor", [Seat.DEBTOR]),
        ("creditor", [Seat.CREDITOR]),
        ("terminal", [Seat.OFFICER, Seat.DEBTOR]),
    ):
        issued = await clerk.issue_invite(me, session_id=session.id, seats=seats)
        tokens[name] = issued.token
        invites[name] = issued.invite
    return World(judge, other, approver, officer, admin, case, detention, session, tokens, invites)
