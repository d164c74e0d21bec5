"""Reads and writes of Courtlink's records on one open connection (one transaction).

Rows are turned into the domain's frozen dataclasses here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from courtlink.court.accounts import Account
from courtlink.court.audit import AuditEvent, Checkpoint, canonical, event_hash
from courtlink.court.cases import Case
from courtlink.court.consent import Consent
from courtlink.court.detentions import Detention, Period
from courtlink.court.documents.lifecycle import DocKind, DocState, Document, InboxItem
from courtlink.court.invites import Invite
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.sessions import Session, SessionState
from courtlink.court.terminals import Terminal
from courtlink.errors import Conflict, NotFound
from courtlink.live.routing import Caucus
from courtlink.storage import tables as t

__all__ = ["Records"]


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=AccountRole(row.role),
        court=row.court,
        center=row.center,
        is_admin=bool(row.is_admin),
        password_hash=row.password_hash,
        pin_hash=row.pin_hash,
        created_at=row.created_at,
        disabled=bool(row.disabled),
    )


def _case(row: Row[Any]) -> Case:
    return Case(
        id=row.id,
        number=row.number,
        court=row.court,
        judge_id=row.judge_id,
        creditor_name=row.creditor_name,
        debtor_name=row.debtor_name,
        amount_owed_fen=int(row.amount_owed_fen),
        amount_paid_fen=int(row.amount_paid_fen),
        created_at=row.created_at,
    )


def _session(row: Row[Any]) -> Session:
    return Session(
        id=row.id,
        case_id=row.case_id,
        scheduled_at=row.scheduled_at,
        state=SessionState(row.state),
        lobby=bool(row.lobby),
        recorded=bool(row.recorded),
        created_by=row.created_by,
        created_at=row.created_at,
        ended_at=row.ended_at,
        video_codec=row.video_codec,
        admitted=_seats(row.admitted),
        caucus=Caucus(row.caucus) if row.caucus else None,
        muted=_seats(row.muted),
    )


def _seats(value: str) -> frozenset[Seat]:
    return frozenset(Seat(s) for s in value.split(",") if s)


def _invite(row: Row[Any]) -> Invite:
    return Invite(
        id=row.id,
        session_id=row.session_id,
        seats=tuple(Seat(s) for s in row.seats.split(",")),
        expires_at=row.expires_at,
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        label=row.label,
    )


def _terminal(row: Row[Any]) -> Terminal:
    return Terminal(
        id=row.id,
        name=row.name,
        center=row.center,
        credential_hash=row.credential_hash,
        created_at=row.created_at,
        disabled=bool(row.disabled),
    )


def _event_data(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        # Only an edit outside Courtlink writes this; keep the text so that the row fails its
        # hash and verification names it, instead of the whole read failing.
        return {"unreadable": raw}


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq),
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        session_id=row.session_id,
        case_id=row.case_id,
        data=_event_data(row.data),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _checkpoint(row: Row[Any]) -> Checkpoint:
    return Checkpoint(
        seq=int(row.seq), hash=row.hash, at=row.at, kid=row.kid, signature=row.signature
    )


# Documents -----------------------------------------------------------------------------------


def _document(row: Row[Any], steps: tuple[dict[str, Any], ...] = ()) -> Document:
    return Document(
        id=row.id,
        case_id=row.case_id,
        kind=DocKind(row.kind),
        state=DocState(row.state),
        number=row.number,
        title=row.title,
        fields=json.loads(row.fields),
        created_by=row.created_by,
        created_at=row.created_at,
        detention_id=row.detention_id,
        parent_id=row.parent_id,
        sha256=row.sha256,
        size=None if row.size is None else int(row.size),
        media_type=row.media_type,
        file_name=row.file_name,
        signed_by=row.signed_by,
        updated_at=row.updated_at,
        steps=steps,
    )


def _item(row: Row[Any]) -> InboxItem:
    return InboxItem(
        id=row.id,
        document_id=row.document_id,
        recipient=row.recipient,
        created_at=row.created_at,
        fetched_at=row.fetched_at,
        acknowledged_at=row.acknowledged_at,
        alerted_at=row.alerted_at,
    )


class DocumentRecords:
    """Queries about documents; mixed into Records."""

    conn: AsyncConnection

    async def add_document(self, document: Document) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.documents).values(
                        id=document.id,
                        case_id=document.case_id,
                        detention_id=document.detention_id,
                        parent_id=document.parent_id,
                        kind=str(document.kind),
                        state=str(document.state),
                        number=document.number,
                        title=document.title,
                        fields=json.dumps(document.fields, ensure_ascii=False, sort_keys=True),
                        created_by=document.created_by,
                        created_at=document.created_at,
                        updated_at=document.updated_at or document.created_at,
                        sha256=document.sha256,
                        size=document.size,
                        media_type=document.media_type,
                        file_name=document.file_name,
                        signed_by=document.signed_by,
                    )
                )
        except IntegrityError:
            raise Conflict(f"document {document.number} already exists") from None

    async def save_document(self, document: Document) -> None:
        await self.conn.execute(
            update(t.documents)
            .where(t.documents.c.id == document.id)
            .values(
                state=str(document.state),
                fields=json.dumps(document.fields, ensure_ascii=False, sort_keys=True),
                updated_at=document.updated_at,
                sha256=document.sha256,
                size=document.size,
                media_type=document.media_type,
                file_name=document.file_name,
                signed_by=document.signed_by,
            )
        )

    async def document(self, document_id: str, *, for_update: bool = False) -> Document:
        stmt = select(t.documents).where(t.documents.c.id == document_id)
        if for_update and self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).first()
        if row is None:
            raise NotFound("no such document")
        return _document(row, tuple(await self.steps(document_id)))

    async def documents(
        self, *, case_ids: Sequence[str] | None = None, kinds: Sequence[DocKind] | None = None
    ) -> list[Document]:
        stmt = select(t.documents).order_by(t.documents.c.created_at.desc())
        if case_ids is not None:
            stmt = stmt.where(t.documents.c.case_id.in_(list(case_ids)))
        if kinds is not None:
            stmt = stmt.where(t.documents.c.kind.in_([str(k) for k in kinds]))
        rows = list(await self.conn.execute(stmt))
        steps: dict[str, list[dict[str, Any]]] = {r.id: [] for r in rows}
        if rows:
            for s in await self.conn.execute(
                select(t.document_steps)
                .where(t.document_steps.c.document_id.in_(list(steps)))
                .order_by(t.document_steps.c.id)
            ):
                steps[s.document_id].append(_step(s))
        return [_document(r, tuple(steps[r.id])) for r in rows]

    async def count_documents(self, case_id: str) -> int:
        stmt = select(func.count()).where(t.documents.c.case_id == case_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def add_step(
        self,
        document_id: str,
        *,
        action: str,
        state: str,
        actor: str,
        at: datetime,
        officer_id: str | None = None,
        data: dict[str, Any] | None = None,
        receipt_id: str | None = None,
    ) -> None:
        await self.conn.execute(
            insert(t.document_steps).values(
                document_id=document_id,
                action=action,
                state=state,
                actor=actor,
                officer_id=officer_id,
                at=at,
                data=json.dumps(data or {}, ensure_ascii=False, sort_keys=True),
                receipt_id=receipt_id,
            )
        )

    async def steps(self, document_id: str) -> list[dict[str, Any]]:
        stmt = (
            select(t.document_steps)
            .where(t.document_steps.c.document_id == document_id)
            .order_by(t.document_steps.c.id)
        )
        return [_step(s) for s in await self.conn.execute(stmt)]

    async def add_item(self, item: InboxItem) -> bool:
        """Put a document in a recipient's inbox; False when it is there already."""
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.inbox_items).values(
                        id=item.id,
                        document_id=item.document_id,
                        recipient=item.recipient,
                        created_at=item.created_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def item(self, item_id: str) -> InboxItem:
        row = (
            await self.conn.execute(select(t.inbox_items).where(t.inbox_items.c.id == item_id))
        ).first()
        if row is None:
            raise NotFound("no such inbox item")
        return _item(row)

    async def items(
        self, *, recipients: Sequence[str] | None = None, document_id: str | None = None
    ) -> list[InboxItem]:
        stmt = select(t.inbox_items).order_by(t.inbox_items.c.created_at)
        if recipients is not None:
            stmt = stmt.where(t.inbox_items.c.recipient.in_(list(recipients)))
        if document_id is not None:
            stmt = stmt.where(t.inbox_items.c.document_id == document_id)
        return [_item(r) for r in await self.conn.execute(stmt)]

    async def mark_item(self, item_id: str, **values: datetime) -> None:
        await self.conn.execute(
            update(t.inbox_items).where(t.inbox_items.c.id == item_id).values(**values)
        )

    async def overdue_items(self, before: datetime) -> list[InboxItem]:
        """Delivered to a terminal or an officer before ``before``, not acknowledged, not yet
        reported to the judge."""
        stmt = (
            select(t.inbox_items)
            .join(t.documents, t.documents.c.id == t.inbox_items.c.document_id)
            .where(
                t.inbox_items.c.created_at < before,
                t.inbox_items.c.alerted_at.is_(None),
                t.documents.c.state.in_([str(DocState.ISSUED), str(DocState.DELIVERED)]),
                t.documents.c.kind.in_([str(DocKind.RENEWAL), str(DocKind.RELEASE)]),
            )
        )
        return [_item(r) for r in await self.conn.execute(stmt)]

    async def add_signature(
        self,
        document_id: str,
        seat: str,
        png: bytes,
        actor: str,
        at: datetime,
        officer_id: str | None,
    ) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t.drawn_signatures).values(
                        document_id=document_id,
                        seat=seat,
                        png=png,
                        actor=actor,
                        at=at,
                        officer_id=officer_id,
                    )
                )
        except IntegrityError:
            raise Conflict(f"the {seat} has signed already") from None

    async def signatures(self, document_id: str) -> dict[str, tuple[bytes, datetime]]:
        stmt = select(t.drawn_signatures).where(t.drawn_signatures.c.document_id == document_id)
        return {r.seat: (bytes(r.png), r.at) for r in await self.conn.execute(stmt)}


def _step(row: Row[Any]) -> dict[str, Any]:
    return {
        "action": row.action,
        "state": row.state,
        "actor": row.actor,
        "officer_id": row.officer_id,
        "at": row.at.isoformat(),
        "data": json.loads(row.data),
        "receipt_id": row.receipt_id,
    }


class Records(DocumentRecords):
    """Every query Courtlink makes. Instances live for one transaction (see ``Store``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _one(self, stmt: Any, what: str) -> Row[Any]:
        row = (await self.conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"no such {what}")
        return row

    async def _insert(self, table: Any, values: dict[str, Any], what: str) -> None:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(table).values(**values))
        except IntegrityError:
            raise Conflict(f"{what} already exists") from None

    # Accounts and logins ----------------------------------------------------------------

    async def add_account(self, account: Account) -> None:
        await self._insert(
            t.accounts,
            {
                "id": account.id,
                "username": account.username,
                "display_name": account.display_name,
                "role": str(account.role),
                "court": account.court,
                "center": account.center,
                "is_admin": account.is_admin,
                "password_hash": account.password_hash,
                "pin_hash": account.pin_hash,
                "created_at": account.created_at,
                "disabled": account.disabled,
            },
            f"account {account.username}",
        )

    async def account(self, account_id: str) -> Account:
        return _account(
            await self._one(select(t.accounts).where(t.accounts.c.id == account_id), "account")
        )

    async def account_by_username(self, username: str) -> Account | None:
        row = (
            await self.conn.execute(select(t.accounts).where(t.accounts.c.username == username))
        ).first()
        return None if row is None else _account(row)

    async def accounts(self, role: AccountRole | None = None) -> list[Account]:
        stmt = select(t.accounts).order_by(t.accounts.c.username)
        if role is not None:
            stmt = stmt.where(t.accounts.c.role == str(role))
        return [_account(r) for r in await self.conn.execute(stmt)]

    async def add_login(
        self, token_hash: str, account_id: str, csrf: str, now: datetime, expires: datetime
    ) -> None:
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
        await self.conn.execute(
            update(t.logins).where(t.logins.c.token_hash == token_hash).values(revoked_at=now)
        )

    async def lock_name(self, name: str) -> None:
        """Serialize transactions about ``name`` until this one ends. PostgreSQL: an advisory
        transaction lock; SQLite needs none (write transactions already run one at a time)."""
        if self.conn.dialect.name == "postgresql":
            await self.conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name}
            )

    async def add_login_failure(self, username: str, remote: str, now: datetime) -> None:
        await self.conn.execute(
            insert(t.login_failures).values(username=username, remote=remote[:64], at=now)
        )

    async def login_failures_since(self, username: str, since: datetime) -> int:
        stmt = select(func.count()).where(
            t.login_failures.c.username == username, t.login_failures.c.at > since
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def login_failures_from(self, remote: str, since: datetime) -> int:
        stmt = select(func.count()).where(
            t.login_failures.c.remote == remote[:64], t.login_failures.c.at > since
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def clear_login_failures(self, username: str) -> None:
        await self.conn.execute(
            delete(t.login_failures).where(t.login_failures.c.username == username)
        )

    # Cases and detentions ---------------------------------------------------------------

    async def add_case(self, case: Case) -> None:
        await self._insert(
            t.cases,
            {
                "id": case.id,
                "number": case.number,
                "court": case.court,
                "judge_id": case.judge_id,
                "creditor_name": case.creditor_name,
                "debtor_name": case.debtor_name,
                "amount_owed_fen": case.amount_owed_fen,
                "amount_paid_fen": case.amount_paid_fen,
                "created_at": case.created_at,
            },
            f"case {case.number}",
        )

    async def case(self, case_id: str) -> Case:
        return _case(await self._one(select(t.cases).where(t.cases.c.id == case_id), "case"))

    async def case_by_number(self, number: str) -> Case | None:
        row = (await self.conn.execute(select(t.cases).where(t.cases.c.number == number))).first()
        return None if row is None else _case(row)

    async def cases(self, judge_id: str | None = None) -> list[Case]:
        stmt = select(t.cases).order_by(t.cases.c.created_at.desc())
        if judge_id is not None:
            stmt = stmt.where(t.cases.c.judge_id == judge_id)
        return [_case(r) for r in await self.conn.execute(stmt)]

    async def set_amount_paid(self, case_id: str, amount_fen: int) -> None:
        await self.conn.execute(
            update(t.cases).where(t.cases.c.id == case_id).values(amount_paid_fen=amount_fen)
        )

    async def add_detention(self, detention: Detention) -> None:
        await self._insert(
            t.detentions,
            {
                "id": detention.id,
                "case_id": detention.case_id,
                "debtor_name": detention.debtor_name,
                "center": detention.center,
                "released_at": detention.released_at,
                "created_at": detention.created_at,
            },
            "detention",
        )
        await self._write_periods(detention)

    async def _write_periods(self, detention: Detention) -> None:
        await self.conn.execute(
            delete(t.detention_periods).where(t.detention_periods.c.detention_id == detention.id)
        )
        await self.conn.execute(
            insert(t.detention_periods),
            [
                {"detention_id": detention.id, "idx": i, "start": p.start, "days": p.days}
                for i, p in enumerate(detention.periods)
            ],
        )

    async def save_detention(self, detention: Detention) -> None:
        """Store a changed detention (renewed or released)."""
        await self.conn.execute(
            update(t.detentions)
            .where(t.detentions.c.id == detention.id)
            .values(released_at=detention.released_at)
        )
        await self._write_periods(detention)

    async def _detentions(self, where: Any) -> list[Detention]:
        rows = list(
            await self.conn.execute(
                select(t.detentions).where(where).order_by(t.detentions.c.created_at)
            )
        )
        if not rows:
            return []
        ids = [r.id for r in rows]
        periods: dict[str, list[Period]] = {i: [] for i in ids}
        for p in await self.conn.execute(
            select(t.detention_periods)
            .where(t.detention_periods.c.detention_id.in_(ids))
            .order_by(t.detention_periods.c.idx)
        ):
            periods[p.detention_id].append(Period(p.start, int(p.days)))
        return [
            Detention(
                id=r.id,
                case_id=r.case_id,
                debtor_name=r.debtor_name,
                center=r.center,
                periods=tuple(periods[r.id]),
                released_at=r.released_at,
                created_at=r.created_at,
            )
            for r in rows
        ]

    async def detention(self, detention_id: str) -> Detention:
        found = await self._detentions(t.detentions.c.id == detention_id)
        if not found:
            raise NotFound("no such detention")
        return found[0]

    async def detentions(
        self, case_ids: Sequence[str] | None = None, center: str | None = None
    ) -> list[Detention]:
        where: Any = t.detentions.c.id.is_not(None)
        if case_ids is not None:
            where = t.detentions.c.case_id.in_(list(case_ids))
        if center is not None:
            where = where & (t.detentions.c.center == center)
        return await self._detentions(where)

    # Sessions, invites, consent ---------------------------------------------------------

    async def add_session(self, session: Session) -> None:
        await self._insert(
            t.sessions,
            {
                "id": session.id,
                "case_id": session.case_id,
                "scheduled_at": session.scheduled_at,
                "state": str(session.state),
                "lobby": session.lobby,
                "recorded": session.recorded,
                "created_by": session.created_by,
                "created_at": session.created_at,
                "ended_at": session.ended_at,
                "video_codec": session.video_codec,
                "admitted": ",".join(sorted(session.admitted)),
                "caucus": None if session.caucus is None else str(session.caucus),
                "muted": ",".join(sorted(session.muted)),
            },
            "session",
        )

    async def session(self, session_id: str) -> Session:
        return _session(
            await self._one(select(t.sessions).where(t.sessions.c.id == session_id), "session")
        )

    async def sessions(self, case_ids: Sequence[str] | None = None) -> list[Session]:
        stmt = select(t.sessions).order_by(t.sessions.c.scheduled_at.desc())
        if case_ids is not None:
            stmt = stmt.where(t.sessions.c.case_id.in_(list(case_ids)))
        return [_session(r) for r in await self.conn.execute(stmt)]

    async def save_session(self, session: Session) -> None:
        await self.conn.execute(
            update(t.sessions)
            .where(t.sessions.c.id == session.id)
            .values(
                state=str(session.state),
                ended_at=session.ended_at,
                lobby=session.lobby,
                admitted=",".join(sorted(session.admitted)),
                caucus=None if session.caucus is None else str(session.caucus),
                muted=",".join(sorted(session.muted)),
            )
        )

    async def add_invite(self, invite: Invite) -> None:
        await self._insert(
            t.invites,
            {
                "id": invite.id,
                "session_id": invite.session_id,
                "seats": ",".join(invite.seats),
                "expires_at": invite.expires_at,
                "created_by": invite.created_by,
                "created_at": invite.created_at,
                "revoked_at": invite.revoked_at,
                "label": invite.label,
            },
            "invite",
        )

    async def invite(self, invite_id: str) -> Invite:
        return _invite(
            await self._one(select(t.invites).where(t.invites.c.id == invite_id), "invite")
        )

    async def invites(self, session_id: str) -> list[Invite]:
        stmt = (
            select(t.invites)
            .where(t.invites.c.session_id == session_id)
            .order_by(t.invites.c.created_at)
        )
        return [_invite(r) for r in await self.conn.execute(stmt)]

    async def revoke_invite(self, invite_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.invites).where(t.invites.c.id == invite_id).values(revoked_at=now)
        )

    async def add_consent(self, consent: Consent) -> None:
        await self._insert(
            t.consents,
            {
                "session_id": consent.session_id,
                "seat": str(consent.seat),
                "invite_id": consent.invite_id,
                "at": consent.at,
                "recorded": consent.recorded,
                "text_version": consent.text_version,
                "confirmed_by": consent.confirmed_by,
            },
            "consent",
        )

    async def consents(self, session_id: str) -> list[Consent]:
        stmt = select(t.consents).where(t.consents.c.session_id == session_id)
        return [
            Consent(
                session_id=r.session_id,
                seat=Seat(r.seat),
                invite_id=r.invite_id,
                at=r.at,
                recorded=bool(r.recorded),
                text_version=int(r.text_version),
                confirmed_by=r.confirmed_by,
            )
            for r in await self.conn.execute(stmt)
        ]

    # Terminals --------------------------------------------------------------------------

    async def add_terminal(self, terminal: Terminal) -> None:
        await self._insert(
            t.terminals,
            {
                "id": terminal.id,
                "name": terminal.name,
                "center": terminal.center,
                "credential_hash": terminal.credential_hash,
                "created_at": terminal.created_at,
                "disabled": terminal.disabled,
            },
            "terminal",
        )

    async def terminal(self, terminal_id: str) -> Terminal:
        return _terminal(
            await self._one(select(t.terminals).where(t.terminals.c.id == terminal_id), "terminal")
        )

    async def terminals(self) -> list[Terminal]:
        return [
            _terminal(r)
            for r in await self.conn.execute(select(t.terminals).order_by(t.terminals.c.name))
        ]

    # Meta -------------------------------------------------------------------------------

    async def meta(self, key: str) -> str | None:
        row = (await self.conn.execute(select(t.meta.c.value).where(t.meta.c.key == key))).first()
        return None if row is None else str(row.value)

    async def set_meta(self, key: str, value: str) -> None:
        await self.conn.execute(delete(t.meta).where(t.meta.c.key == key))
        await self.conn.execute(insert(t.meta).values(key=key, value=value))

    # Audit chain ------------------------------------------------------------------------

    async def append_audit(
        self,
        *,
        at: datetime,
        kind: str,
        actor: str,
        session_id: str | None,
        case_id: str | None,
        data: dict[str, Any],
    ) -> AuditEvent:
        """Append one event. The UPDATE of the head row is the lock: PostgreSQL holds the row
        lock and SQLite the write lock until this transaction commits, so there is one writer
        at a time and sequence numbers never repeat or skip."""
        head = (
            await self.conn.execute(
                update(t.audit_head)
                .where(t.audit_head.c.id == 1)
                .values(seq=t.audit_head.c.seq + 1)
                .returning(t.audit_head.c.seq, t.audit_head.c.hash)
            )
        ).one()
        seq, prev = int(head.seq), str(head.hash)
        # The stored data is exactly the canonical JSON that was hashed.
        data = json.loads(canonical(data))
        digest = event_hash(
            seq=seq,
            at=at,
            kind=kind,
            actor=actor,
            session_id=session_id,
            case_id=case_id,
            data=data,
            prev_hash=prev,
        )
        await self.conn.execute(
            insert(t.audit_events).values(
                seq=seq,
                at=at,
                kind=kind,
                actor=actor,
                session_id=session_id,
                case_id=case_id,
                data=canonical(data).decode(),
                prev_hash=prev,
                hash=digest,
            )
        )
        await self.conn.execute(
            update(t.audit_head).where(t.audit_head.c.id == 1).values(hash=digest)
        )
        return AuditEvent(seq, at, kind, actor, session_id, case_id, data, prev, digest)

    async def audit_head(self) -> tuple[int, str, int]:
        """(head seq, head hash, seq of the last checkpoint)."""
        row = (await self.conn.execute(select(t.audit_head).where(t.audit_head.c.id == 1))).one()
        return int(row.seq), str(row.hash), int(row.checkpoint_seq)

    async def audit_head_for_update(self) -> tuple[int, str, int]:
        stmt = select(t.audit_head).where(t.audit_head.c.id == 1)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).one()
        return int(row.seq), str(row.hash), int(row.checkpoint_seq)

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.conn.execute(
            insert(t.audit_checkpoints).values(
                seq=checkpoint.seq,
                hash=checkpoint.hash,
                at=checkpoint.at,
                kid=checkpoint.kid,
                signature=checkpoint.signature,
            )
        )
        await self.conn.execute(
            update(t.audit_head).where(t.audit_head.c.id == 1).values(checkpoint_seq=checkpoint.seq)
        )

    async def audit_events(
        self,
        *,
        session_id: str | None = None,
        case_id: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        stmt = (
            select(t.audit_events)
            .where(t.audit_events.c.seq > after)
            .order_by(t.audit_events.c.seq)
        )
        if session_id is not None:
            stmt = stmt.where(t.audit_events.c.session_id == session_id)
        if case_id is not None:
            stmt = stmt.where(t.audit_events.c.case_id == case_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_event(r) for r in await self.conn.execute(stmt)]

    async def stream_audit(self, batch: int = 1000) -> AsyncIterator[AuditEvent]:
        """Every event in sequence order, a batch at a time (chains can be long)."""
        after = -1
        while True:
            events = await self.audit_events(after=after, limit=batch)
            for event in events:
                yield event
            if len(events) < batch:
                return
            after = events[-1].seq

    async def checkpoints(self) -> list[Checkpoint]:
        stmt = select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.seq)
        return [_checkpoint(r) for r in await self.conn.execute(stmt)]
