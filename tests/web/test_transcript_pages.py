"""The transcript (笔录) pages on the real app: the clerk's list of sessions, the transcript page
(who may open it, its stages: new, drafting, frozen by a signature, signed, issued; Chinese and
English), the judge's links and confirm button, the parties' signing screens."""

from __future__ import annotations

import base64
from collections.abc import Callable

import aiohttp
import pytest

from courtlink.court.accounts import Account
from courtlink.court.documents.lifecycle import Document
from courtlink.court.policy import AccountPrincipal, InvitePrincipal
from courtlink.court.seats import AccountRole
from courtlink.web.services import Services
from tests.helpers import PASSWORD, PIN, World
from tests.web.documents_support import CENTER, signature
from tests.web.test_pages import form_login, open_invite, page

Clients = Callable[..., aiohttp.ClientSession]
TEXT = "审判员：现在开庭。\n被执行人李某：我同意分期付款。\n  （书记员注：双方均在场）"


async def add_clerk(services: Services, username: str = "clerk") -> Account:
    return await services.gate.add_account(
        None,
        username=username,
        display_name="孙书记员",
        role=AccountRole.CLERK,
        password=PASSWORD,
        court="盐城市盐都区人民法院",
    )


@pytest.fixture
async def clerk(services: Services, world: World) -> Account:
    return await add_clerk(services)


async def draft(services: Services, clerk: Account, world: World, text: str = TEXT) -> Document:
    return await services.registry.draft_transcript(
        AccountPrincipal(clerk), session_id=world.session.id, text=text
    )


async def party(services: Services, world: World, name: str) -> InvitePrincipal:
    return InvitePrincipal(await services.clerk.check_invite(world.tokens[name]))


PNG = base64.b64decode(signature())


def transcript_path(world: World) -> str:
    return f"/sessions/{world.session.id}/transcript"


# The clerk's landing page --------------------------------------------------------------------


async def test_a_clerk_lands_on_the_sessions_to_write(
    services: Services, world: World, clerk: Account, clients: Clients
) -> None:
    ended = await services.clerk.create_session(world.me, case_id=world.case.id)
    await services.clerk.end_session(world.me, ended.id)
    client = clients()
    await form_login(client, "clerk")
    doc, _ = await page(client, "/dashboard")
    assert doc.find("title").text() == "笔录 · 法拘通"
    assert "孙书记员 · 书记员" in doc.find("span", cls="who").text()
    # A clerk sees sessions, not the judge's detentions, cases and forms.
    assert not doc.find_all("section", id="detentions")
    assert not doc.find_all("form", id="new-session")
    sessions = doc.find("section", id="sessions")
    articles = sessions.find_all("article")
    # The one still to come first, the one that just ended (recent) after it.
    assert [a.attrs["data-session"] for a in articles] == [world.session.id, ended.id]
    article = articles[0]
    assert "(2021)苏0903执1234号" in article.text()
    assert "王建国" in article.text()
    assert "李某" in article.text()
    assert "已预约" in article.text()
    assert article.attrs["data-stage"] == "new"
    assert "笔录: 尚未开始" in article.find("span", cls="stage").text()
    link = article.find("a", href=transcript_path(world))
    assert link.text() == "记录笔录"
    assert "已结束" in articles[1].text()

    await draft(services, clerk, world)
    doc, _ = await page(client, "/dashboard?lang=en")
    article = doc.find("article", id=f"session-{world.session.id}")
    assert article.attrs["data-stage"] == "drafting"
    assert "Draft, saved automatically" in article.text()
    assert article.find("a", href=transcript_path(world)).text() == "Write the transcript"
    assert "clerk" in doc.find("span", cls="who").text()


# The transcript page -------------------------------------------------------------------------


async def test_the_transcript_page_before_anything_is_typed(
    services: Services, world: World, clerk: Account, clients: Clients
) -> None:
    client = clients()
    await form_login(client, "clerk")
    doc, r = await page(client, transcript_path(world))
    assert r.headers["Cache-Control"] == "no-store"
    assert doc.find("title").text() == "会话笔录 · 法拘通"
    about = doc.find("section", id="about")
    assert doc.find("dd", cls="case-number").text() == "(2021)苏0903执1234号"
    assert doc.find("dd", cls="creditor").text() == "王建国"
    assert doc.find("dd", cls="debtor").text() == "李某"
    assert "已预约" in about.text()
    assert doc.find("p", id="recording-badge").attrs.get("hidden") is not None  # not recorded
    section = doc.find("section", id="transcript")
    assert section.attrs["data-session"] == world.session.id
    assert section.attrs["data-document"] == ""
    assert section.attrs["data-stage"] == "new"
    assert section.attrs["data-editable"] == "yes"
    assert len(section.attrs["data-csrf"]) >= 16
    area = doc.find("textarea", id="transcript-text")
    assert "readonly" not in area.attrs
    assert area.text() == ""
    assert doc.find("span", id="transcript-stage").text() == "尚未开始"
    assert doc.find("p", id="save-status").text() == "输入时自动保存。"
    assert doc.find("p", id="frozen-notice").attrs.get("hidden") is not None
    assert doc.find("a", id="transcript-pdf").attrs.get("hidden") is not None
    scripts = [s.attrs["src"] for s in doc.find_all("script")]
    assert scripts == ["/static/vendor/socket.io.min.js", "/static/js/transcript.js"]
    i18n = doc.find("template", id="transcript-i18n").attrs
    assert i18n["data-saved"] == "已保存"
    assert i18n["data-stage-frozen"] == "交各方签名"
    assert i18n["data-refused"] == "未保存：已有当事人签名，笔录内容不能再修改。"


async def test_a_recorded_session_shows_the_badge(
    services: Services, world: World, clerk: Account, clients: Clients
) -> None:
    recorded = await services.clerk.create_session(world.me, case_id=world.case.id, recorded=True)
    client = clients()
    await form_login(client, "clerk")
    doc, _ = await page(client, f"/sessions/{recorded.id}/transcript")
    badge = doc.find("p", id="recording-badge")
    assert badge.attrs.get("hidden") is None
    assert badge.attrs["data-recording"] == "yes"
    assert "录制中" in badge.text()


async def test_the_transcript_page_while_drafting_and_after_a_signature(
    services: Services, world: World, clerk: Account, clients: Clients
) -> None:
    document = await draft(services, clerk, world)
    client = clients()
    await form_login(client, "clerk")
    doc, _ = await page(client, transcript_path(world))
    section = doc.find("section", id="transcript")
    assert section.attrs["data-document"] == document.id
    assert section.attrs["data-stage"] == "drafting"
    assert section.attrs["data-editable"] == "yes"
    assert section.attrs["data-version"] == "1"
    area = doc.find("textarea", id="transcript-text")
    assert "readonly" not in area.attrs
    # The text as typed: line breaks and leading spaces kept (the parser folds spaces in text(),
    # so the raw child is compared; browsers drop the one newline after the opening tag).
    assert area.children == ["\n" + TEXT]
    assert doc.find("span", cls="number").text() == document.number
    assert doc.find("span", id="transcript-stage").text() == "草稿（自动保存）"
    assert doc.find("a", id="transcript-pdf").attrs.get("hidden") is None

    await services.registry.sign(
        await party(services, world, "creditor"),
        document.id,
        PNG,
        version=document.fields["version"],
    )
    doc, _ = await page(client, transcript_path(world))
    section = doc.find("section", id="transcript")
    assert section.attrs["data-stage"] == "frozen"
    assert section.attrs["data-editable"] == "no"
    assert "readonly" in doc.find("textarea", id="transcript-text").attrs
    assert doc.find("span", id="transcript-stage").text() == "交各方签名"
    notice = doc.find("p", id="frozen-notice")
    assert notice.attrs.get("hidden") is None
    assert notice.text() == "已有当事人签名，笔录内容不能再修改。"
    signed = {li.attrs["data-seat"]: li for li in doc.find("ul", id="signatures").find_all("li")}
    assert signed["creditor"].attrs["data-signed"] == "yes"
    assert "已签名" in signed["creditor"].text()
    assert signed["debtor"].attrs["data-signed"] == "no"
    assert "尚未签名" in signed["debtor"].text()

    # The debtor signs at the terminal (an officer confirms): both signed, the judge confirms.
    _, credential = await services.gate.add_terminal(None, name="终端", center=CENTER)
    terminal = await services.gate.terminal_for(credential)
    await services.registry.sign(
        terminal, document.id, PNG, officer="officer", pin=PIN, version=document.fields["version"]
    )
    doc, _ = await page(client, transcript_path(world) + "?lang=en")
    assert doc.find("section", id="transcript").attrs["data-stage"] == "signed"
    assert (
        doc.find("span", id="transcript-stage").text()
        == "Signed by both parties; waiting for the judge to confirm"
    )
    await services.registry.confirm(world.me, document.id)
    doc, _ = await page(client, transcript_path(world) + "?lang=en")
    assert doc.find("section", id="transcript").attrs["data-stage"] == "issued"
    assert doc.find("span", id="transcript-stage").text() == "Confirmed and sealed by the court"
    assert doc.find("p", id="frozen-notice").text() == (
        "The judge has confirmed the transcript; the sealed PDF went to the parties."
    )


async def test_the_transcript_page_in_english(
    services: Services, world: World, clerk: Account, clients: Clients
) -> None:
    client = clients()
    await form_login(client, "clerk")
    doc, _ = await page(client, transcript_path(world) + "?lang=en")
    assert doc.find("html").attrs["lang"] == "en"
    assert doc.find("title").text() == "Session transcript · Courtlink"
    assert doc.find("p", id="save-status").text() == "Saved automatically as you type."
    assert doc.find("span", id="transcript-stage").text() == "Not started"
    i18n = doc.find("template", id="transcript-i18n").attrs
    assert i18n["data-stage-frozen"] == "Ready for signatures"
    assert "clerk" in doc.find("span", cls="who").text()


async def test_who_may_open_the_transcript_page(
    services: Services, world: World, clerk: Account, clients: Clients
) -> None:
    path = transcript_path(world)
    # The clerk and the case's judge: the page, editable.
    for username in ("clerk", "judge"):
        client = clients()
        await form_login(client, username)
        doc, _ = await page(client, path)
        assert doc.find("section", id="transcript").attrs["data-editable"] == "yes", username
    # Another judge, the approver: refused.
    for username in ("judge2", "approver"):
        client = clients()
        await form_login(client, username)
        doc, _ = await page(client, path, 403)
        assert doc.find("code").text() == "forbidden", username
        assert not doc.find_all("textarea")
    # An officer with an account: refused (officers read no sessions).
    await services.gate.add_account(
        None,
        username="officer-desk",
        display_name="值班警官",
        role=AccountRole.OFFICER,
        password=PASSWORD,
        pin=PIN,
        center=CENTER,
    )
    client = clients()
    async with client.post(
        "/login", data={"username": "officer-desk", "password": PASSWORD}, allow_redirects=False
    ) as r:
        assert r.status == 303
    await page(client, path, 403)
    # A party with an invite of this very session, and nobody: sent to log in.
    client = clients()
    assert await open_invite(client, world.tokens["creditor"]) == f"/join/{world.session.id}"
    _, r = await page(client, path, 303)
    assert r.headers["Location"] == "/login"
    _, r = await page(clients(), path, 303)
    assert r.headers["Location"] == "/login"
    # A session that does not exist.
    client = clients()
    await form_login(client, "clerk")
    doc, _ = await page(client, "/sessions/nosuchsession/transcript", 404)
    assert doc.find("code").text() == "not_found"


# The judge's dashboard ------------------------------------------------------------------------


async def test_the_judge_writes_and_confirms_from_the_dashboard(
    services: Services, world: World, clerk: Account, clients: Clients
) -> None:
    client = clients()
    await form_login(client, "judge")
    doc, _ = await page(client, "/dashboard")
    article = doc.find("article", id=f"session-{world.session.id}")
    assert article.find("a", href=transcript_path(world)).text() == "记录笔录"

    document = await draft(services, clerk, world)
    await services.registry.sign(
        await party(services, world, "creditor"),
        document.id,
        PNG,
        version=document.fields["version"],
    )
    doc, _ = await page(client, "/dashboard")
    card = doc.find("li", cls="document", data_document=document.id)
    assert card.attrs["data-kind"] == "transcript"
    assert "笔录" in card.text()
    assert card.find("a", href=transcript_path(world)).text() == "笔录"
    assert not card.find_all("button")  # one signature: nothing to confirm yet

    _, credential = await services.gate.add_terminal(None, name="终端", center=CENTER)
    terminal = await services.gate.terminal_for(credential)
    await services.registry.sign(
        terminal, document.id, PNG, officer="officer", pin=PIN, version=document.fields["version"]
    )
    doc, _ = await page(client, "/dashboard")
    card = doc.find("li", cls="document", data_document=document.id)
    button = card.find("button", data_api=f"/api/documents/{document.id}/confirm")
    assert button.text() == "确认"
    doc, _ = await page(client, "/dashboard?lang=en")
    card = doc.find("li", cls="document", data_document=document.id)
    assert card.find("button", data_api=f"/api/documents/{document.id}/confirm").text() == (
        "Confirm"
    )
    # Another judge sees the document, without the button.
    other = clients()
    await form_login(other, "judge2")
    doc, _ = await page(other, "/dashboard")
    card = doc.find("li", cls="document", data_document=document.id)
    assert not card.find_all("button")


# Where the parties sign -----------------------------------------------------------------------


async def test_the_signing_screens_know_their_seat_and_show_the_text(
    services: Services, world: World, clients: Clients
) -> None:
    creditor = await party(services, world, "creditor")
    await services.clerk.give_consent(creditor)
    client = clients()
    doc, _ = await page(client, await open_invite(client, world.tokens["creditor"]))
    inbox = doc.find("section", id="inbox")
    assert inbox.attrs["data-can-sign"] == "yes"
    assert inbox.attrs["data-sign-seats"] == "creditor"
    block = doc.find("dialog", id="officer-dialog").find("div", cls="document-text")
    assert "hidden" in block.attrs
    assert "签名前请阅读笔录：" in block.text()
    assert "书记员刚刚修改了笔录内容，请重新阅读后再签名。" in block.text()

    _, credential = await services.gate.add_terminal(None, name="终端", center=CENTER)
    terminal = clients()
    async with terminal.get(f"/t/{credential}", allow_redirects=False) as r:
        assert r.status == 303
    doc, _ = await page(terminal, "/terminal?lang=en")
    inbox = doc.find("section", id="inbox")
    assert inbox.attrs["data-officer"] == "yes"
    assert inbox.attrs["data-sign-seats"] == "debtor"
    assert "Read the transcript before you sign it:" in doc.find("dialog").text()
