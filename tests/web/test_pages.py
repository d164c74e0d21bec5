"""The HTML pages on the real app: language, form login, the judge's dashboard and its forms,
invite and terminal links, the join page and its consent step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from courtlink.court.hashing import SecretHasher
from courtlink.court.seats import AccountRole, Seat
from courtlink.web.keys import STORE
from courtlink.web.services import Services
from tests.conftest import LiveServer, make_settings, start_server
from tests.helpers import PASSWORD, PIN, World, build_world
from tests.web.support import Node, new_client, parse_html, path_of, services_of

Clients = Callable[..., aiohttp.ClientSession]
VIEWPORT = "width=device-width, initial-scale=1"


async def page(
    client: aiohttp.ClientSession, path: str, status: int = 200, **kwargs: object
) -> tuple[Node, aiohttp.ClientResponse]:
    async with client.get(path, allow_redirects=False, **kwargs) as r:  # type: ignore[arg-type]
        text = await r.text()
        assert r.status == status, text[:2000]
    if status < 300 or status >= 400:
        assert r.content_type == "text/html", r.content_type
        assert "Traceback" not in text
    return parse_html(text), r


async def form_login(client: aiohttp.ClientSession, username: str = "judge") -> str:
    """Log in through the login form; returns the CSRF token shown on the dashboard."""
    data = {"username": username, "password": PASSWORD}
    async with client.post("/login", data=data, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        assert r.headers["Location"] == "/dashboard"
    doc, _ = await page(client, "/dashboard")
    return doc.find("input", name="csrf").attrs["value"]


def cookie_attributes(response: aiohttp.ClientResponse, name: str) -> list[str]:
    [cookie] = [c for c in response.headers.getall("Set-Cookie", []) if c.startswith(name + "=")]
    return [part.strip().lower() for part in cookie.split(";")]


async def consents(server: LiveServer, session_id: str) -> list[object]:
    async with server.app[STORE].read() as tx:
        return list(await tx.consents(session_id))


# Language ---------------------------------------------------------------------------------


async def test_login_page_is_chinese_by_default(server: LiveServer, clients: Clients) -> None:
    doc, r = await page(clients(), "/login")
    html = doc.find("html")
    assert html.attrs["lang"] == "zh-CN"
    form = doc.find("form", action="/login")
    assert form.attrs["method"] == "post"
    text = form.text()
    for label in ("账号", "密码", "登录"):
        assert label in text
    assert doc.find("title").text() == "登录 · 法拘通"
    assert doc.find("meta", name="viewport").attrs["content"] == VIEWPORT
    assert r.headers["Cache-Control"] == "no-store"
    assert not r.headers.getall("Set-Cookie", [])  # the default language sets no cookie
    assert doc.find("a", lang="en").attrs["href"] == "?lang=en"


async def test_english_switch_is_remembered_in_a_cookie(
    server: LiveServer, clients: Clients
) -> None:
    client = clients()
    doc, r = await page(client, "/login?lang=en")
    assert doc.find("html").attrs["lang"] == "en"
    assert "Username" in doc.text()
    assert "Password" in doc.text()
    assert "登录" not in doc.find("main").text()
    assert "cl_lang=en" in cookie_attributes(r, "cl_lang")
    assert "samesite=lax" in cookie_attributes(r, "cl_lang")
    doc, _ = await page(client, "/login")  # the cookie keeps English
    assert doc.find("html").attrs["lang"] == "en"
    assert doc.find("a", lang="zh-CN").attrs["href"] == "?lang=zh-CN"
    doc, _ = await page(client, "/login?lang=zh-CN")
    assert doc.find("html").attrs["lang"] == "zh-CN"


async def test_unknown_language_falls_back_to_chinese(clients: Clients) -> None:
    doc, r = await page(clients(), "/login?lang=fr")
    assert doc.find("html").attrs["lang"] == "zh-CN"
    assert not r.headers.getall("Set-Cookie", [])
    doc, _ = await page(clients(), "/login", cookies={"cl_lang": "<script>"})
    assert doc.find("html").attrs["lang"] == "zh-CN"


# Login form -------------------------------------------------------------------------------


async def test_form_login_redirects_to_the_dashboard(world: World, clients: Clients) -> None:
    client = clients()
    _, r = await page(client, "/", 303)
    assert r.headers["Location"] == "/login"
    async with client.post(
        "/login", data={"username": "judge", "password": PASSWORD}, allow_redirects=False
    ) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/dashboard"
        attributes = cookie_attributes(r, "cl_session")
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    _, r = await page(client, "/", 303)
    assert r.headers["Location"] == "/dashboard"
    doc, _ = await page(client, "/dashboard")
    assert "张法官" in doc.find(cls="who").text()
    assert "执行法官" in doc.find(cls="who").text()


async def test_form_login_wrong_password_shows_the_form_again(
    world: World, clients: Clients
) -> None:
    client = clients()
    async with client.post(
        "/login", data={"username": "judge", "password": "nope"}, allow_redirects=False
    ) as r:
        assert r.status == 401
        assert not r.headers.getall("Set-Cookie", [])
        doc = parse_html(await r.text())
    assert doc.find(cls="alert").text()
    assert doc.find("form", action="/login")
    _, r = await page(client, "/dashboard", 303)
    assert r.headers["Location"] == "/login"


async def test_form_login_from_another_site_is_refused(world: World, clients: Clients) -> None:
    client = clients(Origin="https://evil.example")
    async with client.post(
        "/login", data={"username": "judge", "password": PASSWORD}, allow_redirects=False
    ) as r:
        assert r.status == 403
        assert not r.headers.getall("Set-Cookie", [])


async def test_officer_is_sent_to_the_terminal(
    services: Services, world: World, clients: Clients
) -> None:
    await services.gate.add_account(
        None,
        username="officer-desk",
        display_name="值班警官",
        role=AccountRole.OFFICER,
        password=PASSWORD,
        pin=PIN,
        center="盐城市拘留所",
    )
    client = clients()
    async with client.post(
        "/login", data={"username": "officer-desk", "password": PASSWORD}, allow_redirects=False
    ) as r:
        assert r.status == 303
    doc, _ = await page(client, "/dashboard", 403)
    assert "监管警官请在拘留所终端上操作。" in doc.text()


async def test_logout_form(world: World, clients: Clients) -> None:
    client = clients()
    csrf = await form_login(client)
    async with client.post("/logout", data={"csrf": csrf}, allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/login"
    _, r = await page(client, "/dashboard", 303)
    assert r.headers["Location"] == "/login"


# Dashboard --------------------------------------------------------------------------------


async def test_dashboard_lists_cases_detentions_and_sessions(
    server: LiveServer, services: Services, world: World, clients: Clients
) -> None:
    soon = await services.clerk.create_detention(
        world.me,
        case_id=world.case.id,
        center="南京市拘留所",
        start=datetime.now(UTC) - timedelta(days=13),
        days=15,
    )
    client = clients()
    await form_login(client)
    doc, r = await page(client, "/dashboard")
    assert r.headers["Cache-Control"] == "no-store"
    assert doc.find("meta", name="viewport").attrs["content"] == VIEWPORT
    assert doc.find("html").attrs["lang"] == "zh-CN"

    cases = doc.find("section", id="cases")
    assert "(2021)苏0903执1234号" in cases.text()
    assert "王建国" in cases.text()
    assert "¥356,000.00" in cases.text()  # 35 600 000 fen

    detentions = doc.find("section", id="detentions")
    rows = {
        row.attrs["data-detention"]: row
        for row in detentions.find("tbody").find_all("tr")
        if "data-detention" in row.attrs  # not the judge's order-drafting rows
    }
    fresh, expiring = rows[world.detention.id], rows[soon.id]
    assert "soon" not in fresh.classes
    assert "active" in fresh.classes
    assert fresh.find("td", cls="days-left").text() == "12.0"
    assert "拘留中" in fresh.text()
    assert "即将届满" not in fresh.text()
    assert "soon" in expiring.classes
    assert expiring.find("td", cls="days-left").text() == "2.0 即将届满"
    assert "南京市拘留所" in expiring.text()
    assert "(2021)苏0903执1234号" in expiring.text()

    article = doc.find("article", id=f"session-{world.session.id}")
    assert "已预约" in article.find("span", cls="badge").text()
    assert article.find("a", href=f"/join/{world.session.id}")
    links = article.find_all("li", cls="invite")
    # The judge's own invite is never shown: the judge joins with the account.
    assert sorted(li.attrs["data-seats"] for li in links) == [
        "creditor",
        "debtor",
        "officer",
        "officer,debtor",
    ]
    for li in links:
        qr = li.find("img", cls="qr")
        assert qr.attrs["src"].startswith("data:image/svg+xml")
        url = li.find("input", cls="url").attrs["value"]
        assert url.startswith(services.settings.public_url + "/i/")
        assert (
            li.find("form").attrs["action"] == f"/dashboard/invites/{li_invite(world, li)}/revoke"
        )
    # The printed link works.
    creditor = next(li for li in links if li.attrs["data-seats"] == "creditor")
    url = creditor.find("input", cls="url").attrs["value"]
    _, r = await page(clients(), path_of(url), 303)
    assert r.headers["Location"] == f"/join/{world.session.id}"


def li_invite(world: World, li: Node) -> str:
    seats = tuple(li.attrs["data-seats"].split(","))
    return next(i.id for i in world.invites.values() if tuple(i.seats) == seats)


async def test_dashboard_escapes_what_people_typed(
    services: Services, world: World, clients: Clients
) -> None:
    await services.clerk.create_case(
        world.me,
        number="(2022)苏0903执1号",
        creditor_name="<script>alert(1)</script>",
        debtor_name='"><img src=x onerror=alert(1)>',
        amount_owed_fen=100,
    )
    client = clients()
    await form_login(client)
    async with client.get("/dashboard") as r:
        text = await r.text()
    assert "<script>alert(1)" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_dashboard_of_others_shows_no_invite_links(world: World, clients: Clients) -> None:
    for username in ("judge2", "approver"):
        client = clients()
        await form_login(client, username)
        doc, _ = await page(client, "/dashboard")
        article = doc.find("article", id=f"session-{world.session.id}")
        assert not article.find_all("li", cls="invite")
        assert "/i/" not in str(doc.text())
        async with client.get("/dashboard") as r:
            assert "/i/ey" not in await r.text()
        # Only a judge may create sessions, and only for their own cases.
        if username == "approver":
            assert not doc.find_all("form", id="new-session")
        else:
            assert not doc.find("form", id="new-session").find_all("option")


async def test_dashboard_needs_a_login(clients: Clients) -> None:
    _, r = await page(clients(), "/dashboard", 303)
    assert r.headers["Location"] == "/login"


async def test_create_session_through_the_form_issues_three_invites(
    server: LiveServer, services: Services, world: World, clients: Clients
) -> None:
    client = clients()
    csrf = await form_login(client)
    data = {
        "csrf": csrf,
        "case_id": world.case.id,
        "scheduled_at": "2030-01-02T09:30",
        "recorded": "on",
    }
    async with client.post("/dashboard/sessions", data=data, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        location = r.headers["Location"]
    assert location.startswith("/dashboard#session-")
    session_id = location.split("#session-")[1]
    session, _ = await services.clerk.session(world.me, session_id)
    assert session.recorded is True
    assert session.lobby is False  # the box was not ticked
    # The form's time is China Standard Time.
    assert session.scheduled_at == datetime(2030, 1, 2, 1, 30, tzinfo=UTC)
    invites = await services.clerk.invites(world.me, session_id)
    assert sorted(tuple(i.seats) for i in invites) == [
        (Seat.CREDITOR,),
        (Seat.DEBTOR,),
        (Seat.OFFICER,),
    ]

    doc, _ = await page(client, "/dashboard")
    article = doc.find("article", id=f"session-{session_id}")
    assert "2030-01-02 09:30" in article.find("span", cls="when").text()
    links = article.find_all("li", cls="invite")
    assert sorted(li.attrs["data-seats"] for li in links) == ["creditor", "debtor", "officer"]
    assert all(
        li.find("img", cls="qr").attrs["src"].startswith("data:image/svg+xml") for li in links
    )


async def test_create_session_form_errors(
    server: LiveServer, world: World, clients: Clients
) -> None:
    client = clients()
    csrf = await form_login(client)
    for data, status in (
        ({"csrf": csrf, "case_id": world.case.id, "scheduled_at": "soon"}, 422),
        ({"csrf": csrf, "case_id": "nope"}, 404),
        ({"case_id": world.case.id}, 403),  # no CSRF token
        ({"csrf": "forged", "case_id": world.case.id}, 403),
    ):
        async with client.post("/dashboard/sessions", data=data, allow_redirects=False) as r:
            assert r.status == status, data
            assert r.content_type == "text/html"
            text = await r.text()
        assert "出错了" in text
        assert "Traceback" not in text
    async with server.app[STORE].read() as tx:
        assert len(await tx.sessions()) == 1


async def test_cross_site_form_post_is_refused(
    server: LiveServer, world: World, clients: Clients
) -> None:
    client = clients()
    csrf = await form_login(client)
    evil = {"Origin": "https://evil.example"}
    for path, data in (
        ("/dashboard/sessions", {"csrf": csrf, "case_id": world.case.id}),
        (f"/dashboard/invites/{world.invites['creditor'].id}/revoke", {"csrf": csrf}),
        (f"/dashboard/sessions/{world.session.id}/invites", {"csrf": csrf, "seats": "creditor"}),
        (f"/dashboard/sessions/{world.session.id}/end", {"csrf": csrf}),
    ):
        async with client.post(path, data=data, headers=evil, allow_redirects=False) as r:
            assert r.status == 403, path
            assert "csrf_failed" in await r.text()
    async with server.app[STORE].read() as tx:
        sessions = await tx.sessions()
        invites = await tx.invites(world.session.id)
    assert len(sessions) == 1
    assert sessions[0].ended_at is None
    assert len(invites) == len(world.invites)
    assert not any(i.revoked() for i in invites)
    # The same post from our own origin is accepted.
    own = {"Origin": str(server.url)}
    async with client.post(
        "/dashboard/sessions",
        data={"csrf": csrf, "case_id": world.case.id},
        headers=own,
        allow_redirects=False,
    ) as r:
        assert r.status == 303


async def test_revoke_issue_and_end_through_the_forms(
    server: LiveServer, services: Services, world: World, clients: Clients
) -> None:
    client = clients()
    csrf = await form_login(client)
    invite = world.invites["creditor"]
    async with client.post(
        f"/dashboard/invites/{invite.id}/revoke", data={"csrf": csrf}, allow_redirects=False
    ) as r:
        assert r.status == 303
        assert r.headers["Location"] == f"/dashboard#session-{world.session.id}"
    doc, _ = await page(clients(), f"/i/{world.tokens['creditor']}", 401)
    assert "invite_revoked" in doc.find(cls="code").text()
    doc, _ = await page(client, "/dashboard")
    dead = doc.find("li", data_seats="creditor")
    assert "dead" in dead.classes
    assert "已撤销" in dead.text()
    assert not dead.find_all("img")
    assert not dead.find_all("input")

    path = f"/dashboard/sessions/{world.session.id}/invites"
    async with client.post(
        path, data={"csrf": csrf, "seats": "officer,debtor"}, allow_redirects=False
    ) as r:
        assert r.status == 303
    async with client.post(path, data={"csrf": csrf, "seats": "judge,creditor"}) as r:
        assert r.status == 422
    async with client.post(path, data={"csrf": csrf, "seats": "nobody"}) as r:
        assert r.status == 422
    invites = await services.clerk.invites(world.me, world.session.id)
    assert len(invites) == len(world.invites) + 1

    async with client.post(
        f"/dashboard/sessions/{world.session.id}/end", data={"csrf": csrf}, allow_redirects=False
    ) as r:
        assert r.status == 303
    session, _ = await services.clerk.session(world.me, world.session.id)
    assert session.ended_at is not None
    doc, _ = await page(client, "/dashboard")
    article = doc.find("article", id=f"session-{world.session.id}")
    assert "已结束" in article.text()
    assert not article.find_all("form")


async def test_other_judge_cannot_revoke_through_the_form(
    services: Services, world: World, clients: Clients
) -> None:
    client = clients()
    csrf = await form_login(client, "judge2")
    invite = world.invites["creditor"]
    async with client.post(f"/dashboard/invites/{invite.id}/revoke", data={"csrf": csrf}) as r:
        assert r.status == 403
    assert not any(i.revoked() for i in await services.clerk.invites(world.me, world.session.id))


# Invite and terminal links ----------------------------------------------------------------


async def test_invite_link_is_swapped_for_a_cookie(world: World, clients: Clients) -> None:
    client = clients()
    token = world.tokens["creditor"]
    async with client.get(f"/i/{token}", allow_redirects=False) as r:
        assert r.status == 303
        location = r.headers["Location"]
        attributes = cookie_attributes(r, "cl_invite")
    assert location == f"/join/{world.session.id}"
    assert token not in location
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    max_age = int(next(a for a in attributes if a.startswith("max-age=")).split("=")[1])
    assert 71 * 3600 < max_age <= 72 * 3600  # until the invite expires
    assert next(c.value for c in client.cookie_jar if c.key == "cl_invite") == token
    # The query (e.g. ?autojoin=1) is kept, the token is not.
    async with clients().get(f"/i/{token}?autojoin=1", allow_redirects=False) as r:
        assert r.headers["Location"] == f"/join/{world.session.id}?autojoin=1"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "x" * 3000,
    ],
)
async def test_bad_invite_link_renders_an_error_page(
    world: World, clients: Clients, token: str
) -> None:
    doc, r = await page(clients(), f"/i/{token}", 401)
    assert not r.headers.getall("Set-Cookie", [])
    assert doc.find("html").attrs["lang"] == "zh-CN"
    assert "出错了" in doc.find("h1").text()
    assert doc.find(cls="code").find("code").text() == "invite_invalid"


async def test_forged_signature_is_refused(world: World, clients: Clients) -> None:
    head, payload, _ = world.tokens["creditor"].split(".")
    doc, _ = await page(clients(), f"/i/{head}.{payload}.AAAA", 401)
    assert doc.find("code").text() == "invite_invalid"


async def test_expired_invite_link(tmp_path: Path, fast_hasher: SecretHasher) -> None:
    now = [datetime.now(UTC)]
    live = await start_server(make_settings(tmp_path / "var"), fast_hasher, clock=lambda: now[0])
    try:
        world = await build_world(services_of(live.app))
        now[0] += timedelta(hours=73)  # invites live 72 hours
        async with new_client(live.url) as client:
            doc, r = await page(client, f"/i/{world.tokens['creditor']}", 401)
            assert doc.find("code").text() == "invite_expired"
            assert not r.headers.getall("Set-Cookie", [])
    finally:
        await live.close()


async def test_terminal_link_sets_a_cookie_and_shows_the_kiosk(
    services: Services, world: World, clients: Clients
) -> None:
    terminal, credential = await services.gate.add_terminal(
        None, name="会见室一号终端", center="盐城市拘留所"
    )
    client = clients()
    async with client.get(f"/t/{credential}", allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/terminal"
        attributes = cookie_attributes(r, "cl_terminal")
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    doc, _ = await page(client, "/terminal")
    section = doc.find("section", id="terminal")
    assert section.attrs["data-terminal"] == terminal.id
    assert "会见室一号终端" in section.text()
    assert "盐城市拘留所" in section.text()
    assert "拘留所终端" in doc.find("h1").text()
    assert doc.find("meta", name="viewport").attrs["content"] == VIEWPORT
    assert credential not in str(section.attrs)

    await page(clients(), "/terminal", 401)
    doc, _ = await page(clients(), f"/t/{terminal.id}.wrong", 401)
    assert doc.find("code").text() == "not_authenticated"


# Join page and consent --------------------------------------------------------------------


async def open_invite(client: aiohttp.ClientSession, token: str) -> str:
    async with client.get(f"/i/{token}", allow_redirects=False) as r:
        assert r.status == 303
        return r.headers["Location"]


async def test_join_page_for_a_creditor_asks_for_consent(world: World, clients: Clients) -> None:
    client = clients()
    location = await open_invite(client, world.tokens["creditor"])
    doc, r = await page(client, location)
    assert r.headers["Cache-Control"] == "no-store"
    assert doc.find("meta", name="viewport").attrs["content"] == VIEWPORT
    assert doc.find("dd", cls="case-number").text() == "(2021)苏0903执1234号"
    assert doc.find("dd", cls="your-seats").text() == "申请执行人"
    consent = doc.find("section", id="consent")
    text = consent.text()
    assert "审计日志" in text  # everything is recorded in the audit log
    assert "本次会话不录音录像。" in text
    assert "全程录音录像" not in text
    form = consent.find("form")
    assert form.attrs["action"] == f"/join/{world.session.id}/consent"
    assert form.find("input", name="agree").attrs["type"] == "checkbox"
    assert not form.find_all("input", name="pin")  # no officer needed for a creditor
    assert "我已阅读上述内容，同意在线调解。" in form.text()
    assert not doc.find_all("section", id="room")
    assert not doc.find_all("script")


async def test_join_page_says_when_the_session_is_recorded(
    services: Services, world: World, clients: Clients
) -> None:
    session = await services.clerk.create_session(world.me, case_id=world.case.id, recorded=True)
    issued = await services.clerk.issue_invite(world.me, session_id=session.id, seats=[Seat.DEBTOR])
    client = clients()
    doc, _ = await page(client, await open_invite(client, issued.token))
    text = doc.find("section", id="consent").text()
    assert "本次会话将全程录音录像。" in text
    assert "不录音录像" not in text
    assert doc.find("dd", cls="your-seats").text() == "被执行人"


async def test_consent_is_stored_then_the_room_shows(
    server: LiveServer, world: World, clients: Clients
) -> None:
    client = clients()
    location = await open_invite(client, world.tokens["creditor"])
    consent_path = f"/join/{world.session.id}/consent"
    async with client.post(consent_path, data={}, allow_redirects=False) as r:
        assert r.status == 422  # the box was not ticked
    assert await consents(server, world.session.id) == []

    async with client.post(consent_path, data={"agree": "yes"}, allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == location
    [stored] = await consents(server, world.session.id)
    assert stored.seat is Seat.CREDITOR  # type: ignore[attr-defined]
    assert stored.invite_id == world.invites["creditor"].id  # type: ignore[attr-defined]
    assert stored.recorded is False  # type: ignore[attr-defined]
    assert stored.confirmed_by is None  # type: ignore[attr-defined]
    assert abs(stored.at - datetime.now(UTC)) < timedelta(minutes=1)  # type: ignore[attr-defined]

    doc, _ = await page(client, location)
    assert not doc.find_all("section", id="consent")
    room = doc.find("section", id="room")
    assert room.attrs["data-session"] == world.session.id
    assert room.attrs["data-mode"] == "invite"
    assert room.attrs["data-seats"] == "creditor"
    assert room.find("button", id="join-button").text() == "加入"
    tiles = room.find_all("li", cls="seat-tile")
    assert [t.attrs["data-seat"] for t in tiles] == ["judge", "officer", "debtor", "creditor"]
    scripts = [s.attrs["src"] for s in doc.find_all("script")]
    assert scripts == [
        "/static/vendor/socket.io.min.js",
        "/static/js/media.js",
        "/static/js/documents.js",
        "/static/js/recording.js",
        "/static/js/join.js",
    ]
    # Consenting twice stores nothing new.
    async with client.post(consent_path, data={"agree": "yes"}, allow_redirects=False) as r:
        assert r.status == 303
    assert len(await consents(server, world.session.id)) == 1


async def test_consent_keeps_autojoin(server: LiveServer, world: World, clients: Clients) -> None:
    client = clients()
    location = await open_invite(client, world.tokens["debtor"] + "?autojoin=1")
    assert location.endswith("?autojoin=1")
    doc, _ = await page(client, location)
    action = doc.find("section", id="consent").find("form").attrs["action"]
    assert action == f"/join/{world.session.id}/consent?autojoin=1"
    async with client.post(action, data={"agree": "yes"}, allow_redirects=False) as r:
        assert r.headers["Location"] == location
    doc, _ = await page(client, location)
    assert doc.find("section", id="room").attrs["data-autojoin"] == "yes"


async def test_officer_invite_needs_no_consent(world: World, clients: Clients) -> None:
    client = clients()
    doc, _ = await page(client, await open_invite(client, world.tokens["officer"]))
    assert doc.find("dd", cls="your-seats").text() == "监管警官"
    assert doc.find("section", id="room").attrs["data-seats"] == "officer"


async def test_terminal_invite_consent_needs_the_officer_and_pin(
    server: LiveServer, world: World, clients: Clients
) -> None:
    client = clients()
    location = await open_invite(client, world.tokens["terminal"])
    doc, _ = await page(client, location)
    assert doc.find("dd", cls="your-seats").text() == "监管警官 被执行人"
    form = doc.find("section", id="consent").find("form")
    assert "已向被拘留人告知上述内容，其同意在线调解。" in form.text()
    assert form.find("input", name="officer")
    assert form.find("input", name="pin").attrs["type"] == "password"

    path = f"/join/{world.session.id}/consent"
    for data in (
        {"agree": "yes"},
        {"agree": "yes", "officer": "officer"},
        {"agree": "yes", "officer": "officer", "pin": "000000"},
        {"agree": "yes", "officer": "judge", "pin": PIN},  # not an officer
        {"agree": "yes", "officer": "nobody", "pin": PIN},
    ):
        async with client.post(path, data=data, allow_redirects=False) as r:
            assert r.status == 403, data
            assert r.content_type == "text/html"
            assert "Traceback" not in await r.text()
    assert await consents(server, world.session.id) == []

    data = {"agree": "yes", "officer": "Officer", "pin": PIN}
    async with client.post(path, data=data, allow_redirects=False) as r:
        assert r.status == 303
    [stored] = await consents(server, world.session.id)
    assert stored.seat is Seat.DEBTOR  # type: ignore[attr-defined]
    assert stored.confirmed_by == world.officer.id  # type: ignore[attr-defined]
    doc, _ = await page(client, location)
    assert doc.find("section", id="room").attrs["data-seats"] == "officer,debtor"


async def test_consent_from_another_site_is_refused(
    server: LiveServer, world: World, clients: Clients
) -> None:
    client = clients(Origin="https://evil.example")
    await open_invite(client, world.tokens["creditor"])
    async with client.post(
        f"/join/{world.session.id}/consent", data={"agree": "yes"}, allow_redirects=False
    ) as r:
        assert r.status == 403
    assert await consents(server, world.session.id) == []


async def test_consent_for_another_session_is_refused(
    server: LiveServer, services: Services, world: World, clients: Clients
) -> None:
    other = await services.clerk.create_session(world.me, case_id=world.case.id)
    client = clients()
    await open_invite(client, world.tokens["creditor"])
    async with client.post(
        f"/join/{other.id}/consent", data={"agree": "yes"}, allow_redirects=False
    ) as r:
        assert r.status == 403
    assert await consents(server, other.id) == []
    assert await consents(server, world.session.id) == []


async def test_join_page_for_the_judge_and_for_strangers(world: World, clients: Clients) -> None:
    judge = clients()
    await form_login(judge)
    doc, _ = await page(judge, f"/join/{world.session.id}")
    room = doc.find("section", id="room")
    assert room.attrs["data-mode"] == "account"
    assert room.attrs["data-seats"] == "judge"

    await page(clients(), f"/join/{world.session.id}", 401)
    await page(judge, "/join/unknown", 404)


async def test_join_page_of_an_ended_session(
    services: Services, world: World, clients: Clients
) -> None:
    client = clients()
    location = await open_invite(client, world.tokens["creditor"])
    await services.clerk.end_session(world.me, world.session.id)
    doc, _ = await page(client, location)
    assert "本次会话已结束。" in doc.text()
    assert not doc.find_all("form")
    assert not doc.find_all("script")


async def test_revoked_invite_cookie_stops_working(
    services: Services, world: World, clients: Clients
) -> None:
    client = clients()
    location = await open_invite(client, world.tokens["creditor"])
    await page(client, location)
    await services.clerk.revoke_invite(world.me, world.invites["creditor"].id)
    doc, _ = await page(client, location, 401)
    assert doc.find("code").text() == "invite_revoked"
