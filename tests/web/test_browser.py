"""End to end in real Chromium: the judge's dashboard and a creditor joining from a phone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from courtlink.web.keys import STORE
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, World
from tests.web.browser_support import PHONE
from tests.web.support import path_of

pytestmark = pytest.mark.browser


async def test_judge_creates_a_session_and_a_creditor_joins_from_a_phone(
    server: LiveServer, world: World, new_context: Callable[..., Awaitable[Any]]
) -> None:
    desk = await new_context(viewport={"width": 1280, "height": 900})
    judge = await desk.new_page()
    errors: list[str] = []
    judge.on("pageerror", lambda exc: errors.append(str(exc)))

    # Log in through the form; the pages are in Chinese.
    await judge.goto(f"{server.url}/login")
    assert await judge.get_attribute("html", "lang") == "zh-CN"
    await judge.fill("input[name=username]", "judge")
    await judge.fill("input[name=password]", PASSWORD)
    await judge.click("form[action='/login'] button[type=submit]")
    await judge.wait_for_url(f"{server.url}/dashboard")
    assert await judge.text_content("h1") == "工作台"
    assert "(2021)苏0903执1234号" in await judge.text_content("#cases")

    # Create a session; the browser lands on its card with three invite links and QR codes.
    await judge.click("#new-session button[type=submit]")
    await judge.wait_for_url("**/dashboard#session-*")
    session_id = judge.url.rsplit("#session-", 1)[1]
    card = judge.locator(f"#session-{session_id}")
    await card.wait_for()
    invites = card.locator("li.invite")
    assert await invites.count() == 3
    assert sorted([await invites.nth(i).get_attribute("data-seats") for i in range(3)]) == [
        "creditor",
        "debtor",
        "officer",
    ]
    for i in range(3):
        qr = invites.nth(i).locator("img.qr")
        assert (await qr.get_attribute("src") or "").startswith("data:image/svg+xml")
        # The QR image really rendered (the CSP allows data: images).
        assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    link = await card.locator("li.invite[data-seats=creditor] input.url").input_value()
    assert "/i/" in link

    # A creditor on a phone opens the link, agrees, and takes the seat.
    phone = await new_context(**PHONE)
    creditor = await phone.new_page()
    creditor.on("pageerror", lambda exc: errors.append(str(exc)))
    await creditor.goto(server.url + path_of(link))
    await creditor.wait_for_url(f"{server.url}/join/{session_id}")
    assert "/i/" not in creditor.url  # the token left the address bar
    assert await creditor.text_content(".case-number") == "(2021)苏0903执1234号"
    assert await creditor.text_content(".your-seats") == "申请执行人"
    consent = creditor.locator("#consent")
    await consent.wait_for()
    width = await creditor.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the consent page scrolls sideways on a phone ({width}px)"
    await creditor.check("input[name=agree]")
    await creditor.click("#consent button[type=submit]")
    await creditor.wait_for_url(f"{server.url}/join/{session_id}")
    await creditor.wait_for_selector("#room")
    join = creditor.locator("#join-button")
    leave = creditor.locator("#leave-button")
    await join.wait_for(state="visible")
    assert await leave.is_hidden()
    await creditor.locator("#join-button:enabled").wait_for()  # page CSP forbids eval
    await join.tap()
    await leave.wait_for(state="visible")  # the join was acknowledged
    assert await join.is_hidden()
    tile = creditor.locator(".seat-tile[data-seat=creditor]")
    await creditor.wait_for_selector(".seat-tile[data-seat=creditor].present")
    assert "me" in (await tile.get_attribute("class") or "")
    assert await tile.locator(".seat-state").text_content() == "在线"
    assert await creditor.text_content("#status") == "您已进入会话。"
    judge_tile = creditor.locator(".seat-tile[data-seat=judge]")
    assert "empty" in (await judge_tile.get_attribute("class") or "")

    # The consent was stored before the join.
    async with server.app[STORE].read() as tx:
        stored = await tx.consents(session_id)
    assert [str(c.seat) for c in stored] == ["creditor"]

    # The English switch.
    await creditor.click("nav.langs a[lang=en]")
    await creditor.wait_for_url("**?lang=en")
    assert await creditor.get_attribute("html", "lang") == "en"
    assert await creditor.text_content(".your-seats") == "creditor"
    await judge.goto(f"{server.url}/dashboard")  # the cookie is per browser, the judge's stays
    assert await judge.text_content("h1") == "工作台"
    await creditor.goto(f"{server.url}/join/{session_id}")
    assert await creditor.text_content("#join-button") == "Join"

    assert not errors, errors


async def test_autojoin_from_the_invite_link(
    server: LiveServer, world: World, new_context: Callable[..., Awaitable[Any]]
) -> None:
    """An officer's link with ?autojoin=1 takes the seat without a click (no consent needed)."""
    page = await (await new_context(**PHONE)).new_page()
    await page.goto(f"{server.url}/i/{world.tokens['officer']}?autojoin=1")
    await page.wait_for_url(f"{server.url}/join/{world.session.id}?autojoin=1")
    await page.wait_for_selector(".seat-tile[data-seat=officer].present")
    await page.locator("#leave-button").wait_for(state="visible")
    assert await page.locator("#join-button").is_hidden()
