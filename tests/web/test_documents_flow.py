"""The documents' flows through the HTTP API of the real app: an order from draft to execution
(the delivery hash-checked, the officer's PIN, receipts, the detention changed), refusals, a
settlement signed at the terminal and on a phone, payments, uploads, and the overdue alert.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from courtlink.config import Settings
from courtlink.papers.filters import zh_date
from courtlink.web.keys import SEAL
from courtlink.web.services import Services
from tests.conftest import LiveServer, make_settings
from tests.helpers import PIN, World
from tests.web.documents_support import (
    FAR_CENTER,
    Clients,
    Desk,
    Listener,
    audit_events,
    call,
    cookie_of,
    download,
    jpeg_bytes,
    noise_png,
    open_desk,
    pdf_images,
    pdf_text,
    sha256,
    signature,
    small_pdf,
)


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The default settings; a test changes sections with indirect parametrization."""
    sections: dict[str, dict[str, Any]] = getattr(request, "param", {})
    return make_settings(tmp_path / "var", **sections)


@pytest.fixture
async def desk(server: LiveServer, services: Services, world: World, clients: Clients) -> Desk:
    return await open_desk(server, services, world, clients)


async def sealed(server: LiveServer, pdf: bytes, document_id: str | None = None) -> str:
    """Check the court's seal on ``pdf``; returns its key id."""
    report = await server.app[SEAL].averify(pdf)
    assert report.ok, report.problems
    assert report.intact
    assert report.covers_whole_file
    assert report.trusted
    if document_id is not None:
        assert report.document_id == document_id
    assert report.kid is not None
    return report.kid


# The order flow ------------------------------------------------------------------------------


async def test_renewal_from_draft_to_execution(server: LiveServer, desk: Desk) -> None:
    world, services = desk.world, desk.services
    other_judge, other_csrf = await desk.account("judge2")
    officer_desk, officer_csrf = await desk.officer_desk()
    invite = await desk.invitee("creditor")
    anonymous = desk.clients()
    far, _ = await desk.new_terminal("南京终端", FAR_CENTER)
    body = {
        "kind": "renewal",
        "detention_id": world.detention.id,
        "reason": "被执行人仍拒不履行",
        "days": 10,
    }

    # Drafting: only the case's judge, and never longer than the legal maximum.
    for days in (16, 0, -1):
        await call(
            desk.judge,
            "POST",
            "/api/documents/orders",
            json={**body, "days": days},
            csrf=desk.judge_csrf,
            status=422,
            code="invalid_input",
        )
    await call(
        desk.judge,
        "POST",
        "/api/documents/orders",
        json={**body, "days": None},
        csrf=desk.judge_csrf,
        status=422,
    )
    for client, csrf in ((other_judge, other_csrf), (desk.approver, desk.approver_csrf)):
        await call(client, "POST", "/api/documents/orders", json=body, csrf=csrf, status=403)
    await call(
        officer_desk, "POST", "/api/documents/orders", json=body, csrf=officer_csrf, status=403
    )
    for client in (invite, desk.terminal, anonymous):
        await call(client, "POST", "/api/documents/orders", json=body, status=401)
    assert await desk.case_documents() == []

    drafted = await call(
        desk.judge, "POST", "/api/documents/orders", json=body, csrf=desk.judge_csrf, status=201
    )
    doc_id = drafted["id"]
    assert drafted["state"] == "drafted"
    assert drafted["kind"] == "renewal"
    assert drafted["number"] == f"{world.case.number}之一"
    assert drafted["fields"]["days"] == 10
    assert drafted["fields"]["from"] == world.detention.ends_at.isoformat()
    assert drafted["sha256"] is None
    # Each step answers with the document as stored, its new step included.
    assert [s["action"] for s in drafted["steps"]] == ["draft"]

    # Approval: the approver, not the judge; issuing: the judge, not the approver.
    await call(
        desk.judge, "POST", f"/api/documents/{doc_id}/approve", csrf=desk.judge_csrf, status=403
    )
    await call(
        desk.judge, "POST", f"/api/documents/{doc_id}/issue", csrf=desk.judge_csrf, status=409
    )
    approved = await desk.approve(doc_id)
    assert approved["state"] == "approved"
    assert [s["action"] for s in approved["steps"]] == ["draft", "approve"]
    await call(
        desk.approver,
        "POST",
        f"/api/documents/{doc_id}/issue",
        csrf=desk.approver_csrf,
        status=403,
    )
    await call(
        desk.approver,
        "POST",
        f"/api/documents/{doc_id}/approve",
        csrf=desk.approver_csrf,
        status=409,
    )

    started = time.perf_counter()
    issued = await desk.issue(doc_id)
    print(f"issue (render + seal + store + deliver): {time.perf_counter() - started:.2f} s")
    assert issued["state"] == "issued"
    pdf = await desk.file(doc_id)
    print(f"order PDF: {len(pdf)} bytes")
    assert sha256(pdf) == issued["sha256"]
    assert len(pdf) == issued["size"]
    kid = await sealed(server, pdf, doc_id)
    assert kid == issued["signed_by"] == server.app[SEAL].current

    # The terminal of the detention's center has it; a terminal of another center does not.
    entry = await desk.item_of(desk.terminal, doc_id)
    assert entry["document"]["state"] == "issued"
    assert entry["item"]["recipient"] == f"terminal:{desk.terminal_id}"
    assert entry["item"]["fetched_at"] is None
    assert await call(far, "GET", "/api/inbox") == []
    status, data, _ = await download(far, doc_id)
    assert status == 403, data
    await call(far, "GET", f"/api/documents/{doc_id}", status=403)
    await call(
        far,
        "POST",
        f"/api/inbox/{entry['item']['id']}/received",
        json={"sha256": issued["sha256"]},
        status=403,
    )
    # Nor may the other center's terminal act with a local officer's PIN.
    await desk.officer(doc_id, "acknowledge", client=far, status=403)

    # Download in two parts (Range), as after a broken connection.
    half = len(pdf) // 2
    status, first, headers = await download(desk.terminal, doc_id, range_=f"bytes=0-{half - 1}")
    assert status == 206
    assert headers["Content-Range"] == f"bytes 0-{half - 1}/{len(pdf)}"
    status, rest, headers = await download(desk.terminal, doc_id, range_=f"bytes={half}-")
    assert status == 206
    assert headers["Content-Range"] == f"bytes {half}-{len(pdf) - 1}/{len(pdf)}"
    assert headers["X-Content-SHA256"] == issued["sha256"]
    assert headers["Accept-Ranges"] == "bytes"
    assert first + rest == pdf

    # A wrong hash is refused and delivers nothing.
    wrong = sha256(first + rest[:-1])
    await call(
        desk.terminal,
        "POST",
        f"/api/inbox/{entry['item']['id']}/received",
        json={"sha256": wrong},
        status=422,
        code="hash_mismatch",
    )
    assert (await desk.document(doc_id))["state"] == "issued"
    assert (await desk.item_of(desk.terminal, doc_id))["item"]["fetched_at"] is None

    item = await call(
        desk.terminal,
        "POST",
        f"/api/inbox/{entry['item']['id']}/received",
        json={"sha256": sha256(first + rest).upper()},
    )
    assert item["fetched_at"] is not None
    delivered = await desk.document(doc_id)
    assert delivered["state"] == "delivered"
    deliver_step = delivered["steps"][-1]
    assert deliver_step["action"] == "deliver"
    assert deliver_step["data"]["recipient"] == f"terminal:{desk.terminal_id}"

    # The officer's PIN: a wrong one changes nothing.
    await desk.officer(doc_id, "acknowledge", pin="999999", status=403, code="forbidden")
    await desk.officer(doc_id, "acknowledge", officer="nobody", status=403)
    unchanged = await desk.document(doc_id)
    assert unchanged["state"] == "delivered"
    assert unchanged["steps"] == delivered["steps"]
    # Skipping ahead is a conflict; the judge cannot act for the officer.
    await desk.officer(doc_id, "serve", status=409)
    await desk.officer(doc_id, "acknowledge", client=desk.judge, status=403)

    assert (await desk.officer(doc_id, "acknowledge"))["state"] == "acknowledged"
    item = (await desk.item_of(desk.terminal, doc_id))["item"]
    assert item["acknowledged_at"] is not None
    await desk.officer(doc_id, "serve", signature=None, status=422)
    await desk.officer(doc_id, "serve", signature="not base64!", status=422)
    served = await desk.officer(doc_id, "serve", signature=signature(300, 100))
    assert served["state"] == "served"
    executed = await desk.officer(doc_id, "execute")
    assert executed["state"] == "executed"
    assert [s["action"] for s in executed["steps"]] == [
        "draft",
        "approve",
        "issue",
        "deliver",
        "acknowledge",
        "serve",
        "execute",
    ]
    await desk.officer(doc_id, "execute", status=409)
    await desk.officer(doc_id, "refuse", reason="太晚了", status=409)

    # A sealed receipt for each step from delivery on; the judge has them all.
    docs = await desk.case_documents()
    receipts = {d["fields"]["action"]: d for d in docs if d["kind"] == "receipt"}
    assert set(receipts) == {"deliver", "acknowledge", "serve", "execute"}
    steps = {s["action"]: s for s in executed["steps"]}
    for action, receipt in receipts.items():
        assert receipt["parent_id"] == doc_id
        assert receipt["state"] == "final"
        assert steps[action]["receipt_id"] == receipt["id"]
        data = await desk.file(receipt["id"])
        assert sha256(data) == receipt["sha256"]
        assert await sealed(server, data, receipt["id"]) == kid
    judge_inbox = await call(desk.judge, "GET", "/api/inbox")
    assert {e["document"]["id"] for e in judge_inbox} >= {r["id"] for r in receipts.values()}
    assert receipts["serve"]["title"] == "送达回证"

    # 送达回证: served on the date the order reached the detention center; the right of review.
    text = pdf_text(await desk.file(receipts["serve"]["id"]))
    flat = "".join(text.split())
    delivered_at = datetime.fromisoformat(deliver_step["at"])
    assert f"送达日期{zh_date(delivered_at, True)}" in flat, flat
    assert "复议" in flat
    assert world.case.number in flat
    assert "陈警官" in flat

    # Executing the renewal adds the decided days from the end of the current period.
    async with services.store.read() as tx:
        detention = await tx.detention(world.detention.id)
    before = world.detention.periods[-1]
    assert len(detention.periods) == len(world.detention.periods) + 1
    added = detention.periods[-1]
    assert added.start == before.start + timedelta(days=before.days)
    assert added.start == world.detention.ends_at
    assert added.days == 10
    assert detention.ends_at == world.detention.ends_at + timedelta(days=10)
    assert detention.released_at is None

    # Every step is in the audit chain, which holds, and the rows agree with it.
    kinds = [e.kind for e in await audit_events(services, doc_id)]
    for kind in (
        "document.drafted",
        "document.approved",
        "document.issued",
        "document.fetched",
        "document.delivered",
        "document.acknowledged",
        "document.served",
        "document.executed",
        "detention.changed",
    ):
        assert kind in kinds, kinds
    assert kinds.index("document.drafted") < kinds.index("document.executed")
    for receipt in receipts.values():
        assert [e.kind for e in await audit_events(services, receipt["id"])] == [
            "document.receipt_issued"
        ]
    report = await services.auditor.verify()
    assert report.ok, report.summary()
    assert await services.registry.reconcile() == []


async def test_release_refused_then_executed_and_pin_lockout(
    server: LiveServer, desk: Desk
) -> None:
    world, services = desk.world, desk.services
    await desk.add_officer("officer2")

    # Refused at the delivered state: with a reason, which the receipt and the step keep.
    first = await desk.draft("release")
    await desk.approve(first["id"])
    await desk.issue(first["id"])
    await desk.receive(first["id"])
    await desk.officer(first["id"], "refuse", reason="", status=422)
    await desk.officer(first["id"], "refuse", reason="   ", status=422)
    refused = await desk.officer(first["id"], "refuse", reason="决定书被执行人姓名有误")
    assert refused["state"] == "refused"
    assert refused["steps"][-1]["data"]["reason"] == "决定书被执行人姓名有误"
    await desk.officer(first["id"], "acknowledge", status=409)
    receipt = next(
        d
        for d in await desk.case_documents()
        if d["parent_id"] == first["id"] and d["fields"]["action"] == "refuse"
    )
    assert receipt["title"] == "拒收回执"
    assert "决定书被执行人姓名有误" in "".join(pdf_text(await desk.file(receipt["id"])).split())

    # The second release goes through; a wrong PIN five times locks that officer out.
    second = await desk.draft("release")
    await desk.approve(second["id"])
    await desk.issue(second["id"])
    await desk.receive(second["id"])
    await desk.officer(second["id"], "acknowledge")
    await desk.officer(second["id"], "serve")
    for _ in range(5):
        await desk.officer(second["id"], "execute", officer="officer2", pin="000000", status=403)
    await desk.officer(second["id"], "execute", officer="officer2", status=429, code="rate_limited")
    assert (await desk.document(second["id"]))["state"] == "served"
    # Another officer is not locked out by officer2's failures.
    executed = await desk.officer(second["id"], "execute")
    assert executed["state"] == "executed"

    async with services.store.read() as tx:
        detention = await tx.detention(world.detention.id)
    assert detention.released_at is not None
    assert detention.periods == world.detention.periods
    # The detention has ended: no more orders for it.
    await call(
        desk.judge,
        "POST",
        "/api/documents/orders",
        json={"kind": "release", "detention_id": world.detention.id, "reason": "再次"},
        csrf=desk.judge_csrf,
        status=409,
    )
    kinds = [e.kind for e in await audit_events(services)]
    assert "document.refused" in kinds
    assert kinds.count("detention.changed") == 1
    assert (await services.auditor.verify()).ok
    assert await services.registry.reconcile() == []


async def test_a_renewal_overtaken_by_another_is_not_executed(
    server: LiveServer, desk: Desk
) -> None:
    """Two renewals decided from the same date: once one is executed, the other's printed
    period is no longer the one that would follow; executing it is refused, nothing changes."""
    services, world = desk.services, desk.world
    first = await desk.draft("renewal", days=5)
    second = await desk.draft("renewal", days=7)
    assert (
        first["fields"]["from"] == second["fields"]["from"] == world.detention.ends_at.isoformat()
    )
    for order in (first, second):
        await desk.approve(order["id"])
        await desk.issue(order["id"])
        await desk.receive(order["id"])
        await desk.officer(order["id"], "acknowledge")
        await desk.officer(order["id"], "serve")
    assert (await desk.officer(first["id"], "execute"))["state"] == "executed"
    problem = await desk.officer(second["id"], "execute", status=409, code="conflict")
    assert "period changed" in problem["detail"]
    assert (await desk.document(second["id"]))["state"] == "served"
    async with services.store.read() as tx:
        detention = await tx.detention(world.detention.id)
    assert [p.days for p in detention.periods] == [15, 5]
    assert (await desk.officer(second["id"], "refuse", reason="已被另一续拘决定取代"))[
        "state"
    ] == "refused"
    assert [e.kind for e in await audit_events(services)].count("detention.changed") == 1
    assert (await services.auditor.verify()).ok
    assert await services.registry.reconcile() == []


# Settlement ------------------------------------------------------------------------------------


async def test_settlement_signed_by_both_sides_and_confirmed(
    server: LiveServer, desk: Desk
) -> None:
    services, world = desk.services, desk.world
    debtor_seat = await desk.invitee("debtor")
    creditor = await desk.invitee("creditor")
    officer_seat = await desk.invitee("officer")
    body = {
        "case_id": world.case.id,
        "terms": "被执行人于2024年12月31日前分三期支付人民币356000元。",
        "amount_fen": 35_600_000,
        "due": "2024-12-31",
    }
    await call(
        desk.approver,
        "POST",
        "/api/documents/settlements",
        json=body,
        csrf=desk.approver_csrf,
        status=403,
    )
    await call(creditor, "POST", "/api/documents/settlements", json=body, status=401)
    draft = await call(
        desk.judge,
        "POST",
        "/api/documents/settlements",
        json=body,
        csrf=desk.judge_csrf,
        status=201,
    )
    doc_id = draft["id"]
    assert draft["state"] == "drafted"
    assert draft["signed_by"] is None  # the draft is not sealed
    # Both sides (and the terminal, where the debtor is) have the draft to read and sign.
    for client in (creditor, debtor_seat, desk.terminal):
        assert (await desk.item_of(client, doc_id))["document"]["state"] == "drafted"

    # The creditor fetches the draft (hash checked) before signing.
    draft_item = (await desk.item_of(creditor, doc_id))["item"]
    status, data, _ = await download(creditor, doc_id)
    assert status == 200
    assert sha256(data) == draft["sha256"]
    await call(
        creditor,
        "POST",
        f"/api/inbox/{draft_item['id']}/received",
        json={"sha256": sha256(data)},
    )
    assert (await desk.item_of(creditor, doc_id))["item"]["fetched_at"] is not None

    debtor_png, creditor_png = signature(240, 90), signature(260, 110, (0, 0, 160))
    sign = f"/api/documents/{doc_id}/sign"
    # At the terminal the officer witnesses with their PIN; without it the terminal cannot sign.
    await call(desk.terminal, "POST", sign, json={"signature": debtor_png}, status=403)
    await call(
        desk.terminal,
        "POST",
        sign,
        json={"signature": debtor_png, "officer": "officer", "pin": "111111"},
        status=403,
    )
    await call(
        desk.judge, "POST", sign, json={"signature": debtor_png}, csrf=desk.judge_csrf, status=403
    )
    await call(creditor, "POST", sign, json={"signature": "AAAA"}, status=422)
    signed_once = await call(
        desk.terminal,
        "POST",
        sign,
        json={"signature": debtor_png, "officer": "officer", "pin": PIN},
    )
    assert signed_once["state"] == "drafted"  # the creditor has not signed yet
    await call(
        desk.judge, "POST", f"/api/documents/{doc_id}/confirm", csrf=desk.judge_csrf, status=409
    )
    both = await call(creditor, "POST", sign, json={"signature": creditor_png})
    assert both["state"] == "signed"
    assert [s["data"]["seat"] for s in both["steps"] if s["action"] == "sign"] == [
        "debtor",
        "creditor",
    ]
    await call(creditor, "POST", sign, json={"signature": creditor_png}, status=409)
    await call(
        desk.approver,
        "POST",
        f"/api/documents/{doc_id}/confirm",
        csrf=desk.approver_csrf,
        status=403,
    )

    confirmed = await call(
        desk.judge, "POST", f"/api/documents/{doc_id}/confirm", csrf=desk.judge_csrf
    )
    assert confirmed["state"] == "issued"
    assert confirmed["sha256"] != draft["sha256"]
    final = await desk.file(doc_id)
    assert sha256(final) == confirmed["sha256"]
    await sealed(server, final, doc_id)
    images = pdf_images(final)
    print(f"settlement PDF: {len(final)} bytes, images {images}")
    assert (240, 90) in images
    assert (260, 110) in images
    assert (240, 90) not in pdf_images(await _draft_copy(services, draft))

    # Every party's inbox has the final copy, to fetch (and hash-check) again: the creditor's
    # item of the draft is the same item, no longer marked fetched.
    assert (await desk.item_of(creditor, doc_id))["item"]["id"] == draft_item["id"]
    for client in (creditor, debtor_seat, officer_seat, desk.terminal):
        entry = await desk.item_of(client, doc_id)
        assert entry["document"]["state"] == "issued"
        assert entry["document"]["sha256"] == confirmed["sha256"]
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
    assert (await desk.document(doc_id))["state"] == "issued"
    kinds = [e.kind for e in await audit_events(services, doc_id)]
    assert kinds[:5] == [
        "document.drafted",
        "document.fetched",
        "document.signed",
        "document.signed",
        "document.confirmed",
    ]
    assert (await services.auditor.verify()).ok
    assert await services.registry.reconcile() == []


async def _draft_copy(services: Services, draft: dict[str, Any]) -> bytes:
    """The unsigned draft as it was rendered (the final copy replaced the stored file)."""
    async with services.store.read() as tx:
        case = await tx.case(draft["case_id"])
        document = await tx.document(draft["id"])
    pdf, _ = await services.registry.printer.print(
        "settlement",
        {
            "document": document,
            "case": case,
            "signatures": {},
            "issued_at": document.created_at,
            "draft": True,
        },
        document_id=document.id,
        seal=False,
    )
    return pdf


# Payments --------------------------------------------------------------------------------------


async def test_creditor_confirms_a_payment(server: LiveServer, desk: Desk) -> None:
    world, services = desk.world, desk.services
    creditor = await desk.invitee("creditor")
    debtor = await desk.invitee("debtor")
    path = f"/api/cases/{world.case.id}/payments"
    case = await call(desk.judge, "GET", f"/api/cases/{world.case.id}")
    assert case["amount_paid_fen"] == 0
    owed = case["amount_outstanding_fen"]

    await call(desk.judge, "POST", path, json={"amount_fen": 100}, csrf=desk.judge_csrf, status=403)
    await call(debtor, "POST", path, json={"amount_fen": 100}, status=403)
    await call(creditor, "POST", path, json={"amount_fen": 0}, status=422)
    await call(creditor, "POST", path, json={"amount_fen": owed + 1}, status=422)

    proof = await call(
        creditor, "POST", path, json={"amount_fen": 10_000_000, "note": "银行转账"}, status=201
    )
    assert proof["kind"] == "payment_proof"
    assert proof["state"] == "final"
    assert proof["title"] == "收款确认书"
    await sealed(server, await desk.file(proof["id"]), proof["id"])
    case = await call(desk.judge, "GET", f"/api/cases/{world.case.id}")
    assert case["amount_paid_fen"] == 10_000_000
    assert case["amount_outstanding_fen"] == owed - 10_000_000
    # More than what is still outstanding is refused, and nothing changes.
    await call(creditor, "POST", path, json={"amount_fen": owed - 10_000_000 + 1}, status=422)
    case = await call(desk.judge, "GET", f"/api/cases/{world.case.id}")
    assert case["amount_paid_fen"] == 10_000_000
    # The judge and the debtor are told.
    assert proof["id"] in {e["document"]["id"] for e in await call(desk.judge, "GET", "/api/inbox")}
    assert proof["id"] in {e["document"]["id"] for e in await call(debtor, "GET", "/api/inbox")}
    [event] = [e for e in await audit_events(services, proof["id"])]
    assert event.kind == "document.payment_confirmed"
    assert event.data["paid_fen"] == 10_000_000
    assert await services.registry.reconcile() == []


# Uploads -----------------------------------------------------------------------------------------


def _stored_files(services: Services) -> set[Path]:
    return {p for p in services.files.directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("settings", [{"documents": {"max_upload_mb": 1}}], indirect=True)
async def test_uploads_are_parsed_whole(server: LiveServer, desk: Desk) -> None:
    services, world = desk.services, desk.world
    creditor = await desk.invitee("creditor")
    path = f"/api/cases/{world.case.id}/uploads"
    pdf, png, jpeg = small_pdf(), noise_png(200_000), jpeg_bytes()

    async def upload(
        client: Any,
        data: bytes,
        media_type: str,
        name: str,
        *,
        status: int = 201,
        code: str | None = None,
        csrf: str | None = None,
    ) -> Any:
        import aiohttp

        form = aiohttp.FormData(quote_fields=False)  # browsers send raw UTF-8 names
        form.add_field("file", data, filename=name, content_type=media_type)
        return await call(client, "POST", path, data=form, csrf=csrf, status=status, code=code)

    accepted = []
    for data, media_type, name in (
        (pdf, "application/pdf", "还款凭证.pdf"),
        (png, "image/png", "转账截图.png"),
        (jpeg, "image/jpeg", "收据.jpg"),
    ):
        doc = await upload(desk.judge, data, media_type, name, csrf=desk.judge_csrf)
        assert doc["kind"] == "upload"
        assert doc["state"] == "final"
        assert doc["media_type"] == media_type
        assert doc["sha256"] == sha256(data)
        assert doc["file_name"] == name
        status, stored, headers = await download(desk.judge, doc["id"])
        assert status == 200
        assert stored == data
        assert headers["Content-Type"] == media_type
        accepted.append(doc)
    by_creditor = await upload(creditor, png, "image/png", "a/b\\c.png")
    assert by_creditor["file_name"] == "a_b_c.png"
    assert by_creditor["fields"]["uploaded_by_seat"] == "creditor"
    await upload(desk.approver, png, "image/png", "x.png", csrf=desk.approver_csrf, status=403)

    docs_before = await desk.case_documents()
    files_before = _stored_files(services)
    events_before = len(await audit_events(services))
    # (file, declared type, code, words the problem's detail must contain)
    refused: list[tuple[bytes, str, str, str]] = [
        (pdf[: len(pdf) // 2], "application/pdf", "bad_file", "PDF cannot be read"),
        (pdf[:-40], "application/pdf", "bad_file", "PDF cannot be read"),
        (png[: len(png) // 2], "image/png", "bad_file", "PNG file is incomplete"),
        (png[:-12], "image/png", "bad_file", "PNG file is incomplete"),
        (jpeg[: len(jpeg) // 2], "image/jpeg", "bad_file", "JPEG file is incomplete"),
        (jpeg[:-2], "image/jpeg", "bad_file", "JPEG file is incomplete"),
        (png, "image/jpeg", "bad_file", "the file is PNG, not JPEG"),
        (jpeg, "image/png", "bad_file", "the file is JPEG, not PNG"),
        (pdf, "image/png", "bad_file", "not a PNG image"),
        (
            b"%PDF-1.7\nthis is only text pretending to be a PDF\n%%EOF\n",
            "application/pdf",
            "bad_file",
            "PDF cannot be read",
        ),
        (b"just text", "text/plain", "unsupported_type", "only PDF, PNG and JPEG"),
        (b"", "application/pdf", "bad_file", "empty"),
        # Refused from its Content-Length, and (just over) while it streams in.
        (noise_png(1_300_000), "image/png", "too_large", "larger than 1 MB"),
        (noise_png(1024 * 1024 + 20_000), "image/png", "too_large", "larger than 1 MB"),
    ]
    for data, media_type, code, words in refused:
        problem = await upload(
            desk.judge, data, media_type, "x", csrf=desk.judge_csrf, status=422, code=code
        )
        assert words in problem["detail"], problem
        print(f"refused {len(data)} bytes as {media_type}: {problem['detail']}")
    # Not multipart at all.
    await call(desk.judge, "POST", path, json={"file": "x"}, csrf=desk.judge_csrf, status=422)
    assert await desk.case_documents() == docs_before
    assert _stored_files(services) == files_before
    assert len(await audit_events(services)) == events_before
    assert await services.registry.reconcile() == []


# The overdue alert -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{"documents": {"ack_timeout_minutes": 0.02, "overdue_check_seconds": 0.2}}],
    indirect=True,
)
async def test_unacknowledged_order_alerts_the_judge(server: LiveServer, desk: Desk) -> None:
    services = desk.services
    judge_socket = Listener()
    other_socket = Listener()
    try:
        await judge_socket.connect(
            server.url,
            auth={"as": "account"},
            cookies={"cl_session": cookie_of(desk.judge, "cl_session")},
        )
        other, _ = await desk.account("judge2")
        await other_socket.connect(
            server.url,
            auth={"as": "account"},
            cookies={"cl_session": cookie_of(other, "cl_session")},
        )
        order = await desk.draft("renewal", days=5)
        await desk.approve(order["id"])
        issued_at = time.perf_counter()
        await desk.issue(order["id"])
        await desk.receive(order["id"])
        at, message = await judge_socket.wait_for(
            "document.overdue", lambda m: m["document"]["id"] == order["id"], within=15
        )
        print(f"overdue alert {at - issued_at:.2f} s after issue (timeout 1.2 s)")
        assert message["document"]["number"] == order["number"]
        assert message["item"]["recipient"] in (
            f"terminal:{desk.terminal_id}",
            f"seat:{desk.world.case.id}:officer",
        )
        # Once per item (the terminal's and the officer seat's), however often the watch runs.
        await asyncio.sleep(1.0)
        alerts = [
            m for m in judge_socket.of("document.overdue") if m["document"]["id"] == order["id"]
        ]
        assert sorted(m["item"]["recipient"] for m in alerts) == sorted(
            [f"seat:{desk.world.case.id}:officer", f"terminal:{desk.terminal_id}"]
        )
        events = [
            e for e in await audit_events(services, order["id"]) if e.kind == "document.overdue"
        ]
        assert len(events) == 2
        assert all(e.actor == "system" for e in events)
        # The judge's dashboard marks it.
        async with desk.judge.get("/dashboard/documents") as r:
            assert r.status == 200
            html = await r.text()
        assert "overdue" in html
        # The other judge's dashboard (staff) hears of it too, also once per item.
        assert len(other_socket.of("document.overdue")) == 2
        # Acknowledging afterwards still works and raises no new alert.
        await desk.officer(order["id"], "acknowledge")
        await asyncio.sleep(0.6)
        assert len(judge_socket.of("document.overdue")) == 2
    finally:
        await judge_socket.close()
        await other_socket.close()
    assert (await services.auditor.verify()).ok
    assert await services.registry.reconcile() == []
