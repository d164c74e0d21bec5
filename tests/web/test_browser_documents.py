"""Documents end to end in real Chromium: an order drafted, approved and issued from the
dashboards, received, acknowledged, served (the detainee signs with the mouse) and executed at
the terminal page, the judge's dashboard following each step live; and a creditor signing a
settlement agreement on a phone with a finger.

The page CSP forbids eval, so nothing here waits with a string predicate; waits are on
selectors (the pages expose state as data attributes).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from PIL import Image

from courtlink.court.documents.lifecycle import DocKind
from courtlink.court.policy import AccountPrincipal, InvitePrincipal
from courtlink.web.services import Services
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, PIN, World
from tests.web.browser_support import PHONE
from tests.web.documents_support import CENTER

pytestmark = pytest.mark.browser


async def _log_in(page: Any, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{base}/dashboard")


def _watch(page: Any, name: str, errors: list[str], navigations: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"{name}: {exc}"))
    page.on(
        "console",
        lambda m: errors.append(f"{name} console: {m.text}") if m.type == "error" else None,
    )
    page.on(
        "framenavigated",
        lambda frame: (
            navigations.append(f"{name} {frame.url}") if frame == page.main_frame else None
        ),
    )


async def _officer_confirms(terminal: Any, document_id: str, action: str, draw: bool) -> None:
    row = f".inbox-row[data-document='{document_id}']"
    await terminal.click(f"{row} button[data-action={action}]")
    dialog = terminal.locator("#officer-dialog")
    await dialog.wait_for(state="visible")
    await terminal.fill("#officer-dialog input[name=officer]", "officer")
    await terminal.fill("#officer-dialog input[name=pin]", PIN)
    if draw:
        # Confirming before anything is drawn is refused by the page itself.
        await terminal.click("#officer-dialog button.confirm")
        assert await dialog.is_visible()
        assert (await terminal.text_content("#officer-dialog .dialog-error") or "").strip()
        box = await terminal.locator("#officer-dialog canvas").bounding_box()
        await terminal.mouse.move(box["x"] + 20, box["y"] + 20)
        await terminal.mouse.down()
        await terminal.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 60, steps=12)
        await terminal.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + 25, steps=8)
        await terminal.mouse.up()
    await terminal.click("#officer-dialog button.confirm")
    await dialog.wait_for(state="hidden")


def _ink(png: bytes) -> int:
    """Dark pixels in a drawn signature."""
    with Image.open(io.BytesIO(png)) as image:
        grey = image.convert("L")
        return sum(grey.histogram()[:128])


async def test_order_flow_through_the_pages(
    server: LiveServer,
    services: Services,
    world: World,
    new_context: Callable[..., Awaitable[Any]],
) -> None:
    base = server.url
    errors: list[str] = []
    navigations: list[str] = []
    _, credential = await services.gate.add_terminal(None, name="会见室终端", center=CENTER)

    kiosk = await new_context(viewport={"width": 1280, "height": 900})
    terminal = await kiosk.new_page()
    await terminal.goto(f"{base}/t/{credential}")
    await terminal.wait_for_url(f"{base}/terminal")
    await terminal.wait_for_selector("#terminal-link[data-state=online]")
    _watch(terminal, "terminal", errors, navigations)

    desk = await new_context(viewport={"width": 1280, "height": 900})
    judge = await desk.new_page()
    await _log_in(judge, base, "judge")
    _watch(judge, "judge", errors, navigations)
    office = await new_context(viewport={"width": 1280, "height": 900})
    approver = await office.new_page()
    await _log_in(approver, base, "approver")
    _watch(approver, "approver", errors, navigations)

    # The judge drafts a renewal in the dashboard's form.
    await judge.click(".detention-actions summary")
    await judge.select_option(".detention-actions select[name=kind]", "renewal")
    await judge.fill(".detention-actions input[name=days]", "10")
    await judge.fill(".detention-actions textarea[name=reason]", "被执行人仍拒不履行")
    await judge.click(".detention-actions button[type=submit]")
    drafted = judge.locator("#documents .document[data-state=drafted]")
    await drafted.wait_for()
    document_id = await drafted.get_attribute("data-document")
    assert document_id
    card = f"#documents .document[data-document='{document_id}']"
    assert "续拘决定书" in (await judge.text_content(card) or "")
    # The judge has no approve button; the approver's dashboard, open all along, shows the new
    # draft with one (the section refreshes on the socket's document.updated).
    assert await judge.locator(f"{card} button[data-api$=approve]").count() == 0
    await approver.wait_for_selector(f"{card}[data-state=drafted] button[data-api$=approve]")
    assert await approver.locator(f"{card} button[data-api$=issue]").count() == 0
    timings: dict[str, float] = {}
    started = time.perf_counter()
    await approver.click(f"{card} button[data-api$=approve]")
    await judge.wait_for_selector(f"{card}[data-state=approved]")
    timings["approved"] = time.perf_counter() - started

    started = time.perf_counter()
    await judge.click(f"{card} button[data-api$=issue]")
    row = f".inbox-row[data-document='{document_id}']"
    await terminal.wait_for_selector(row)
    timings["on the terminal"] = time.perf_counter() - started
    alert = terminal.locator("#inbox-alert")
    await alert.wait_for(state="visible")
    alert_text = await alert.text_content() or ""
    assert "续拘决定书" in alert_text
    assert world.case.number in alert_text
    await terminal.wait_for_selector(f"{row}[data-file=verified]")
    timings["fetched and checked"] = time.perf_counter() - started
    await judge.wait_for_selector(f"{card}[data-state=delivered]")
    timings["judge sees delivered"] = time.perf_counter() - started
    assert await terminal.locator(f"{row} a.open").is_visible()

    for action, state, draw in (
        ("acknowledge", "acknowledged", False),
        ("serve", "served", True),
        ("execute", "executed", False),
    ):
        started = time.perf_counter()
        await _officer_confirms(terminal, document_id, action, draw)
        await judge.wait_for_selector(f"{card}[data-state={state}]")
        timings[f"judge sees {state}"] = time.perf_counter() - started
        await terminal.wait_for_selector(f"{row}[data-state={state}]")
    print("; ".join(f"{k} {v:.2f} s" for k, v in timings.items()))

    assert await judge.locator(f"{card} .receipts li").count() == 4
    steps = await judge.locator(f"{card} .steps li").evaluate_all(
        "items => items.map(i => i.dataset.action)"
    )
    assert steps == ["draft", "approve", "issue", "deliver", "acknowledge", "serve", "execute"]
    # Nobody reloaded the judge's or the terminal's page: every step arrived live.
    assert navigations == [], navigations
    assert errors == [], errors

    async with services.store.read() as tx:
        document = await tx.document(document_id)
        signatures = await tx.signatures(document_id)
        detention = await tx.detention(world.detention.id)
    assert str(document.state) == "executed"
    assert _ink(signatures["debtor"][0]) > 50  # what was drawn, not a blank box
    assert detention.periods[-1].days == 10
    assert detention.periods[-1].start == world.detention.ends_at


async def test_creditor_signs_an_agreement_on_a_phone(
    server: LiveServer,
    services: Services,
    world: World,
    new_context: Callable[..., Awaitable[Any]],
) -> None:
    base = server.url
    registry = services.registry
    judge = AccountPrincipal(world.judge)
    draft = await registry.draft_settlement(
        judge,
        case_id=world.case.id,
        terms="被执行人于本月底前付清全部款项。",
        amount_fen=35_600_000,
    )
    errors: list[str] = []
    navigations: list[str] = []

    phone = await new_context(**PHONE)
    creditor = await phone.new_page()
    await creditor.goto(f"{base}/i/{world.tokens['creditor']}")
    await creditor.wait_for_url(f"{base}/join/{world.session.id}")
    await creditor.check("input[name=agree]")
    await creditor.click("#consent button[type=submit]")
    await creditor.wait_for_url(f"{base}/join/{world.session.id}")
    _watch(creditor, "creditor", errors, navigations)
    row = f".inbox-row[data-document='{draft.id}']"
    await creditor.wait_for_selector(f"{row}[data-file=verified]")
    assert await creditor.get_attribute(row, "data-state") == "drafted"
    await creditor.tap(f"{row} button[data-action=sign]")
    dialog = creditor.locator("#officer-dialog")
    await dialog.wait_for(state="visible")
    assert await creditor.locator("#officer-dialog .officer-fields").is_hidden()
    canvas = creditor.locator("#officer-dialog canvas")
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    assert box["width"] <= 390
    width = await creditor.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the signing dialog scrolls sideways on a phone ({width}px)"

    # A finger on the glass: touch events, through the DevTools protocol.
    cdp = await phone.new_cdp_session(creditor)
    x0, y0 = box["x"] + 15, box["y"] + box["height"] / 2
    await cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]}
    )
    for i in range(1, 25):
        point = {"x": x0 + i * (box["width"] - 30) / 24, "y": y0 + (12 if i % 2 else -12)}
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        await asyncio.sleep(0.016)  # a finger moves at the display's pace
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    # Chrome's gesture detector takes a tap right after a stroke for part of that gesture (no
    # click); a person's finger takes longer than this to reach the button.
    await asyncio.sleep(1.0)
    await creditor.tap("#officer-dialog button.confirm")
    await dialog.wait_for(state="hidden")
    alert = creditor.locator("#inbox-alert")
    await alert.wait_for(state="visible")
    assert "执行和解协议" in (await alert.text_content() or "")

    async with services.store.read() as tx:
        signatures = await tx.signatures(draft.id)
        assert str((await tx.document(draft.id)).state) == "drafted"
    assert set(signatures) == {"creditor"}
    ink = _ink(signatures["creditor"][0])
    print(f"creditor's signature: {len(signatures['creditor'][0])} bytes PNG, {ink} dark pixels")
    assert ink > 50

    # The debtor signs at the terminal; the phone sees the agreement signed, then confirmed.
    terminal, credential = await services.gate.add_terminal(None, name="终端", center=CENTER)
    await registry.sign(
        await services.gate.terminal_for(credential),
        draft.id,
        signatures["creditor"][0],
        officer="officer",
        pin=PIN,
    )
    await creditor.wait_for_selector(f"{row}[data-state=signed]")
    confirmed = await registry.confirm(judge, draft.id)
    assert str(confirmed.kind) == str(DocKind.SETTLEMENT)
    await creditor.wait_for_selector(f"{row}[data-state=issued][data-file=verified]")
    assert await creditor.locator(f"{row} button[data-action=sign]").count() == 0
    invite = InvitePrincipal(await services.clerk.check_invite(world.tokens["creditor"]))
    item = next(i for i, d in await registry.inbox(invite) if d.id == draft.id)
    assert item.fetched_at is not None  # the phone fetched the final copy and checked its hash
    assert navigations == [], navigations
    assert errors == [], errors
    assert terminal.center == CENTER
