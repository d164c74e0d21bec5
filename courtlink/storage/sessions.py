"""Sessions, their invites, and the consents given in them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from courtlink.court.consent import Consent
from courtlink.court.invites import Invite
from courtlink.court.routing import Caucus
from courtlink.court.seats import Seat
from courtlink.court.sessions import Session, SessionState
from courtlink.storage import tables as t
from courtlink.storage.queries import Queries
from courtlink.storage.rows import BOOL, INT, SEAT_SET, SEAT_TUPLE, RowMapper, enum, optional_enum

__all__ = ["CONSENTS", "INVITES", "SESSIONS", "SessionRecords"]

SESSIONS = RowMapper(
    Session,
    t.sessions,
    state=enum(SessionState),
    lobby=BOOL,
    recorded=BOOL,
    admitted=SEAT_SET,
    caucus=optional_enum(Caucus),
    muted=SEAT_SET,
)
INVITES = RowMapper(Invite, t.invites, seats=SEAT_TUPLE)
CONSENTS = RowMapper(Consent, t.consents, seat=enum(Seat), recorded=BOOL, text_version=INT)


class SessionRecords(Queries):
    """Queries about sessions, invites and consents; part of ``Records``."""

    async def add_session(self, session: Session) -> None:
        """Store a new session."""
        await self._insert(t.sessions, SESSIONS.dump(session), "session")

    async def session(self, session_id: str) -> Session:
        """The session; ``NotFound`` when there is none."""
        return SESSIONS.load(
            await self._one(select(t.sessions).where(t.sessions.c.id == session_id), "session")
        )

    async def sessions(self, case_ids: Sequence[str] | None = None) -> list[Session]:
        """Every session (of these cases), the latest scheduled first."""
        stmt = select(t.sessions).order_by(t.sessions.c.scheduled_at.desc())
        if case_ids is not None:
            stmt = stmt.where(t.sessions.c.case_id.in_(list(case_ids)))
        return [SESSIONS.load(r) for r in await self.conn.execute(stmt)]

    async def save_session(self, session: Session) -> None:
        """Store what changes during a session (the rest is fixed when it is scheduled)."""
        await self.conn.execute(
            update(t.sessions)
            .where(t.sessions.c.id == session.id)
            .values(
                SESSIONS.dump(session, "state", "ended_at", "lobby", "admitted", "caucus", "muted")
            )
        )

    async def add_invite(self, invite: Invite) -> None:
        """Store a new invite."""
        await self._insert(t.invites, INVITES.dump(invite), "invite")

    async def invite(self, invite_id: str) -> Invite:
        """The invite; ``NotFound`` when there is none."""
        return INVITES.load(
            await self._one(select(t.invites).where(t.invites.c.id == invite_id), "invite")
        )

    async def invites(self, session_id: str) -> list[Invite]:
        """The invites to a session, oldest first."""
        stmt = (
            select(t.invites)
            .where(t.invites.c.session_id == session_id)
            .order_by(t.invites.c.created_at)
        )
        return [INVITES.load(r) for r in await self.conn.execute(stmt)]

    async def revoke_invite(self, invite_id: str, now: datetime) -> None:
        """Revoke an invite from ``now`` on."""
        await self.conn.execute(
            update(t.invites).where(t.invites.c.id == invite_id).values(revoked_at=now)
        )

    async def add_consent(self, consent: Consent) -> None:
        """Store a consent; ``Conflict`` when that seat consented on that invite already."""
        await self._insert(t.consents, CONSENTS.dump(consent), "consent")

    async def consents(self, session_id: str) -> list[Consent]:
        """The consents given in a session."""
        stmt = select(t.consents).where(t.consents.c.session_id == session_id)
        return [CONSENTS.load(r) for r in await self.conn.execute(stmt)]
