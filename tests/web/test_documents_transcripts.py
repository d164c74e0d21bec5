"""A session's transcript (笔录) through the HTTP API of the real app: the clerk drafts it and
saves it as the session goes on, the debtor signs at the terminal with an officer's PIN, the
creditor on a phone, the judge confirms; the sealed PDF verifies, holds the text, and reaches
every party's inbox. And the refusals: a save after a signature, a save by a party, a draft by
an officer, a blank or too long text.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from courtlink.court.documents.transcripts import MAX_TEXT
from courtlink.court.seats import AccountRole
from courtlink.web.api import build_api
from courtlink.web.keys import SEAL, SETTINGS
from courtlink.web.services import Services
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, PIN, World
from tests.web.documents_support import (
    Clients,
    Desk,
    audit_events,
    call,
    courtlink,
    download,
    env_for,
    open_desk,
    pdf_images,
    pdf_text,
    sha256,
    signature,
)

LINES = [
    "审判长：现在开始远程会见，核对当事人身份。",
    "书记员：申请执行人王建国到庭，被执行人李某在拘留所会见室。",
    "被执行人：我同意分期履行，第一期于本月底前支付。",
]


@pytest.fixture
async def desk(server: LiveServer, services: Services, world: World, clients: Clients) -> Desk:
    return await open_desk(server, services, world, clients)


async def clerk_client(desk: Desk) -> tuple[aiohttp.ClientSession, str]:
    """The court's clerk (书记员), logged in."""
    await desk.services.gate.add_account(
        None,
        username="clerk",
        display_name="书记员",
        role=AccountRole.CLERK,
        password=PASSWORD,
        court=desk.world.case.court,
    )
    return await desk.account("clerk")


def flat(text: str) -> str:
    """Text without the line breaks and spaces pdftotext puts where the layout wrapped."""
    return "".join(text.split())


async def test_transcript_written_signed_confirmed_sealed_and_delivered(
    server: LiveServer, desk: Desk, tmp_path: Path
) -> None:
    services, world = desk.services, desk.world
    clerk, clerk_csrf = await clerk_client(desk)
    creditor = await desk.invitee("creditor")
    debtor_seat = await desk.invitee("debtor")
    officer_seat = await desk.invitee("officer")

    # The clerk starts the transcript when the session starts, then saves as it goes on.
    draft = await call(
        clerk,
        "POST",
        "/api/documents/transcripts",
        json={"session_id": world.session.id, "text": LINES[0]},
        csrf=clerk_csrf,
        status=201,
    )
    doc_id = draft["id"]
    assert (draft["kind"], draft["state"], draft["title"]) == ("transcript", "drafted", "笔录")
    assert draft["fields"] == {"session_id": world.session.id, "text": LINES[0], "version": 1}
    assert draft["signed_by"] is None  # a preview, not sealed
    put = f"/api/documents/{doc_id}/transcript"
    once = await call(
        clerk, "PUT", put, json={"text": "\n".join(LINES[:2])}, csrf=clerk_csrf, status=200
    )
    twice = await call(clerk, "PUT", put, json={"text": "\n".join(LINES)}, csrf=clerk_csrf)
    assert (once["fields"]["version"], twice["fields"]["version"]) == (2, 3)
    assert twice["sha256"] not in (draft["sha256"], once["sha256"])
    # An autosave of what is saved already is no new version.
    same = await call(clerk, "PUT", put, json={"text": "\n".join(LINES)}, csrf=clerk_csrf)
    assert same["fields"]["version"] == 3
    assert [s["action"] for s in same["steps"]] == ["draft", "save", "save"]
    # The preview the parties read is the text as saved last.
    status, preview, _ = await download(creditor, doc_id)
    assert status == 200
    assert sha256(preview) == twice["sha256"]
    assert flat(LINES[2]) in flat(pdf_text(preview))
    for client in (creditor, debtor_seat, desk.terminal):
        entry = await desk.item_of(client, doc_id)
        assert entry["document"]["fields"]["text"] == "\n".join(LINES)

    # Refusals while drafted: a party may not write it, nor an officer start one.
    await call(creditor, "PUT", put, json={"text": "申请执行人改写"}, status=403)
    officer_desk, officer_csrf = await desk.officer_desk()
    await call(
        officer_desk,
        "POST",
        "/api/documents/transcripts",
        json={"session_id": world.session.id, "text": "警官记录"},
        csrf=officer_csrf,
        status=403,
    )
    await call(
        clerk,
        "POST",
        "/api/documents/transcripts",
        json={"session_id": world.session.id, "text": "第二份"},
        csrf=clerk_csrf,
        status=409,
    )

    # The debtor signs at the terminal, witnessed by the officer's PIN: the text is frozen.
    debtor_png, creditor_png = signature(240, 90), signature(260, 110, (0, 0, 160))
    sign = f"/api/documents/{doc_id}/sign"
    witnessed = {"signature": debtor_png, "officer": "officer", "pin": PIN}
    await call(
        desk.terminal, "POST", sign, json={"signature": debtor_png, "version": 3}, status=403
    )
    # A signature is given to the text that was read: without its version, or to an older
    # version than the one saved (the clerk saved while the party read), it is refused.
    await call(desk.terminal, "POST", sign, json=witnessed, status=422)
    await call(desk.terminal, "POST", sign, json={**witnessed, "version": 2}, status=409)
    signed_once = await call(desk.terminal, "POST", sign, json={**witnessed, "version": 3})
    assert signed_once["state"] == "drafted"
    await call(clerk, "PUT", put, json={"text": "签名后改写"}, csrf=clerk_csrf, status=409)
    await call(
        desk.judge, "PUT", put, json={"text": "签名后改写"}, csrf=desk.judge_csrf, status=409
    )
    await call(
        desk.judge, "POST", f"/api/documents/{doc_id}/confirm", csrf=desk.judge_csrf, status=409
    )
    both = await call(creditor, "POST", sign, json={"signature": creditor_png, "version": 3})
    assert both["state"] == "signed"
    await call(clerk, "POST", f"/api/documents/{doc_id}/confirm", csrf=clerk_csrf, status=403)

    confirmed = await call(
        desk.judge, "POST", f"/api/documents/{doc_id}/confirm", csrf=desk.judge_csrf
    )
    assert confirmed["state"] == "issued"
    assert confirmed["fields"]["text"] == "\n".join(LINES)
    final = await desk.file(doc_id)
    assert sha256(final) == confirmed["sha256"]
    report = await server.app[SEAL].averify(final)
    assert report.ok, report.problems
    assert (report.intact, report.covers_whole_file, report.trusted) == (True, True, True)
    assert report.document_id == doc_id
    text = flat(pdf_text(final))
    for expected in ("笔录", world.case.number, world.case.debtor_name, *LINES):
        assert flat(expected) in text, expected
    assert "草稿" not in text
    images = pdf_images(final)
    assert (240, 90) in images
    assert (260, 110) in images
    (tmp_path / "transcript.pdf").write_bytes(final)
    verified = await courtlink(
        "verify", str(tmp_path / "transcript.pdf"), env=env_for(server.app[SETTINGS].data_dir)
    )
    assert verified.status == 0, verified.out + verified.err
    assert verified.out.startswith("genuine: "), verified.out

    # Every party's inbox has the sealed copy, fetched and hash-checked.
    for client in (creditor, debtor_seat, officer_seat, desk.terminal):
        entry = await desk.item_of(client, doc_id)
        assert entry["document"]["state"] == "issued"
        assert entry["item"]["fetched_at"] is None
        status, data, headers = await download(client, doc_id)
        assert status == 200
        assert sha256(data) == headers["X-Content-SHA256"] == confirmed["sha256"]
        await call(
            client,
            "POST",
            f"/api/inbox/{entry['item']['id']}/received",
            json={"sha256": sha256(data)},
        )
    await call(clerk, "PUT", put, json={"text": "发出后改写"}, csrf=clerk_csrf, status=409)

    kinds = [e.kind for e in await audit_events(services, doc_id)]
    assert kinds[:6] == [
        "document.drafted",
        "document.transcript_saved",
        "document.transcript_saved",
        "document.signed",
        "document.signed",
        "document.confirmed",
    ]
    # Each signature's event says which text it was given to: its version and hash.
    events = [e for e in await audit_events(services, doc_id) if e.kind == "document.signed"]
    text_sha256 = hashlib.sha256("\n".join(LINES).encode()).hexdigest()
    assert [(e.data["version"], e.data["text_sha256"]) for e in events] == [(3, text_sha256)] * 2
    assert (await services.auditor.verify()).ok
    assert await services.registry.reconcile() == []


@pytest.mark.parametrize(
    "text", ["", "   \n  ", "记" * (MAX_TEXT + 1)], ids=["empty", "blank", "too long"]
)
async def test_a_blank_or_too_long_text_is_refused(desk: Desk, text: str) -> None:
    clerk, csrf = await clerk_client(desk)
    body: dict[str, Any] = {"session_id": desk.world.session.id, "text": text}
    await call(clerk, "POST", "/api/documents/transcripts", json=body, csrf=csrf, status=422)
    draft = await call(
        clerk,
        "POST",
        "/api/documents/transcripts",
        json={**body, "text": "开始"},
        csrf=csrf,
        status=201,
    )
    put = f"/api/documents/{draft['id']}/transcript"
    await call(clerk, "PUT", put, json={"text": text}, csrf=csrf, status=422)
    assert (await desk.document(draft["id"]))["fields"]["version"] == 1


async def test_a_session_that_does_not_exist(desk: Desk) -> None:
    clerk, csrf = await clerk_client(desk)
    await call(
        clerk,
        "POST",
        "/api/documents/transcripts",
        json={"session_id": "no-such-session", "text": "开始"},
        csrf=csrf,
        status=404,
    )


def test_the_routes_are_in_the_openapi_document() -> None:
    paths = build_api("test").document()["paths"]
    assert "post" in paths["/api/documents/transcripts"]
    assert "put" in paths["/api/documents/{document_id}/transcript"]
    assert paths["/api/documents/{document_id}/transcript"]["put"]["summary"]
