"""A session's transcript (笔录) end to end in real Chromium: the clerk types it (autosaved, at
most one save every five seconds while typing, and at once on blur and on leaving the page),
the debtor signs it at the terminal page with the officer's name and PIN (the clerk's page hears
it and turns read-only), the creditor signs on a phone, the judge confirms on the dashboard,
and the sealed PDF arrives in the parties' documents.

Waits are on selectors and data attributes (the CSP forbids eval'd predicates).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from courtlink.court.policy import InvitePrincipal
from courtlink.web.services import Services
from tests.conftest import LiveServer
from tests.helpers import World
from tests.web.browser_support import PHONE
from tests.web.documents_support import CENTER, pdf_text
from tests.web.support import login
from tests.web.test_browser_documents import _ink, _log_in, _officer_confirms, _watch
from tests.web.test_transcript_pages import add_clerk

pytestmark = pytest.mark.browser

Clients = Callable[..., aiohttp.ClientSession]
LINES = ["审判员：现在开庭，核对当事人身份。", "被执行人李某：我同意在本月底前付清。"]


async def _api_text(api: aiohttp.ClientSession, document_id: str) -> str:
    async with api.get(f"/api/documents/{document_id}") as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    text = body["fields"]["text"]
    assert isinstance(text, str)
    return text


async def _until(check: Callable[[], Awaitable[bool]], what: str, limit: float = 15) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_transcript_typed_signed_confirmed_and_delivered(
    server: LiveServer,
    services: Services,
    world: World,
    clients: Clients,
    new_context: Callable[..., Awaitable[Any]],
) -> None:
    base = server.url
    errors: list[str] = []
    navigations: list[str] = []
    await add_clerk(services)
    api = clients()
    await login(api, "clerk")
    _, credential = await services.gate.add_terminal(None, name="会见室终端", center=CENTER)

    # The clerk logs in and lands on the sessions to write.
    office = await new_context(viewport={"width": 1280, "height": 900})
    clerk = await office.new_page()
    await _log_in(clerk, base, "clerk")
    clerk.on("pageerror", lambda exc: errors.append(f"clerk: {exc}"))
    await clerk.click(f"#session-{world.session.id} a[href$='/transcript']")
    await clerk.wait_for_url(f"{base}/sessions/{world.session.id}/transcript")
    area = clerk.locator("#transcript-text")
    assert await area.get_attribute("readonly") is None

    # Typing for about six seconds: saved through the API, never twice within five seconds.
    saves: list[tuple[float, str]] = []
    clerk.on(
        "request",
        lambda request: (
            saves.append((time.monotonic(), request.method))
            if "/api/documents/transcripts" in request.url or request.url.endswith("/transcript")
            else None
        ),
    )
    await area.click()
    started = time.monotonic()
    await area.press_sequentially(LINES[0], delay=350)
    typing = time.monotonic() - started
    await clerk.wait_for_selector("#save-status[data-status=saved]")
    while_typing = [at for at, _ in saves]
    print(f"typed {len(LINES[0])} characters in {typing:.1f} s: {len(saves)} saves")
    assert saves[0][1] == "POST"  # the first save starts the transcript
    assert all(method == "PUT" for _, method in saves[1:])
    assert 2 <= len(saves) <= 3, saves
    gaps = [b - a for a, b in itertools.pairwise(while_typing)]
    assert all(gap >= 4.8 for gap in gaps), gaps
    document_id = await clerk.get_attribute("#transcript", "data-document")
    assert document_id
    # Blur saves at once, whatever the gap.
    await area.press("Enter")
    await area.press_sequentially(LINES[1])
    before = len(saves)
    await clerk.click("h1")
    await clerk.wait_for_selector("#save-status[data-status=saved]")
    assert len(saves) == before + 1
    status = await clerk.text_content("#save-status") or ""
    assert re.fullmatch(r"已保存 \d\d:\d\d:\d\d", status), status
    assert await _api_text(api, document_id) == "\n".join(LINES)
    assert await clerk.text_content("#transcript-stage") == "草稿（自动保存）"

    # Leaving the page right after typing saves too (a keepalive request).
    await area.press_sequentially("（完）")
    await clerk.goto(f"{base}/dashboard")

    async def left_saved() -> bool:
        return (await _api_text(api, document_id)).endswith("（完）")

    await _until(left_saved, "the save on leaving the page")
    text = "\n".join(LINES) + "（完）"
    await clerk.click(f"#session-{world.session.id} a[href$='/transcript']")
    assert await area.input_value() == text

    # The debtor signs at the detention center's terminal; the officer confirms with the PIN.
    kiosk = await new_context(viewport={"width": 1280, "height": 900})
    terminal = await kiosk.new_page()
    await terminal.goto(f"{base}/t/{credential}")
    await terminal.wait_for_url(f"{base}/terminal")
    _watch(terminal, "terminal", errors, navigations)
    row = f".inbox-row[data-document='{document_id}']"
    await terminal.wait_for_selector(f"{row}[data-kind=transcript][data-file=verified]")
    await terminal.click(f"{row} button[data-action=sign]")
    shown = terminal.locator("#officer-dialog .document-text .text")
    await shown.wait_for(state="visible")
    assert await shown.text_content() == text
    await terminal.click("#officer-dialog button[value=cancel]")
    await _officer_confirms(terminal, document_id, "sign", draw=True)
    await terminal.wait_for_selector(f"{row}[data-state=drafted]")
    # Signed once from this screen: no second sign button for the debtor.
    await terminal.wait_for_selector(f"{row} .actions:empty", state="attached")

    # The clerk, still on the page, hears the signature (clerks listen for transcripts): the
    # text turns read-only by itself and the page says why. (A save that races the signature
    # is refused with 409: tests/web/test_documents_transcripts.py.)
    await clerk.wait_for_selector("#transcript[data-stage=frozen]")
    assert await area.get_attribute("readonly") is not None
    assert await area.input_value() == text
    assert await clerk.text_content("#transcript-stage") == "交各方签名"
    assert await clerk.is_visible("#frozen-notice")
    assert await _api_text(api, document_id) == text

    # The creditor signs on a phone, reading the text first.
    phone = await new_context(**PHONE)
    creditor = await phone.new_page()
    await creditor.goto(f"{base}/i/{world.tokens['creditor']}")
    await creditor.wait_for_url(f"{base}/join/{world.session.id}")
    await creditor.check("input[name=agree]")
    await creditor.click("#consent button[type=submit]")
    await creditor.wait_for_url(f"{base}/join/{world.session.id}")
    _watch(creditor, "creditor", errors, navigations)
    await creditor.wait_for_selector(f"{row}[data-file=verified]")
    await creditor.tap(f"{row} button[data-action=sign]")
    await creditor.locator("#officer-dialog").wait_for(state="visible")
    assert await creditor.locator("#officer-dialog .officer-fields").is_hidden()
    assert await creditor.text_content("#officer-dialog .document-text .text") == text
    width = await creditor.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the signing dialog scrolls sideways on a phone ({width}px)"
    canvas = creditor.locator("#officer-dialog canvas")
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    cdp = await phone.new_cdp_session(creditor)
    x0, y0 = box["x"] + 15, box["y"] + box["height"] / 2
    await cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]}
    )
    for i in range(1, 25):
        point = {"x": x0 + i * (box["width"] - 30) / 24, "y": y0 + (12 if i % 2 else -12)}
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        await asyncio.sleep(0.016)
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await asyncio.sleep(1.0)  # see test_browser_documents: a tap right after a stroke is eaten
    await creditor.tap("#officer-dialog button.confirm")
    await creditor.locator("#officer-dialog").wait_for(state="hidden")
    await creditor.wait_for_selector(f"{row}[data-state=signed]")

    # The judge confirms on the dashboard.
    desk = await new_context(viewport={"width": 1280, "height": 900})
    judge = await desk.new_page()
    await _log_in(judge, base, "judge")
    _watch(judge, "judge", errors, navigations)
    card = f"#documents .document[data-document='{document_id}']"
    await judge.wait_for_selector(f"{card}[data-state=signed][data-kind=transcript]")
    confirm = judge.locator(f"{card} button[data-api$=confirm]")
    assert await confirm.text_content() == "确认"
    await confirm.click()
    await judge.wait_for_selector(f"{card}[data-state=issued]")

    # The sealed copy reaches both parties' documents, fetched and hash-checked.
    await creditor.wait_for_selector(f"{row}[data-state=issued][data-file=verified]")
    await terminal.wait_for_selector(f"{row}[data-state=issued][data-file=verified]")
    assert await creditor.locator(f"{row} button[data-action=sign]").count() == 0
    async with api.get(f"/api/documents/{document_id}/file") as r:
        assert r.status == 200
        pdf = await r.read()
    printed = re.sub(r"\s", "", pdf_text(pdf))
    for line in LINES:
        assert line in printed
    async with services.store.read() as tx:
        document = await tx.document(document_id)
        signatures = await tx.signatures(document_id)
    assert str(document.state) == "issued"
    assert document.signed_by is not None  # sealed by the court
    assert set(signatures) == {"debtor", "creditor"}
    assert min(_ink(png) for png, _ in signatures.values()) > 50
    invite = InvitePrincipal(await services.clerk.check_invite(world.tokens["creditor"]))
    item = next(i for i, d in await services.registry.inbox(invite) if d.id == document_id)
    assert item.fetched_at is not None
    assert navigations == [], navigations
    assert errors == [], errors


async def test_the_judge_writes_the_transcript_on_a_phone(
    server: LiveServer,
    services: Services,
    world: World,
    clients: Clients,
    new_context: Callable[..., Awaitable[Any]],
) -> None:
    """The case's judge opens the transcript from the dashboard's session card on a phone: it
    fits the width, and what is typed is saved when the text box loses focus."""
    base = server.url
    errors: list[str] = []
    api = clients()
    await login(api, "judge")
    phone = await new_context(**PHONE)
    judge = await phone.new_page()
    judge.on("pageerror", lambda exc: errors.append(str(exc)))
    await _log_in(judge, base, "judge")
    await judge.tap(f"#session-{world.session.id} a.transcript-link")
    await judge.wait_for_url(f"{base}/sessions/{world.session.id}/transcript")
    area = judge.locator("#transcript-text")
    box = await area.bounding_box()
    assert box["width"] >= 300  # a large box, the phone's width
    await area.tap()
    await area.press_sequentially(LINES[1])
    await judge.tap("h1")
    await judge.wait_for_selector("#save-status[data-status=saved]")
    document_id = await judge.get_attribute("#transcript", "data-document")
    assert document_id
    assert await _api_text(api, document_id) == LINES[1]
    width = await judge.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the transcript page scrolls sideways on a phone ({width}px)"
    assert errors == [], errors
