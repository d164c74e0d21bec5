"""The role policy of every documents route (tag 'documents' in web.api.build_api), on the real
app: each kind of principal calls each route on a document in the state that route needs, and
gets exactly the expected status. tests/web/test_api.py has the matrix of the other routes.

Rendering is not what this tests: the registry's printer renders each template once (for real)
and reuses that PDF, so a dozen documents per principal cost milliseconds.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import aiohttp
import pytest
from PIL import Image

from courtlink.court.documents.lifecycle import DocAction, DocKind
from courtlink.court.policy import AccountPrincipal, InvitePrincipal, Principal
from courtlink.web.api import build_api
from courtlink.web.services import Services
from tests.conftest import LiveServer
from tests.helpers import PIN, World
from tests.web.documents_support import (
    CENTER,
    FAR_CENTER,
    Clients,
    Desk,
    open_desk,
    signature,
)
from tests.web.support import assert_problem

PRINCIPALS = [
    "judge",  # the case's judge
    "judge2",  # another judge
    "approver",
    "officer",  # an officer account of the detention's center (logs in with a password)
    "admin",  # an administrator, a judge but not this case's
    "anonymous",
    "creditor",  # the creditor's invite
    "debtor",  # the debtor's invite
    "terminal",  # a terminal of the detention's center
    "far_terminal",  # a terminal of another center
]


def row(
    judge: int,
    judge2: int,
    approver: int,
    officer: int,
    admin: int,
    anonymous: int,
    creditor: int,
    debtor: int,
    terminal: int,
    far_terminal: int,
) -> dict[str, int]:
    return {
        "judge": judge,
        "judge2": judge2,
        "approver": approver,
        "officer": officer,
        "admin": admin,
        "anonymous": anonymous,
        "creditor": creditor,
        "debtor": debtor,
        "terminal": terminal,
        "far_terminal": far_terminal,
    }


#                        judge judge2 appr. officer admin anon. cred. debtor term. far
_READ_ORDER = row(200, 403, 200, 200, 403, 401, 403, 200, 200, 403)
_OFFICER_STEP = row(403, 403, 403, 200, 403, 401, 403, 403, 200, 403)
_JUDGE_ONLY = row(200, 403, 403, 403, 403, 401, 401, 401, 401, 401)

# (name, method, path, body, expected). {x} in a path is a document (or item) prepared for that
# route in the state it needs; reads come first, and each mutation has its own document.
MATRIX: list[tuple[str, str, str, str | None, dict[str, int]]] = [
    ("keys", "GET", "/api/keys", None, row(*[200] * 10)),
    (
        "list documents",
        "GET",
        "/api/documents",
        None,
        row(200, 200, 200, 403, 200, 401, 401, 401, 401, 401),
    ),
    ("inbox", "GET", "/api/inbox", None, row(200, 200, 200, 200, 200, 401, 200, 200, 200, 200)),
    ("read an order", "GET", "/api/documents/{issued}", None, _READ_ORDER),
    ("an order's file", "GET", "/api/documents/{issued}/file", None, _READ_ORDER),
    (
        "read a draft agreement",
        "GET",
        "/api/documents/{settlement}",
        None,
        row(200, 403, 200, 200, 403, 401, 200, 200, 200, 403),
    ),
    (
        "draft an order",
        "POST",
        "/api/documents/orders",
        "order",
        row(201, 403, 403, 403, 403, 401, 401, 401, 401, 401),
    ),
    (
        "approve",
        "POST",
        "/api/documents/{drafted}/approve",
        None,
        row(403, 403, 200, 403, 403, 401, 401, 401, 401, 401),
    ),
    ("issue", "POST", "/api/documents/{approved}/issue", None, _JUDGE_ONLY),
    ("acknowledge", "POST", "/api/documents/{delivered}/acknowledge", "officer", _OFFICER_STEP),
    ("serve", "POST", "/api/documents/{acknowledged}/serve", "serve", _OFFICER_STEP),
    ("execute", "POST", "/api/documents/{served}/execute", "officer", _OFFICER_STEP),
    ("refuse", "POST", "/api/documents/{refusable}/refuse", "refuse", _OFFICER_STEP),
    (
        "draft an agreement",
        "POST",
        "/api/documents/settlements",
        "settlement",
        row(201, 403, 403, 403, 403, 401, 401, 401, 401, 401),
    ),
    (
        # With the officer's name and PIN in the body: at the center it is the debtor signing,
        # witnessed by the officer.
        "sign",
        "POST",
        "/api/documents/{settlement}/sign",
        "sign",
        row(403, 403, 403, 200, 403, 401, 200, 200, 200, 403),
    ),
    ("confirm", "POST", "/api/documents/{signed}/confirm", None, _JUDGE_ONLY),
    # Transcripts: the clerk (tests/web/test_documents_transcripts.py) or the case's judge.
    (
        "draft a transcript",
        "POST",
        "/api/documents/transcripts",
        "transcript",
        row(201, 403, 403, 403, 403, 401, 401, 401, 401, 401),
    ),
    (
        "save a transcript",
        "PUT",
        "/api/documents/{transcript}/transcript",
        "text",
        row(200, 403, 403, 403, 403, 401, 403, 403, 403, 403),
    ),
    ("share", "POST", "/api/documents/{upload}/share", "share", _JUDGE_ONLY),
    (
        "confirm a payment",
        "POST",
        "/api/cases/{case}/payments",
        "payment",
        row(403, 403, 403, 403, 403, 401, 201, 403, 403, 403),
    ),
    (
        "upload",
        "POST",
        "/api/cases/{case}/uploads",
        "upload",
        row(201, 403, 403, 201, 403, 401, 201, 201, 403, 403),
    ),
    (
        "received",
        "POST",
        "/api/inbox/{item}/received",
        "received",
        row(403, 403, 403, 403, 403, 401, 403, 403, 200, 403),
    ),
]

_ROUTE_NAMES = {
    "{issued}": "{document_id}",
    "{settlement}": "{document_id}",
    "{drafted}": "{document_id}",
    "{approved}": "{document_id}",
    "{delivered}": "{document_id}",
    "{acknowledged}": "{document_id}",
    "{served}": "{document_id}",
    "{refusable}": "{document_id}",
    "{signed}": "{document_id}",
    "{transcript}": "{document_id}",
    "{upload}": "{document_id}",
    "{case}": "{case_id}",
    "{item}": "{item_id}",
}


def _template(path: str) -> str:
    for short, long in _ROUTE_NAMES.items():
        path = path.replace(short, long)
    return path


def test_the_matrix_covers_every_documents_route() -> None:
    routes = {(r.method, r.path) for r in build_api("test").routes if r.tag == "documents"}
    covered = {(method, _template(path)) for _, method, path, _, _ in MATRIX}
    assert routes - covered == set(), "documents routes without a line in MATRIX"
    assert covered - routes == set(), "MATRIX lines for routes that do not exist"
    assert len(routes) == 21
    for name, *_, expected in MATRIX:
        assert set(expected) == set(PRINCIPALS), name


# Preparing documents in every state ----------------------------------------------------------


_RENDERED: dict[tuple[str, bool], tuple[bytes, str | None]] = {}


class RenderOnce:
    """The real printer, once per template; later documents reuse that PDF."""

    def __init__(self, real: Any) -> None:
        self.real = real

    async def print(
        self, template: str, context: dict[str, Any], *, document_id: str, seal: bool = True
    ) -> tuple[bytes, str | None]:
        key = (template, seal)
        if key not in _RENDERED:
            _RENDERED[key] = await self.real.print(
                template, context, document_id=document_id, seal=seal
            )
        return _RENDERED[key]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (255, 255, 255)).save(out, "PNG")
    return out.getvalue()


async def _prepare(desk: Desk) -> dict[str, str]:
    """A document in the state each route needs, made through the Registry."""
    services, world = desk.services, desk.world
    registry = services.registry
    registry.printer = RenderOnce(registry.printer)
    judge = AccountPrincipal(world.judge)
    approver = AccountPrincipal(world.approver)
    terminal = await services.gate.terminal_for(desk.credential)

    async def invite(name: str) -> Principal:
        return InvitePrincipal(await services.clerk.check_invite(world.tokens[name]))

    async def order(steps: int) -> str:
        """An order taken ``steps`` steps from drafted (1 approved, 2 issued, 3 delivered...)."""
        document = await registry.draft_order(
            judge, kind=DocKind.RENEWAL, detention_id=world.detention.id, reason="x", days=3
        )
        if steps >= 1:
            await registry.approve(approver, document.id)
        if steps >= 2:
            document = await registry.issue(judge, document.id)
        if steps >= 3:
            [item] = [i for i, d in await registry.inbox(terminal) if d.id == document.id]
            assert document.sha256 is not None
            await registry.received(terminal, item.id, document.sha256)
        for action in (DocAction.ACKNOWLEDGE, DocAction.SERVE)[: max(0, steps - 3)]:
            await registry.officer_step(
                terminal, document.id, action, officer="officer", pin=PIN, signature_png=_png()
            )
        return document.id

    issued = await order(2)
    [item] = [i for i, d in await registry.inbox(terminal) if d.id == issued]
    settlement = await registry.draft_settlement(
        judge, case_id=world.case.id, terms="分期付款", amount_fen=100_000
    )
    signed = await registry.draft_settlement(
        judge, case_id=world.case.id, terms="一次付清", amount_fen=200_000
    )
    await registry.sign(await invite("debtor"), signed.id, _png())
    await registry.sign(await invite("creditor"), signed.id, _png())
    upload = await registry.upload(
        judge, case_id=world.case.id, data=_png(), media_type="image/png", file_name="a.png"
    )
    # A session of its own: world.session's transcript is the one the draft route starts.
    other_session = await services.clerk.create_session(judge, case_id=world.case.id)
    transcript = await registry.draft_transcript(
        judge, session_id=other_session.id, text="审判长：开庭。"
    )
    return {
        "{issued}": issued,
        "{item}": item.id,
        "{settlement}": settlement.id,
        "{drafted}": await order(0),
        "{approved}": await order(1),
        "{delivered}": await order(3),
        "{acknowledged}": await order(4),
        "{served}": await order(5),
        "{refusable}": await order(3),
        "{signed}": signed.id,
        "{upload}": upload.id,
        "{transcript}": transcript.id,
        "{case}": world.case.id,
    }


async def _as(who: str, desk: Desk) -> tuple[aiohttp.ClientSession, dict[str, str]]:
    """A client acting as ``who`` and the headers it sends (an account's CSRF token)."""
    if who in ("judge", "judge2", "approver", "admin"):
        client, csrf = await desk.account(who)
        return client, {"X-CSRF-Token": csrf}
    if who == "officer":
        client, csrf = await desk.officer_desk()
        return client, {"X-CSRF-Token": csrf}
    if who in ("creditor", "debtor"):
        return await desk.invitee(who), {}
    if who == "terminal":
        return desk.terminal, {}
    if who == "far_terminal":
        client, _ = await desk.new_terminal("南京终端", FAR_CENTER)
        return client, {}
    return desk.clients(), {}


def _bodies(desk: Desk, ids: dict[str, str]) -> dict[str, Any]:
    officer = {"officer": "officer", "pin": PIN}
    return {
        "order": {
            "kind": "release",
            "detention_id": desk.world.detention.id,
            "reason": "已履行",
        },
        "officer": officer,
        "serve": {**officer, "signature": signature()},
        "refuse": {**officer, "reason": "文书有误"},
        "settlement": {"case_id": desk.world.case.id, "terms": "和解", "amount_fen": 1000},
        "sign": {**officer, "signature": signature()},
        "transcript": {"session_id": desk.world.session.id, "text": "书记员：记录开始。"},
        "text": {"text": "审判长：开庭，核对当事人身份。"},
        "share": {"recipients": [f"terminal:{desk.terminal_id}"]},
        "payment": {"amount_fen": 100},
        "received": None,  # the sha256 of the document of the item, filled in below
        "upload": None,  # multipart
    }


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_role_policy_of_every_documents_route(
    server: LiveServer, services: Services, world: World, clients: Clients, who: str
) -> None:
    desk = await open_desk(server, services, world, clients)
    assert world.detention.center == CENTER
    ids = await _prepare(desk)
    client, headers = await _as(who, desk)
    bodies = _bodies(desk, ids)
    async with services.store.read() as tx:
        bodies["received"] = {"sha256": (await tx.document(ids["{issued}"])).sha256}
    wrong: list[str] = []
    for name, method, template, body_name, expected in MATRIX:
        path = template
        for key, value in ids.items():
            path = path.replace(key, value)
        kwargs: dict[str, Any] = {"headers": headers}
        if body_name == "upload":
            form = aiohttp.FormData()
            form.add_field("file", _png(), filename="x.png", content_type="image/png")
            kwargs["data"] = form
        elif body_name is not None:
            kwargs["json"] = bodies[body_name]
        async with client.request(method, path, **kwargs) as r:
            if r.status >= 400:
                problem = await assert_problem(r, r.status)
                assert problem["code"] != "csrf_failed", (name, problem)
                detail = problem["detail"]
            else:
                await r.read()
                detail = ""
            if r.status != expected[who]:
                wrong.append(
                    f"{name}: {method} {template} -> {r.status} ({detail}), "
                    f"expected {expected[who]}"
                )
    assert not wrong, "\n".join(wrong)


async def test_officer_steps_need_name_and_pin_in_the_body(
    server: LiveServer, services: Services, world: World, clients: Clients
) -> None:
    """The body's officer and PIN are required fields, for every officer step."""
    desk = await open_desk(server, services, world, clients)
    ids = await _prepare(desk)
    for action, key in (("acknowledge", "{delivered}"), ("refuse", "{refusable}")):
        for body in ({}, {"officer": "officer"}, {"pin": PIN}, {"officer": "", "pin": PIN}):
            async with desk.terminal.post(
                f"/api/documents/{ids[key]}/{action}", json={**body, "reason": "r"}
            ) as r:
                await assert_problem(r, 422, "invalid_input")
    async with desk.terminal.post(
        f"/api/documents/{ids['{delivered}']}/acknowledge",
        json={"officer": "officer", "pin": PIN, "extra": 1},
    ) as r:
        await assert_problem(r, 422, "invalid_input")
    document = await services.registry.find(ids["{delivered}"])
    assert str(document.state) == "delivered"


def test_a_signature_is_base64_png() -> None:
    assert base64.b64decode(signature()).startswith(b"\x89PNG")
