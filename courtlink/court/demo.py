"""The demo: one judge, approver and officer, a case, a detention and a session with an invite
for every seat. Creating it twice changes nothing; ended sessions or dead invites are replaced.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from courtlink.court.accounts import Account
from courtlink.court.clerk import Clerk
from courtlink.court.gate import Gate
from courtlink.court.invites import Invite
from courtlink.court.policy import AccountPrincipal
from courtlink.court.seats import SEATS, AccountRole, Seat
from courtlink.court.sessions import SessionState
from courtlink.errors import NotFound

__all__ = ["DEMO_CASE_NUMBER", "Demo", "ensure_demo"]

DEMO_CASE_NUMBER = "(2021)苏0903执1234号"
DEMO_COURT = "盐城市盐都区人民法院"
DEMO_CENTER = "盐城市拘留所"
_META = "demo"
_INVITE_HOURS = 24 * 30


@dataclass
class Demo:
    session_id: str
    invites: dict[Seat, str]  # seat -> token
    new_credentials: dict[str, str] = field(default_factory=dict)  # shown once, on creation

    def links(self, public_url: str) -> dict[str, str]:
        return {str(seat): f"{public_url}/i/{token}" for seat, token in self.invites.items()}


async def _account(
    gate: Gate, username: str, role: AccountRole, name: str, created: dict[str, str]
) -> Account:
    async with gate.store.read() as tx:
        found = await tx.account_by_username(username)
    if found is not None:
        return found
    password = secrets.token_urlsafe(9)
    pin = f"{secrets.randbelow(10**6):06d}" if role is AccountRole.OFFICER else None
    account = await gate.add_account(
        None,
        username=username,
        display_name=name,
        role=role,
        password=password,
        pin=pin,
        court=DEMO_COURT if role is not AccountRole.OFFICER else "",
        center=DEMO_CENTER if role is AccountRole.OFFICER else "",
        is_admin=role is AccountRole.JUDGE,
    )
    created[username] = password if pin is None else f"{password} (PIN {pin})"
    return account


async def ensure_demo(clerk: Clerk, gate: Gate) -> Demo:
    created: dict[str, str] = {}
    judge = await _account(gate, "demo-judge", AccountRole.JUDGE, "张法官", created)
    await _account(gate, "demo-approver", AccountRole.APPROVER, "朱院长", created)
    await _account(gate, "demo-officer", AccountRole.OFFICER, "陈警官", created)
    me = AccountPrincipal(judge)

    async with clerk.store.read() as tx:
        case = await tx.case_by_number(DEMO_CASE_NUMBER)
        stored = json.loads(await tx.meta(_META) or "{}")
    if case is None:
        case = await clerk.create_case(
            me,
            number=DEMO_CASE_NUMBER,
            court=DEMO_COURT,
            creditor_name="王建国",
            debtor_name="李某",
            amount_owed_fen=35_600_000,
        )
        await clerk.create_detention(
            me,
            case_id=case.id,
            center=DEMO_CENTER,
            start=clerk.clock() - timedelta(days=3),
            days=15,
        )

    session_id = stored.get("session")
    live = False
    if session_id:
        try:
            async with clerk.store.read() as tx:
                live = (await tx.session(session_id)).state is not SessionState.ENDED
        except NotFound:
            live = False
    if not live:
        session_id = (await clerk.create_session(me, case_id=case.id)).id
        stored = {"session": session_id, "invites": {}}

    tokens: dict[Seat, str] = {}
    now = clerk.clock()
    async with clerk.store.read() as tx:
        existing = {i.id: i for i in await tx.invites(session_id)}
    for seat in SEATS:
        invite: Invite | None = existing.get(stored["invites"].get(str(seat), ""))
        if invite is None or invite.revoked() or invite.expires_at - now < timedelta(days=1):
            issued = await clerk.issue_invite(
                me, session_id=session_id, seats=[seat], ttl_hours=_INVITE_HOURS, label="demo"
            )
            invite = issued.invite
            stored["invites"][str(seat)] = invite.id
        tokens[seat] = clerk.signer.sign(invite)
    async with clerk.store.write() as tx:
        await tx.set_meta(_META, json.dumps(stored))
    return Demo(session_id=session_id, invites=tokens, new_credentials=created)
