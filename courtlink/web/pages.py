"""The HTML pages: login, the judge's dashboard, invite and terminal links, the join page with
its consent step. Jinja2 templates in web/templates, Chinese first (web/i18n.py).

Like the API, the pages ask the Clerk, the Gate and the Registry, which check the policy; the
templates get the views of web/schemas.py, the same ones the API returns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from courtlink.court.consent import CONSENT_SEATS
from courtlink.court.documents.lifecycle import DocAction, DocKind, DocState, Document
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal
from courtlink.court.seats import SEATS, AccountRole, Seat
from courtlink.court.sessions import SessionState
from courtlink.errors import CourtlinkError, Forbidden, InvalidInput, NotAuthenticated
from courtlink.papers.verify import check_copy
from courtlink.web.auth import (
    INVITE_COOKIE,
    SESSION_COOKIE,
    TERMINAL_COOKIE,
    account_principal,
    check_csrf,
    csrf_token,
    invite_principal,
    set_cookie,
)
from courtlink.web.i18n import LANG_COOKIE, LANGS, N_, pick_lang
from courtlink.web.keys import CLERK, GATE, REGISTRY, SEAL, SETTINGS, SIGNALING, TRANSLATOR
from courtlink.web.recordings import case_recordings, install_recording_filters, recording_view
from courtlink.web.schemas import (
    account_out,
    case_out,
    detention_out,
    document_out,
    invite_link_view,
    session_out,
    terminal_out,
)

__all__ = ["add_page_routes"]

# China Standard Time: the zone of every court this serves; form times without a zone are CST.
_CST = timezone(timedelta(hours=8), "CST")


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    lang = pick_lang(request)
    context = {"lang": lang, "path": request.path, "seats_all": SEATS, **context}
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    if "lang" in request.query and request.query["lang"] in LANGS:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="Lax", httponly=True
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def _t(request: web.Request, message: str) -> str:
    return request.app[TRANSLATOR].gettext(pick_lang(request), message)


# What each error means for the person in front of the page (the detail stays in English
# underneath, for whoever they call for help).
_EXPLAIN = {
    "invite_invalid": N_(
        "This link is not valid. Check that it was copied whole, or ask the court for a new one."
    ),
    "invite_expired": N_("This invite link has expired. Ask the court for a new one."),
    "invite_revoked": N_("This invite link was withdrawn by the court."),
    "not_authenticated": N_("Please log in, or open the link you were sent."),
    "forbidden": N_("You may not do this."),
    "not_found": N_("This was not found."),
    "conflict": N_("This cannot be done now."),
    "rate_limited": N_("Too many attempts. Wait a few minutes and try again."),
    "invalid_input": N_("Something in the form is not right."),
}


def error_page(request: web.Request, exc: CourtlinkError) -> web.Response:
    explain = _EXPLAIN.get(exc.code, N_("Something went wrong"))
    return _render(
        request,
        "error.html",
        {"code": exc.code, "message": exc.message, "explain": _t(request, explain)},
        status=exc.status,
    )


def _check_origin(request: web.Request) -> None:
    """Forms are posted only from our own pages (a second fence besides SameSite and CSRF)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        allowed = {request.app[SETTINGS].public_url, f"{request.scheme}://{request.host}"}
        if origin.rstrip("/") not in allowed:
            raise Forbidden("this form was posted from another site", code="csrf_failed")


# Login ----------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    try:
        await account_principal(request)
    except NotAuthenticated:
        raise web.HTTPSeeOther("/login") from None
    raise web.HTTPSeeOther("/dashboard")


async def login_page(request: web.Request) -> web.Response:
    return _render(request, "login.html", {"error": None})


async def login_submit(request: web.Request) -> web.Response:
    try:
        _check_origin(request)
        form = await request.post()
        done = await request.app[GATE].login(
            str(form.get("username", "")),
            str(form.get("password", "")),
            request.remote or "unknown",
        )
    except CourtlinkError as exc:
        return _render(
            request, "login.html", {"error": exc.message, "code": exc.code}, status=exc.status
        )
    response = web.HTTPSeeOther("/dashboard")
    hours = request.app[SETTINGS].security.account_session_hours
    set_cookie(response, request, SESSION_COOKIE, done.token, int(hours * 3600))
    raise response


async def logout_submit(request: web.Request) -> web.Response:
    try:
        principal = await account_principal(request)
        await request.app[GATE].logout(request.cookies[SESSION_COOKIE], principal)
    except CourtlinkError:
        pass
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# Dashboard --------------------------------------------------------------------------------


async def dashboard(request: web.Request) -> web.Response:
    try:
        principal = await account_principal(request)
    except NotAuthenticated:
        raise web.HTTPSeeOther("/login") from None
    clerk = request.app[CLERK]
    settings = request.app[SETTINGS]
    if principal.account.role is AccountRole.OFFICER:
        return _render(
            request,
            "error.html",
            {
                "code": "forbidden",
                "message": "",
                "explain": _t(request, "Officers work at the detention-center terminal."),
            },
            status=403,
        )
    if principal.account.role is AccountRole.CLERK:
        return await _clerk_page(request, principal)
    now = clerk.clock()
    cases = await clerk.cases(principal)
    own = clerk.assigned(principal, cases)
    by_id = {c.id: case_out(c) for c in cases}
    session_rows = []
    for session in await clerk.sessions(principal):
        mine = session.case_id in own
        # The judge's own invite is for the judge's other devices, not to hand out here.
        links = [
            invite_link_view(link, settings.public_url)
            for link in (await clerk.invite_links(principal, session.id) if mine else [])
            if Seat.JUDGE not in link.invite.seats
        ]
        session_rows.append(
            {
                "session": session_out(session),
                "case": by_id.get(session.case_id),
                "mine": mine,
                "links": links,
            }
        )
    soon = settings.detention.expiring_soon_days
    return _render(
        request,
        "dashboard.html",
        {
            "account": account_out(principal.account),
            "csrf": csrf_token(request),
            "cases": list(by_id.values()),
            "cases_by_id": by_id,
            "own": own,
            "detentions": [
                {"d": detention_out(d, now, soon), "mine": d.case_id in own}
                for d in await clerk.detentions(principal)
            ],
            "sessions": session_rows,
            "max_days": settings.detention.max_period_days,
            "documents": await _document_rows(request, principal),
            "recordings": [
                rec
                for case in cases
                if case.id in own
                for rec in await case_recordings(request, principal, case.id)
            ],
        },
    )


# Transcripts (笔录) -------------------------------------------------------------------------

# Sessions that ended longer ago than this leave the clerk's list (their transcripts stay on the
# judge's dashboard and at /sessions/<id>/transcript).
RECENT_DAYS = 7
_SESSION_ORDER = {
    SessionState.LIVE: 0,
    SessionState.OPEN: 1,
    SessionState.SCHEDULED: 2,
    SessionState.ENDED: 3,
}
# Where a transcript is, as its page and the clerk's list say it.
_STAGES = {
    "new": N_("Not started"),
    "drafting": N_("Draft, saved automatically"),
    "frozen": N_("Ready for signatures"),
    "signed": N_("Signed by both parties; waiting for the judge to confirm"),
    "issued": N_("Confirmed and sealed by the court"),
}
_STAGE_NOTICES = {
    "frozen": N_("A party has signed: the text can no longer be changed."),
    "signed": N_("Both parties have signed; the judge confirms the transcript on the dashboard."),
    "issued": N_("The judge has confirmed the transcript; the sealed PDF went to the parties."),
}


def _signed(document: Document | None) -> dict[str, str]:
    """Who signed a document, by seat, and when (from its steps)."""
    if document is None:
        return {}
    return {
        str(step["data"]["seat"]): str(step["at"])
        for step in document.steps
        if step["action"] == str(DocAction.SIGN) and step.get("data", {}).get("seat")
    }


def _stage(document: Document | None) -> str:
    """new (nothing saved yet), drafting, frozen (a party signed), signed (both), issued."""
    if document is None:
        return "new"
    if document.state is DocState.ISSUED:
        return "issued"
    if document.state is DocState.SIGNED:
        return "signed"
    return "frozen" if _signed(document) else "drafting"


async def _transcripts(
    request: web.Request, principal: AccountPrincipal, case_ids: list[str]
) -> dict[str, Document]:
    """The transcripts of these cases' sessions, by session id."""
    if not case_ids:
        return {}
    documents = await request.app[REGISTRY].documents(principal, case_ids)
    return {
        str(d.fields["session_id"]): d
        for d in documents
        if d.kind is DocKind.TRANSCRIPT and isinstance(d.fields.get("session_id"), str)
    }


async def _clerk_page(request: web.Request, principal: AccountPrincipal) -> web.Response:
    """The clerk's landing page: the live and recent sessions of the court's cases, each with
    its transcript's stage and a link to write it."""
    clerk = request.app[CLERK]
    court = principal.account.court
    cases = {c.id: c for c in await clerk.cases(principal) if not court or c.court == court}
    since = clerk.clock() - timedelta(days=RECENT_DAYS)
    sessions = [
        s
        for s in await clerk.sessions(principal)
        if s.case_id in cases and (s.ended_at is None or s.ended_at >= since)
    ]
    sessions.sort(
        key=lambda s: (
            _SESSION_ORDER.get(s.state, 9),
            -(s.ended_at or s.scheduled_at).timestamp()
            if s.state is SessionState.ENDED
            else s.scheduled_at.timestamp(),
        )
    )
    transcripts = await _transcripts(request, principal, list(cases))
    rows = []
    for session in sessions:
        document = transcripts.get(session.id)
        stage = _stage(document)
        rows.append(
            {
                "session": session_out(session),
                "case": case_out(cases[session.case_id]),
                "stage": stage,
                "stage_label": _t(request, _STAGES[stage]),
                "number": document.number if document else "",
            }
        )
    return _render(
        request,
        "clerk.html",
        {
            "account": account_out(principal.account),
            "csrf": csrf_token(request),
            "sessions": rows,
        },
    )


async def transcript_page(request: web.Request) -> web.Response:
    """A session's transcript: the clerk (or the case's judge) types it, the browser saves it
    through the API (transcript.js); once a party signed, it is read-only."""
    try:
        principal = await account_principal(request)
    except NotAuthenticated:
        raise web.HTTPSeeOther("/login") from None
    clerk = request.app[CLERK]
    try:
        session, case = await clerk.session(principal, request.match_info["session_id"])
        # Who writes transcripts (lifecycle.RIGHTS: the clerk, the case's judge) may open
        # this page; the Registry checks again on every save.
        if principal.account.role is not AccountRole.CLERK and not clerk.assigned(
            principal, [case]
        ):
            raise Forbidden("only a clerk or the case's judge writes its transcript")
        document = (await _transcripts(request, principal, [case.id])).get(session.id)
        stage = _stage(document)
        editable = stage in ("new", "drafting")
        if document is not None and editable:
            offered = await request.app[REGISTRY].actions(principal, [document], (DocAction.SAVE,))
            editable = DocAction.SAVE in offered[document.id]
    except CourtlinkError as exc:
        return error_page(request, exc)
    notice = _STAGE_NOTICES.get(stage)
    return _render(
        request,
        "transcript.html",
        {
            "account": account_out(principal.account),
            "csrf": csrf_token(request),
            "session": session_out(session),
            "case": case_out(case),
            "document": document_out(document) if document else None,
            "text": str(document.fields.get("text", "")) if document else "",
            "stage": stage,
            "stage_label": _t(request, _STAGES[stage]),
            "frozen_text": _t(request, notice) if notice else "",
            "editable": editable,
            "signed": _signed(document),
            "recording_live": session.recorded and session.state is not SessionState.ENDED,
        },
    )


async def _document_rows(request: web.Request, principal: AccountPrincipal) -> list[dict[str, Any]]:
    """The dashboard's documents: orders, agreements and payments, each with its receipts and
    the buttons this account may press (the Registry checks again when one is pressed)."""
    registry = request.app[REGISTRY]
    documents = await registry.documents(principal)
    offered = await registry.actions(
        principal, documents, (DocAction.APPROVE, DocAction.ISSUE, DocAction.CONFIRM)
    )
    overdue = await request.app[CLERK].overdue_documents(principal)
    receipts: dict[str, list[Document]] = {}
    for document in documents:
        if document.parent_id is not None:
            receipts.setdefault(document.parent_id, []).append(document)
    rows = []
    for document in documents:
        if document.kind in (DocKind.RECEIPT, DocKind.UPLOAD) and document.parent_id is not None:
            continue
        rows.append(
            {
                "document": document_out(document),
                "receipts": [
                    document_out(r)
                    for r in sorted(receipts.get(document.id, []), key=lambda r: r.created_at)
                ],
                "overdue": document.id in overdue,
                "can_approve": DocAction.APPROVE in offered[document.id],
                "can_issue": DocAction.ISSUE in offered[document.id],
                "can_confirm": DocAction.CONFIRM in offered[document.id],
            }
        )
    return rows


async def documents_fragment(request: web.Request) -> web.Response:
    """The documents section alone, for the dashboard's live refresh."""
    try:
        principal = await account_principal(request)
    except NotAuthenticated:
        raise web.HTTPUnauthorized() from None
    clerk = request.app[CLERK]
    cases = await clerk.cases(principal)
    return _render(
        request,
        "_documents.html",
        {
            "documents": await _document_rows(request, principal),
            "cases_by_id": {c.id: case_out(c) for c in cases},
            "csrf": csrf_token(request),
        },
    )


async def _form_action(request: web.Request) -> tuple[AccountPrincipal, Any]:
    principal = await account_principal(request, csrf=False)
    _check_origin(request)
    form = await request.post()
    await check_csrf(request, csrf_token(request))
    return principal, form


async def create_session_submit(request: web.Request) -> web.Response:
    try:
        principal, form = await _form_action(request)
        clerk = request.app[CLERK]
        when_raw = str(form.get("scheduled_at", "")).strip()
        scheduled = None
        if when_raw:
            try:
                # The form's local time is China Standard Time (UTC+8), the courts' zone.
                scheduled = datetime.fromisoformat(when_raw)
            except ValueError:
                raise InvalidInput("scheduled time is not a date and time") from None
            if scheduled.tzinfo is None:
                scheduled = scheduled.replace(tzinfo=_CST)
        session = await clerk.create_session(
            principal,
            case_id=str(form.get("case_id", "")),
            scheduled_at=scheduled,
            lobby=form.get("lobby") == "on",
            recorded=form.get("recorded") == "on",
        )
        for seat in (Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR):
            await clerk.issue_invite(principal, session_id=session.id, seats=[seat])
    except CourtlinkError as exc:
        return error_page(request, exc)
    raise web.HTTPSeeOther(f"/dashboard#session-{session.id}")


async def issue_invite_submit(request: web.Request) -> web.Response:
    try:
        principal, form = await _form_action(request)
        raw = str(form.get("seats", ""))
        try:
            seats = [Seat(s) for s in raw.split(",") if s]
        except ValueError:
            raise InvalidInput("unknown seat") from None
        session_id = request.match_info["session_id"]
        await request.app[CLERK].issue_invite(principal, session_id=session_id, seats=seats)
    except CourtlinkError as exc:
        return error_page(request, exc)
    raise web.HTTPSeeOther(f"/dashboard#session-{session_id}")


async def revoke_invite_submit(request: web.Request) -> web.Response:
    try:
        principal, _ = await _form_action(request)
        invite = await request.app[CLERK].revoke_invite(principal, request.match_info["invite_id"])
        await request.app[SIGNALING].invite_revoked(invite.session_id, invite.id)
    except CourtlinkError as exc:
        return error_page(request, exc)
    raise web.HTTPSeeOther(f"/dashboard#session-{invite.session_id}")


async def end_session_submit(request: web.Request) -> web.Response:
    try:
        principal, _ = await _form_action(request)
        session = await request.app[CLERK].end_session(principal, request.match_info["session_id"])
        await request.app[SIGNALING].end_session(session.id)
    except CourtlinkError as exc:
        return error_page(request, exc)
    raise web.HTTPSeeOther(f"/dashboard#session-{session.id}")


# Invite and terminal links ----------------------------------------------------------------


async def open_invite(request: web.Request) -> web.Response:
    """Swap the token in the link for an HttpOnly cookie and send the browser to a clean URL,
    so the token is in neither the history nor any access log (web/logs.py redacts it)."""
    token = request.match_info["token"]
    try:
        claims = await request.app[CLERK].open_invite(token)
    except CourtlinkError as exc:
        return error_page(request, exc)
    query = "?" + request.query_string if request.query_string else ""
    response = web.HTTPSeeOther(f"/join/{claims.session_id}{query}")
    max_age = max(60, int((claims.expires_at - request.app[CLERK].clock()).total_seconds()))
    set_cookie(response, request, INVITE_COOKIE, token, max_age)
    raise response


async def open_terminal(request: web.Request) -> web.Response:
    credential = request.match_info["credential"]
    try:
        await request.app[GATE].terminal_for(credential)
    except CourtlinkError as exc:
        return error_page(request, exc)
    response = web.HTTPSeeOther("/terminal")
    set_cookie(response, request, TERMINAL_COOKIE, credential, 365 * 86400)
    raise response


async def terminal_page(request: web.Request) -> web.Response:
    credential = request.cookies.get(TERMINAL_COOKIE, "")
    try:
        principal = await request.app[GATE].terminal_for(credential)
    except CourtlinkError as exc:
        return error_page(request, exc)
    return _render(request, "terminal.html", {"terminal": terminal_out(principal.terminal)})


# Join and consent -------------------------------------------------------------------------


async def _join_principal(request: web.Request, session_id: str) -> Principal:
    """The invite if it is for this session, else the logged-in account."""
    if request.cookies.get(INVITE_COOKIE):
        try:
            principal = await invite_principal(request)
            if principal.claims.session_id == session_id:
                return principal
        except NotAuthenticated:
            if not request.cookies.get(SESSION_COOKIE):
                raise
    return await account_principal(request)


async def join_page(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    try:
        principal = await _join_principal(request, session_id)
        seating = await request.app[CLERK].seating(principal, session_id)
    except CourtlinkError as exc:
        return error_page(request, exc)
    seats = list(seating.seats)
    return _render(
        request,
        "join.html",
        {
            "session": session_out(seating.session),
            "case": case_out(seating.case),
            "seats": seats,
            "pending": list(seating.consent_pending),
            "terminal": Seat.OFFICER in seats and Seat.DEBTOR in seats,
            "mode": "invite" if isinstance(principal, InvitePrincipal) else "account",
            "ended": seating.session.state is SessionState.ENDED,
            # The badge from the render; the `recording` event keeps it true (recording.js).
            "recording_live": seating.session.recorded
            and seating.session.state is not SessionState.ENDED,
            "autojoin": request.query.get("autojoin") == "1",
            "consent_seats": CONSENT_SEATS,
        },
    )


async def consent_submit(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    try:
        _check_origin(request)
        principal = await invite_principal(request)
        if principal.claims.session_id != session_id:
            raise Forbidden("this invite is for another session")
        form = await request.post()
        if form.get("agree") != "yes":
            raise InvalidInput("tick the box to agree, or close this page")
        await request.app[CLERK].give_consent(
            principal,
            officer_username=str(form.get("officer", "")) or None,
            officer_pin=str(form.get("pin", "")) or None,
        )
    except CourtlinkError as exc:
        return error_page(request, exc)
    query = "?" + request.query_string if request.query_string else ""
    raise web.HTTPSeeOther(f"/join/{session_id}{query}")


# Recordings ---------------------------------------------------------------------------------


async def playback_page(request: web.Request) -> web.Response:
    """The case's judge plays a recorded session back: four seats side by side, in step."""
    try:
        principal = await account_principal(request)
    except NotAuthenticated:
        raise web.HTTPSeeOther("/login") from None
    try:
        rec = await recording_view(request, principal)
    except CourtlinkError as exc:
        return error_page(request, exc)
    return _render(request, "recording.html", {"rec": rec})


# Verification ------------------------------------------------------------------------------


async def _verify_context(request: web.Request, document_id: str) -> dict[str, Any]:
    registry = request.app[REGISTRY]
    document = await registry.find(document_id)
    stored = None
    if document.sha256 is not None and document.signed_by is not None:
        stored = await check_copy(
            request.app[SEAL], await registry.files.get(document.id), registry, document.id
        )
    return {"document": document_out(document), "stored": stored, "check": None}


async def verify_page(request: web.Request) -> web.Response:
    """Public: anyone holding a document (or its QR code) can check it is genuine."""
    try:
        context = await _verify_context(request, request.match_info["document_id"])
    except CourtlinkError as exc:
        return error_page(request, exc)
    return _render(request, "verify.html", context)


async def verify_submit(request: web.Request) -> web.Response:
    document_id = request.match_info["document_id"]
    try:
        context = await _verify_context(request, document_id)
        reader = await request.multipart()
        part = await reader.next()
        if part is None or getattr(part, "name", None) != "file":
            raise InvalidInput("choose a PDF file")
        data = bytearray()
        while chunk := await part.read_chunk(256 * 1024):  # type: ignore[union-attr]
            data += chunk
            if len(data) > request.app[SETTINGS].documents.max_upload_mb * 1024 * 1024:
                raise InvalidInput("the file is too large to be a Courtlink document")
        context["check"] = await check_copy(
            request.app[SEAL], bytes(data), request.app[REGISTRY], document_id
        )
    except CourtlinkError as exc:
        return error_page(request, exc)
    return _render(request, "verify.html", context)


def add_page_routes(app: web.Application) -> None:
    install_recording_filters(aiohttp_jinja2.get_env(app))
    r = app.router
    r.add_get("/", index)
    r.add_get("/login", login_page)
    r.add_post("/login", login_submit)
    r.add_post("/logout", logout_submit)
    r.add_get("/dashboard", dashboard)
    r.add_get("/dashboard/documents", documents_fragment)
    r.add_post("/dashboard/sessions", create_session_submit)
    r.add_post("/dashboard/sessions/{session_id}/invites", issue_invite_submit)
    r.add_post("/dashboard/sessions/{session_id}/end", end_session_submit)
    r.add_post("/dashboard/invites/{invite_id}/revoke", revoke_invite_submit)
    r.add_get("/i/{token}", open_invite)
    r.add_get("/t/{credential}", open_terminal)
    r.add_get("/terminal", terminal_page)
    r.add_get("/join/{session_id}", join_page)
    r.add_post("/join/{session_id}/consent", consent_submit)
    r.add_get("/sessions/{session_id}/recording", playback_page)
    r.add_get("/sessions/{session_id}/transcript", transcript_page)
    r.add_get("/verify/{document_id}", verify_page)
    r.add_post("/verify/{document_id}", verify_submit)
