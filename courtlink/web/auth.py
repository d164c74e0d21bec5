"""Who is making an HTTP request or opening a Socket.IO connection, from cookies.

Cookies: ``cl_session`` (an account's login), ``cl_invite`` (an invite token swapped from the
invite link), ``cl_terminal`` (a terminal's device credential). All HttpOnly, SameSite=Lax,
Secure when the public URL is https. Unsafe requests made with an account's cookie must carry
the login's CSRF token in ``X-CSRF-Token`` (or a ``csrf`` form field).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from courtlink.court.hashing import constant_time_equal
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal
from courtlink.errors import CourtlinkError, Forbidden, InvalidInput, NotAuthenticated
from courtlink.web.keys import CLERK, GATE, SETTINGS

__all__ = [
    "INVITE_COOKIE",
    "SESSION_COOKIE",
    "TERMINAL_COOKIE",
    "account_principal",
    "any_principal",
    "check_csrf",
    "invite_principal",
    "set_cookie",
    "socket_authenticator",
]

SESSION_COOKIE = "cl_session"
INVITE_COOKIE = "cl_invite"
TERMINAL_COOKIE = "cl_terminal"
CSRF_KEY = web.RequestKey("csrf", str)
ACCOUNT_KEY = web.RequestKey("account", AccountPrincipal)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].secure_cookies,
    )


async def account_principal(request: web.Request, *, csrf: bool = True) -> AccountPrincipal:
    """The logged-in account; checks CSRF on unsafe methods. NotAuthenticated otherwise.
    Looked up once per request (the API checks it before reading the body)."""
    if ACCOUNT_KEY in request:
        principal, expected = request[ACCOUNT_KEY], request[CSRF_KEY]
        if csrf and request.method not in SAFE_METHODS:
            await check_csrf(request, expected)
        return principal
    token = request.cookies.get(SESSION_COOKIE, "")
    found = await request.app[GATE].account_for(token) if token else None
    if found is None:
        raise NotAuthenticated("log in first")
    principal, expected = found
    request[CSRF_KEY] = expected
    request[ACCOUNT_KEY] = principal
    if csrf and request.method not in SAFE_METHODS:
        await check_csrf(request, expected)
    return principal


async def check_csrf(request: web.Request, expected: str) -> None:
    given = request.headers.get("X-CSRF-Token", "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        given = str((await request.post()).get("csrf", ""))
    if not given or not constant_time_equal(given, expected):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")


def csrf_token(request: web.Request) -> str:
    return str(request.get(CSRF_KEY, ""))


async def invite_principal(request: web.Request) -> InvitePrincipal:
    token = request.cookies.get(INVITE_COOKIE, "")
    if not token:
        raise NotAuthenticated("open your invite link first")
    return InvitePrincipal(await request.app[CLERK].check_invite(token))


async def any_principal(request: web.Request) -> Principal:
    """Account first, then invite, then terminal."""
    try:
        return await account_principal(request)
    except NotAuthenticated:
        pass
    if request.cookies.get(INVITE_COOKIE):
        return await invite_principal(request)
    credential = request.cookies.get(TERMINAL_COOKIE, "")
    if credential:
        return await request.app[GATE].terminal_for(credential)
    raise NotAuthenticated("log in or open your invite link first")


def socket_authenticator(app: web.Application) -> Any:
    """The ``authenticate`` callable for the signaling server.

    ``auth`` may name what to connect as: ``{"invite": token}``, ``{"terminal": credential}``,
    or ``{"as": "account" | "invite" | "terminal"}`` to choose among cookies. Without it the
    invite cookie wins over the account cookie, which wins over the terminal cookie.
    """

    async def authenticate(environ: Mapping[str, Any], auth: Any) -> Principal:
        request: web.Request = environ["aiohttp.request"]
        cookies = request.cookies
        if auth is not None and not isinstance(auth, dict):
            raise InvalidInput("auth must be an object")
        auth = auth or {}
        if set(auth) - {"invite", "terminal", "as"}:
            raise InvalidInput("auth: unknown field")
        if isinstance(auth.get("invite"), str):
            return InvitePrincipal(await app[CLERK].check_invite(auth["invite"]))
        if isinstance(auth.get("terminal"), str):
            return await app[GATE].terminal_for(auth["terminal"])
        wanted = auth.get("as")
        order = (
            [wanted]
            if wanted in ("account", "invite", "terminal")
            else ["invite", "account", "terminal"]
        )
        last: CourtlinkError = NotAuthenticated("log in or open your invite link first")
        for kind in order:
            try:
                if kind == "invite" and cookies.get(INVITE_COOKIE):
                    return InvitePrincipal(await app[CLERK].check_invite(cookies[INVITE_COOKIE]))
                if kind == "account" and cookies.get(SESSION_COOKIE):
                    found = await app[GATE].account_for(cookies[SESSION_COOKIE])
                    if found is not None:
                        return found[0]
                    last = NotAuthenticated("your login has expired; log in again")
                if kind == "terminal" and cookies.get(TERMINAL_COOKIE):
                    return await app[GATE].terminal_for(cookies[TERMINAL_COOKIE])
            except CourtlinkError as exc:
                last = exc
        raise last

    return authenticate
