"""The HTTP API under /api. Every handler asks the Clerk or the Gate, which check the role
policy; this module only translates between HTTP and the domain."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from courtlink.court.detentions import Detention
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, TerminalPrincipal
from courtlink.web.auth import (
    SESSION_COOKIE,
    account_principal,
    any_principal,
    csrf_token,
    set_cookie,
)
from courtlink.web.documents_api import add_document_routes
from courtlink.web.keys import CLERK, GATE, SETTINGS, SIGNALING
from courtlink.web.openapi import Api
from courtlink.web.recordings import add_recording_routes
from courtlink.web.schemas import (
    AccountIn,
    AccountOut,
    CaseIn,
    CaseOut,
    DetentionIn,
    DetentionOut,
    InviteIn,
    InviteOut,
    IssuedInviteOut,
    IssuedTerminalOut,
    LoginIn,
    MeOut,
    SessionIn,
    SessionOut,
    TerminalIn,
    TerminalOut,
    account_out,
    case_out,
    detention_out,
    invite_out,
    session_out,
    terminal_out,
)

__all__ = ["build_api", "invite_url"]


def invite_url(request: web.Request, token: str) -> str:
    return f"{request.app[SETTINGS].public_url}/i/{token}"


# Logins ---------------------------------------------------------------------------------


async def login(request: web.Request, body: LoginIn) -> web.Response:
    done = await request.app[GATE].login(body.username, body.password, request.remote or "unknown")
    response = web.json_response(
        MeOut(kind="account", account=account_out(done.account), csrf=done.csrf).model_dump(
            mode="json"
        )
    )
    hours = request.app[SETTINGS].security.account_session_hours
    set_cookie(response, request, SESSION_COOKIE, done.token, int(hours * 3600))
    return response


async def logout(request: web.Request, _body: None) -> web.Response:
    principal = await account_principal(request)
    await request.app[GATE].logout(request.cookies[SESSION_COOKIE], principal)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request, _body: None) -> MeOut:
    principal = await any_principal(request)
    match principal:
        case AccountPrincipal(account=account):
            return MeOut(kind="account", account=account_out(account), csrf=csrf_token(request))
        case InvitePrincipal(claims=claims):
            return MeOut(kind="invite", session=claims.session_id, seats=list(claims.seats))
        case TerminalPrincipal():
            return MeOut(kind="terminal")
    raise AssertionError("unreachable")  # pragma: no cover


# Cases and detentions ---------------------------------------------------------------------


async def list_cases(request: web.Request, _body: None) -> list[CaseOut]:
    principal = await account_principal(request)
    return [case_out(c) for c in await request.app[CLERK].cases(principal)]


async def create_case(request: web.Request, body: CaseIn) -> CaseOut:
    principal = await account_principal(request)
    case = await request.app[CLERK].create_case(principal, **body.model_dump())
    return case_out(case)


async def get_case(request: web.Request, _body: None) -> CaseOut:
    principal = await account_principal(request)
    return case_out(await request.app[CLERK].case(principal, request.match_info["case_id"]))


def _detention_out(request: web.Request, detentions: list[Detention]) -> list[DetentionOut]:
    soon = request.app[SETTINGS].detention.expiring_soon_days
    now = request.app[CLERK].clock()
    return [detention_out(d, now, soon) for d in detentions]


async def list_detentions(request: web.Request, _body: None) -> list[DetentionOut]:
    principal = await account_principal(request)
    return _detention_out(request, await request.app[CLERK].detentions(principal))


async def create_detention(request: web.Request, body: DetentionIn) -> DetentionOut:
    principal = await account_principal(request)
    detention = await request.app[CLERK].create_detention(principal, **body.model_dump())
    return _detention_out(request, [detention])[0]


async def get_detention(request: web.Request, _body: None) -> DetentionOut:
    principal = await account_principal(request)
    wanted = request.match_info["detention_id"]
    for detention in await request.app[CLERK].detentions(principal):
        if detention.id == wanted:
            return _detention_out(request, [detention])[0]
    raise web.HTTPNotFound(reason="no such detention")


# Sessions and invites -----------------------------------------------------------------------


async def list_sessions(request: web.Request, _body: None) -> list[SessionOut]:
    principal = await account_principal(request)
    return [session_out(s) for s in await request.app[CLERK].sessions(principal)]


async def create_session(request: web.Request, body: SessionIn) -> SessionOut:
    principal = await account_principal(request)
    return session_out(await request.app[CLERK].create_session(principal, **body.model_dump()))


async def get_session(request: web.Request, _body: None) -> SessionOut:
    principal = await any_principal(request)
    session, _ = await request.app[CLERK].session(principal, request.match_info["session_id"])
    return session_out(session)


async def end_session(request: web.Request, _body: None) -> SessionOut:
    principal = await account_principal(request)
    session = await request.app[CLERK].end_session(principal, request.match_info["session_id"])
    await request.app[SIGNALING].end_session(session.id)
    return session_out(session)


async def list_invites(request: web.Request, _body: None) -> list[InviteOut]:
    principal = await account_principal(request)
    return [
        invite_out(i)
        for i in await request.app[CLERK].invites(principal, request.match_info["session_id"])
    ]


async def issue_invite(request: web.Request, body: InviteIn) -> IssuedInviteOut:
    principal = await account_principal(request)
    issued = await request.app[CLERK].issue_invite(
        principal,
        session_id=request.match_info["session_id"],
        seats=body.seats,
        ttl_hours=body.ttl_hours,
        label=body.label,
    )
    return IssuedInviteOut(invite=invite_out(issued.invite), url=invite_url(request, issued.token))


async def revoke_invite(request: web.Request, _body: None) -> InviteOut:
    principal = await account_principal(request)
    invite = await request.app[CLERK].revoke_invite(principal, request.match_info["invite_id"])
    await request.app[SIGNALING].invite_revoked(invite.session_id, invite.id)
    return invite_out(invite)


# Terminals and accounts ---------------------------------------------------------------------


async def list_terminals(request: web.Request, _body: None) -> list[TerminalOut]:
    principal = await account_principal(request)
    return [terminal_out(t) for t in await request.app[GATE].terminals(principal)]


async def create_terminal(request: web.Request, body: TerminalIn) -> IssuedTerminalOut:
    principal = await account_principal(request)
    terminal, credential = await request.app[GATE].add_terminal(
        principal, name=body.name, center=body.center
    )
    return IssuedTerminalOut(terminal=terminal_out(terminal), credential=credential)


async def list_accounts(request: web.Request, _body: None) -> list[AccountOut]:
    principal = await account_principal(request)
    return [account_out(a) for a in await request.app[GATE].accounts(principal)]


async def create_account(request: web.Request, body: AccountIn) -> AccountOut:
    principal = await account_principal(request)
    account = await request.app[GATE].add_account(principal, **body.model_dump())
    return account_out(account)


async def openapi(request: web.Request, _body: None) -> dict[str, Any]:
    return request.app[API].document()


API = web.AppKey("api", Api)


def build_api(version: str) -> Api:
    api = Api("Courtlink", version)
    add = api.add
    add(
        "POST",
        "/api/login",
        login,
        summary="Log in with username and password",
        body=LoginIn,
        response=MeOut,
        auth="none",
        tag="accounts",
    )
    add("POST", "/api/logout", logout, summary="End this login", status=204, tag="accounts")
    add(
        "GET",
        "/api/me",
        me,
        summary="Who this request is from",
        response=MeOut,
        auth="any",
        tag="accounts",
    )
    add("GET", "/api/cases", list_cases, summary="List cases", response=list[CaseOut], tag="cases")
    add(
        "POST",
        "/api/cases",
        create_case,
        summary="Create a case (judges)",
        body=CaseIn,
        response=CaseOut,
        status=201,
        tag="cases",
    )
    add("GET", "/api/cases/{case_id}", get_case, summary="One case", response=CaseOut, tag="cases")
    add(
        "GET",
        "/api/detentions",
        list_detentions,
        summary="List detentions",
        response=list[DetentionOut],
        tag="detentions",
    )
    add(
        "POST",
        "/api/detentions",
        create_detention,
        summary="Record a detention (the case's judge)",
        body=DetentionIn,
        response=DetentionOut,
        status=201,
        tag="detentions",
    )
    add(
        "GET",
        "/api/detentions/{detention_id}",
        get_detention,
        summary="One detention",
        response=DetentionOut,
        tag="detentions",
    )
    add(
        "GET",
        "/api/sessions",
        list_sessions,
        summary="List sessions",
        response=list[SessionOut],
        tag="sessions",
    )
    add(
        "POST",
        "/api/sessions",
        create_session,
        summary="Create a session (the case's judge)",
        body=SessionIn,
        response=SessionOut,
        status=201,
        tag="sessions",
    )
    add(
        "GET",
        "/api/sessions/{session_id}",
        get_session,
        summary="One session",
        response=SessionOut,
        auth="any",
        tag="sessions",
    )
    add(
        "POST",
        "/api/sessions/{session_id}/end",
        end_session,
        summary="End a session for everyone (the case's judge)",
        response=SessionOut,
        tag="sessions",
    )
    add(
        "GET",
        "/api/sessions/{session_id}/invites",
        list_invites,
        summary="Invites of a session",
        response=list[InviteOut],
        tag="invites",
    )
    add(
        "POST",
        "/api/sessions/{session_id}/invites",
        issue_invite,
        summary="Issue an invite for seats of a session",
        body=InviteIn,
        response=IssuedInviteOut,
        status=201,
        tag="invites",
    )
    add(
        "DELETE",
        "/api/invites/{invite_id}",
        revoke_invite,
        summary="Revoke an invite; its holder is disconnected",
        response=InviteOut,
        tag="invites",
    )
    add(
        "GET",
        "/api/terminals",
        list_terminals,
        summary="List terminals (administrators)",
        response=list[TerminalOut],
        tag="terminals",
    )
    add(
        "POST",
        "/api/terminals",
        create_terminal,
        summary="Register a terminal (administrators)",
        body=TerminalIn,
        response=IssuedTerminalOut,
        status=201,
        tag="terminals",
    )
    add(
        "GET",
        "/api/accounts",
        list_accounts,
        summary="List accounts (administrators)",
        response=list[AccountOut],
        tag="accounts",
    )
    add(
        "POST",
        "/api/accounts",
        create_account,
        summary="Create an account (administrators)",
        body=AccountIn,
        response=AccountOut,
        status=201,
        tag="accounts",
    )
    add_document_routes(api)
    add_recording_routes(api)
    add("GET", "/api/openapi.json", openapi, summary="This document", auth="none", tag="meta")
    return api
