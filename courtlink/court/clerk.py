"""The Clerk (书记员): every change to Courtlink's records goes through here.

Each method checks the role policy, writes the change and its audit event in one transaction,
and returns frozen records. The read side is here too: what the pages show (a judge's own cases,
the links of live invites, the seats a principal comes for, overdue documents) is decided by the
same policy, so no edge reads the database or asks the policy itself. Web handlers, signaling
handlers and the CLI all call the Clerk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from courtlink.clock import Clock, new_id, system_clock
from courtlink.court.audit import AuditKind
from courtlink.court.auditor import Auditor
from courtlink.court.cases import Case, normalize_case_number
from courtlink.court.consent import CONSENT_SEATS, CONSENT_TEXT_VERSION, Consent
from courtlink.court.detentions import Detention, Period, check_period_days
from courtlink.court.documents.lifecycle import DocState
from courtlink.court.hashing import SecretHasher
from courtlink.court.invites import Invite, InviteClaims, InviteSigner, check_invite_seats
from courtlink.court.policy import (
    AccountPrincipal,
    Action,
    InvitePrincipal,
    Principal,
    authorize,
    may,
)
from courtlink.court.routing import MODERATED_SEATS, Caucus
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.sessions import Session, SessionState, check_video_codec
from courtlink.errors import Conflict, Forbidden, InvalidInput, InviteRevoked, NotFound, RateLimited
from courtlink.storage import Store

__all__ = ["Clerk", "ClerkRules", "InviteLink", "IssuedInvite", "Seating", "Tally"]


@dataclass(frozen=True, slots=True)
class ClerkRules:
    """The configurable rules the Clerk applies (from config/)."""

    max_period_days: int = 15
    invite_ttl_hours: float = 72
    lobby_by_default: bool = True
    record_by_default: bool = False
    pin_max_failures: int = 5
    pin_window_seconds: int = 300


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    invite: Invite
    token: str


@dataclass(frozen=True, slots=True)
class InviteLink:
    """An invite as its session's judge sees it: ``token`` is None once the invite is revoked
    or expired, since such a link no longer opens anything."""

    invite: Invite
    token: str | None

    @property
    def live(self) -> bool:
        """The link still opens the session."""
        return self.token is not None


@dataclass(frozen=True, slots=True)
class Seating:
    """What the join page shows a principal: the session, its case, the seats they come for
    and which of those still wait for the party's consent."""

    session: Session
    case: Case
    seats: tuple[Seat, ...]
    consent_pending: tuple[Seat, ...]


def _name(value: str, what: str, limit: int = 100) -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise InvalidInput(f"{what} must be 1 to {limit} characters")
    return value


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts the /metrics scrape reports: sessions in each state (every state, zeros too)
    and the audit chain's length."""

    sessions: dict[str, int]
    audit_events: int


class Clerk:
    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        signer: InviteSigner,
        hasher: SecretHasher,
        rules: ClerkRules | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.auditor = auditor
        self.signer = signer
        self.hasher = hasher
        self.rules = rules or ClerkRules()
        self.clock = clock

    # Cases and detentions ---------------------------------------------------------------

    async def create_case(
        self,
        principal: Principal,
        *,
        number: str,
        creditor_name: str,
        debtor_name: str,
        amount_owed_fen: int,
        amount_paid_fen: int = 0,
        court: str | None = None,
    ) -> Case:
        authorize(principal, Action.CASE_CREATE)
        assert isinstance(principal, AccountPrincipal)
        judge = principal.account
        if amount_owed_fen <= 0 or not 0 <= amount_paid_fen <= amount_owed_fen:
            raise InvalidInput("amounts must satisfy 0 <= paid <= owed and owed > 0")
        case = Case(
            id=new_id(),
            number=normalize_case_number(number),
            court=_name(court or judge.court, "court"),
            judge_id=judge.id,
            creditor_name=_name(creditor_name, "creditor name"),
            debtor_name=_name(debtor_name, "debtor name"),
            amount_owed_fen=amount_owed_fen,
            amount_paid_fen=amount_paid_fen,
            created_at=self.clock(),
        )
        async with self.store.write() as tx:
            await tx.add_case(case)
            await self.auditor.record(
                tx,
                AuditKind.CASE_CREATED,
                principal.actor,
                case_id=case.id,
                data={"number": case.number},
            )
        return case

    async def case(self, principal: Principal, case_id: str) -> Case:
        async with self.store.read() as tx:
            case = await tx.case(case_id)
        authorize(principal, Action.CASE_READ, case=case)
        return case

    async def cases(self, principal: Principal) -> list[Case]:
        authorize(principal, Action.CASE_READ)
        async with self.store.read() as tx:
            return await tx.cases()

    def assigned(self, principal: Principal, cases: Iterable[Case]) -> frozenset[str]:
        """The ids of those ``cases`` whose judge ``principal`` is: the ones they may act on
        (record detentions, hold sessions, issue orders). Pages show those cases' buttons."""
        return frozenset(
            case.id for case in cases if may(principal, Action.DETENTION_CREATE, case=case) is None
        )

    async def create_detention(
        self, principal: Principal, *, case_id: str, center: str, start: datetime, days: int
    ) -> Detention:
        async with self.store.write() as tx:
            case = await tx.case(case_id)
            authorize(principal, Action.DETENTION_CREATE, case=case)
            check_period_days(days, self.rules.max_period_days)
            detention = Detention(
                id=new_id(),
                case_id=case.id,
                debtor_name=case.debtor_name,
                center=_name(center, "detention center"),
                periods=(Period(start, days),),
                created_at=self.clock(),
            )
            await tx.add_detention(detention)
            await self.auditor.record(
                tx,
                AuditKind.DETENTION_CREATED,
                principal.actor,
                case_id=case.id,
                data={
                    "detention": detention.id,
                    "center": detention.center,
                    "start": start.isoformat(),
                    "days": days,
                },
            )
        return detention

    async def detentions(self, principal: Principal) -> list[Detention]:
        authorize(principal, Action.DETENTION_READ)
        center = None
        if (
            isinstance(principal, AccountPrincipal)
            and principal.account.role is AccountRole.OFFICER
        ):
            center = principal.account.center  # officers see their own center only
        async with self.store.read() as tx:
            return await tx.detentions(center=center)

    # Sessions ---------------------------------------------------------------------------

    async def create_session(
        self,
        principal: Principal,
        *,
        case_id: str,
        scheduled_at: datetime | None = None,
        lobby: bool | None = None,
        recorded: bool | None = None,
        video_codec: str = "vp8",
    ) -> Session:
        check_video_codec(video_codec)
        async with self.store.write() as tx:
            case = await tx.case(case_id)
            authorize(principal, Action.SESSION_CREATE, case=case)
            now = self.clock()
            session = Session(
                id=new_id(),
                case_id=case.id,
                scheduled_at=scheduled_at or now,
                state=SessionState.SCHEDULED,
                lobby=self.rules.lobby_by_default if lobby is None else lobby,
                recorded=self.rules.record_by_default if recorded is None else recorded,
                created_by=principal.actor,
                created_at=now,
                video_codec=video_codec,
            )
            await tx.add_session(session)
            await self.auditor.record(
                tx,
                AuditKind.SESSION_CREATED,
                principal.actor,
                session_id=session.id,
                case_id=case.id,
                data={
                    "scheduled_at": session.scheduled_at.isoformat(),
                    "lobby": session.lobby,
                    "recorded": session.recorded,
                    "video_codec": video_codec,
                },
            )
        return session

    async def session(self, principal: Principal, session_id: str) -> tuple[Session, Case]:
        async with self.store.read() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
        authorize(principal, Action.SESSION_READ, case=case, session_id=session.id)
        return session, case

    async def sessions(self, principal: Principal) -> list[Session]:
        authorize(principal, Action.SESSION_READ)
        async with self.store.read() as tx:
            return await tx.sessions()

    async def end_session(self, principal: Principal, session_id: str) -> Session:
        async with self.store.write() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
            if may(principal, Action.SESSION_END, case=case) is not None:
                # The judge's own invite, in the session, may end it too.
                authorize(principal, Action.MODERATE, case=case, session_id=session.id)
            ended = session.ended(self.clock())
            await tx.save_session(ended)
            await self.auditor.record(
                tx, AuditKind.SESSION_ENDED, principal.actor, session_id=session.id, case_id=case.id
            )
        return ended

    async def moderate(
        self,
        principal: Principal,
        session_id: str,
        *,
        action: str,
        seat: Seat | None = None,
        value: bool | None = None,
        caucus: Caucus | None = None,
    ) -> Session:
        """The judge's moderation: ``lobby`` (value: on/off), ``admit`` (seat: the creditor),
        ``caucus`` (caucus: a side, or None to end it), ``mute`` (seat, value: muted or not).
        Stored on the session, audited, and enforced by the SFU through court/routing.py."""
        async with self.store.write() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
            authorize(principal, Action.MODERATE, case=case, session_id=session.id)
            if session.state is SessionState.ENDED:
                raise Conflict("the session has ended")
            current = session.moderation
            if action == "lobby":
                if value is None:
                    raise InvalidInput("lobby: say whether it is on")
                changed = replace(current, lobby=value)
            elif action == "admit":
                if seat is not Seat.CREDITOR:
                    raise InvalidInput("only the creditor waits in the lobby")
                changed = replace(current, admitted=current.admitted | {seat})
            elif action == "caucus":
                changed = replace(current, caucus=caucus)
            elif action == "mute":
                if seat is None or seat not in MODERATED_SEATS or value is None:
                    raise InvalidInput(
                        "mute: name the officer, debtor or creditor seat and whether muted"
                    )
                muted = current.muted | {seat} if value else current.muted - {seat}
                changed = replace(current, muted=muted)
            else:
                raise InvalidInput(f"unknown moderation {action!r}")
            updated = session.moderated(changed)
            await tx.save_session(updated)
            await self.auditor.record(
                tx,
                AuditKind.MODERATED,
                principal.actor,
                session_id=session.id,
                case_id=case.id,
                data={
                    "action": action,
                    "seat": None if seat is None else str(seat),
                    "value": value,
                    "caucus": None if caucus is None else str(caucus),
                },
            )
        return updated

    async def remove_participant(
        self, principal: Principal, session_id: str, seat: Seat, holder_actor: str
    ) -> None:
        """The judge removes whoever holds ``seat``: the invite they came with is revoked, so
        they cannot come straight back (the judge may issue a new one)."""
        if seat not in MODERATED_SEATS:
            raise InvalidInput("only the officer, debtor or creditor can be removed")
        async with self.store.write() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
            authorize(principal, Action.MODERATE, case=case, session_id=session.id)
            kind, _, ident = holder_actor.partition(":")
            if kind == "invite":
                invite = await tx.invite(ident)
                if not invite.revoked():
                    await tx.revoke_invite(invite.id, self.clock())
            await self.auditor.record(
                tx,
                AuditKind.REMOVED,
                principal.actor,
                session_id=session.id,
                case_id=case.id,
                data={"seat": str(seat), "holder": holder_actor},
            )

    async def note_presence(self, session_id: str, *, judge_in: bool, others_in: int) -> Session:
        """Move the session's state after a join or leave (scheduled -> open -> live)."""
        async with self.store.write() as tx:
            session = await tx.session(session_id)
            state = session.after_presence(judge_in, others_in)
            if state is session.state:
                return session
            changed = replace(session, state=state)
            await tx.save_session(changed)
            await self.auditor.record(
                tx,
                AuditKind.SESSION_STATE,
                "system",
                session_id=session.id,
                case_id=session.case_id,
                data={"from": str(session.state), "to": str(state)},
            )
        return changed

    # Invites ----------------------------------------------------------------------------

    async def issue_invite(
        self,
        principal: Principal,
        *,
        session_id: str,
        seats: list[Seat] | tuple[Seat, ...],
        ttl_hours: float | None = None,
        label: str = "",
    ) -> IssuedInvite:
        chosen = check_invite_seats(seats)
        hours = self.rules.invite_ttl_hours if ttl_hours is None else ttl_hours
        if not 0 < hours <= 24 * 90:
            raise InvalidInput("invite lifetime must be more than 0 and at most 90 days")
        async with self.store.write() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
            authorize(principal, Action.INVITE_ISSUE, case=case)
            if session.state is SessionState.ENDED:
                raise Conflict("the session has ended")
            now = self.clock()
            invite = Invite(
                id=new_id(),
                session_id=session.id,
                seats=chosen,
                expires_at=now + timedelta(hours=hours),
                created_by=principal.actor,
                created_at=now,
                label=label.strip()[:100],
            )
            await tx.add_invite(invite)
            await self.auditor.record(
                tx,
                AuditKind.INVITE_ISSUED,
                principal.actor,
                session_id=session.id,
                case_id=case.id,
                data={
                    "invite": invite.id,
                    "seats": list(chosen),
                    "expires_at": invite.expires_at.isoformat(),
                },
            )
        return IssuedInvite(invite, self.signer.sign(invite))

    async def revoke_invite(self, principal: Principal, invite_id: str) -> Invite:
        async with self.store.write() as tx:
            invite = await tx.invite(invite_id)
            session = await tx.session(invite.session_id)
            case = await tx.case(session.case_id)
            authorize(principal, Action.INVITE_REVOKE, case=case)
            if invite.revoked():
                return invite
            now = self.clock()
            await tx.revoke_invite(invite.id, now)
            await self.auditor.record(
                tx,
                AuditKind.INVITE_REVOKED,
                principal.actor,
                session_id=session.id,
                case_id=case.id,
                data={"invite": invite.id},
            )
        return replace(invite, revoked_at=now)

    async def invites(self, principal: Principal, session_id: str) -> list[Invite]:
        async with self.store.read() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
            authorize(principal, Action.INVITE_READ, case=case)
            return await tx.invites(session_id)

    async def invite_links(self, principal: Principal, session_id: str) -> list[InviteLink]:
        """The session's invites with the links of those still live, for the session's judge.
        A token is the same signature as at issue, so showing it again grants nothing new."""
        now = self.clock()
        return [
            InviteLink(
                invite,
                self.signer.sign(invite)
                if not invite.revoked() and invite.expires_at > now
                else None,
            )
            for invite in await self.invites(principal, session_id)
        ]

    async def check_invite(self, token: str) -> InviteClaims:
        """Verify an invite token and that it has not been revoked. Every use calls this."""
        claims = self.signer.read(token)
        async with self.store.read() as tx:
            try:
                invite = await tx.invite(claims.invite_id)
            except NotFound:
                raise InviteRevoked("this invite no longer exists") from None
        if invite.revoked() or invite.session_id != claims.session_id:
            raise InviteRevoked("this invite has been revoked")
        return claims

    async def open_invite(self, token: str) -> InviteClaims:
        """The first step of an invite link: verify it and record that it was opened."""
        claims = await self.check_invite(token)
        await self.auditor.log(
            AuditKind.INVITE_OPENED,
            f"invite:{claims.invite_id}",
            session_id=claims.session_id,
            data={"seats": list(claims.seats)},
        )
        return claims

    # Consent ----------------------------------------------------------------------------

    async def consent_needed(self, claims: InviteClaims) -> list[Seat]:
        """The seats of this invite that still lack a party's consent."""
        async with self.store.read() as tx:
            given = {
                c.seat
                for c in await tx.consents(claims.session_id)
                if c.invite_id == claims.invite_id
            }
        return [seat for seat in claims.seats if seat in CONSENT_SEATS and seat not in given]

    async def give_consent(
        self,
        principal: InvitePrincipal,
        *,
        officer_username: str | None = None,
        officer_pin: str | None = None,
    ) -> list[Consent]:
        """Record consent for every seat of the invite that needs it.

        When the invite also holds the officer seat (a terminal), the detainee's consent is
        confirmed by a named officer with their PIN; the record says which officer.
        """
        claims = principal.claims
        pending = await self.consent_needed(claims)
        if not pending:
            return []
        confirmed_by: str | None = None
        if Seat.OFFICER in claims.seats:
            confirmed_by = await self.officer_by_pin(officer_username, officer_pin)
        async with self.store.write() as tx:
            session = await tx.session(claims.session_id)
            if session.state is SessionState.ENDED:
                raise Conflict("the session has ended")
            now = self.clock()
            made = []
            for seat in pending:
                authorize(principal, Action.CONSENT_GIVE, session_id=session.id, seat=seat)
                consent = Consent(
                    session_id=session.id,
                    seat=seat,
                    invite_id=claims.invite_id,
                    at=now,
                    recorded=session.recorded,
                    text_version=CONSENT_TEXT_VERSION,
                    confirmed_by=confirmed_by,
                )
                await tx.add_consent(consent)
                await self.auditor.record(
                    tx,
                    AuditKind.CONSENT_GIVEN,
                    principal.actor,
                    session_id=session.id,
                    case_id=session.case_id,
                    data={
                        "seat": str(seat),
                        "recorded": session.recorded,
                        "text_version": CONSENT_TEXT_VERSION,
                        "confirmed_by": confirmed_by,
                    },
                )
                made.append(consent)
        return made

    async def officer_by_pin(
        self, username: str | None, pin: str | None, *, center: str | None = None
    ) -> str:
        """The id of the officer whose PIN this is (of ``center``, when given); Forbidden
        otherwise. A PIN is short, so failures are counted like failed logins: after
        ``pin_max_failures`` in the window the officer must wait."""
        if not username or not pin:
            raise Forbidden("an officer must confirm with their name and PIN")
        name = username.strip().lower()[:40]
        key = f"pin:{name}"
        now = self.clock()
        since = now - timedelta(seconds=self.rules.pin_window_seconds)
        async with self.store.write() as tx:
            await tx.lock_name(key)
            if await tx.login_failures_since(key, since) >= self.rules.pin_max_failures:
                raise RateLimited("too many wrong PINs; wait a few minutes and try again")
            account = await tx.account_by_username(name)
            stored = account.pin_hash if account and account.role is AccountRole.OFFICER else None
            ok = self.hasher.verify(stored, pin) and account is not None and not account.disabled
            if ok and center is not None and account is not None and account.center != center:
                ok = False
            if not ok:
                await tx.add_login_failure(key, "pin", now)
        if not ok or account is None:
            raise Forbidden("officer name or PIN is wrong")
        return account.id

    # Joining ----------------------------------------------------------------------------

    async def seating(self, principal: Principal, session_id: str) -> Seating:
        """The seats ``principal`` comes to the session for: an invite's seats (with those whose
        party has not consented yet), or the judge's seat for the case's judge. Forbidden for
        anyone else. Unlike ``authorize_join`` an ended session is no error: the page says so."""
        session, case = await self.session(principal, session_id)
        if isinstance(principal, InvitePrincipal):
            pending = await self.consent_needed(principal.claims)
            return Seating(session, case, principal.claims.seats, tuple(pending))
        authorize(principal, Action.SEAT_JOIN, case=case, session_id=session.id, seat=Seat.JUDGE)
        return Seating(session, case, (Seat.JUDGE,), ())

    async def authorize_join(
        self, principal: Principal, session_id: str, seats: tuple[Seat, ...]
    ) -> tuple[Session, Case]:
        """Check that ``principal`` may take ``seats`` of the session now."""
        if not seats:
            raise InvalidInput("no seat asked for")
        async with self.store.read() as tx:
            session = await tx.session(session_id)
            case = await tx.case(session.case_id)
        if isinstance(principal, InvitePrincipal):
            principal.claims.check(session.id, seats)
        for seat in seats:
            authorize(principal, Action.SEAT_JOIN, case=case, session_id=session.id, seat=seat)
        if session.state is SessionState.ENDED:
            raise Conflict("the session has ended")
        if isinstance(principal, InvitePrincipal):
            missing = [s for s in await self.consent_needed(principal.claims) if s in seats]
            if missing:
                raise Forbidden(
                    f"consent is needed first for the {missing[0]} seat", code="consent_required"
                )
        return session, case

    # Operations -------------------------------------------------------------------------

    async def tally(self) -> Tally:
        """Counts for monitoring. No principal: they name nobody and no case, and /metrics is
        for the operators (kept off the public network by the proxy)."""
        async with self.store.read() as tx:
            seq, _, _ = await tx.audit_head()
            sessions = await tx.sessions()
        counts = dict.fromkeys((str(state) for state in SessionState), 0)
        for session in sessions:
            counts[str(session.state)] += 1
        return Tally(sessions=counts, audit_events=seq)

    # Documents --------------------------------------------------------------------------

    async def overdue_documents(self, principal: Principal) -> frozenset[str]:
        """The ids of orders the detention center has not acknowledged in time (the judge was
        alerted) and that still wait for it. Court staff only, like the case list."""
        authorize(principal, Action.CASE_READ)
        async with self.store.read() as tx:
            alerted = {item.document_id for item in await tx.items() if item.alerted_at}
            documents = [await tx.document(document_id) for document_id in alerted]
        return frozenset(
            d.id for d in documents if d.state in (DocState.ISSUED, DocState.DELIVERED)
        )

    async def record(
        self,
        kind: AuditKind,
        actor: str,
        *,
        session_id: str | None = None,
        case_id: str | None = None,
        data: dict[str, object] | None = None,
    ) -> None:
        """An audit event of its own (joins, leaves, replacements, refusals)."""
        await self.auditor.log(
            kind, actor, session_id=session_id, case_id=case_id, data=dict(data or {})
        )
