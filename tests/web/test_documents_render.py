"""Rendering through the real printer (Jinja2, WeasyPrint, the court's seal): rare characters in
names come out as themselves, from an embedded font that has them, and every PDF names itself.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

from pyhanko.pdf_utils.reader import PdfFileReader

from courtlink.court.documents.lifecycle import DocKind
from courtlink.court.policy import AccountPrincipal
from courtlink.web.keys import SEAL, SETTINGS
from courtlink.web.services import Services
from tests.conftest import LiveServer
from tests.helpers import World
from tests.web.documents_support import CENTER, pdf_fonts, pdf_text, sha256

# U+20000 and U+23456 are in CJK Extension B: Noto CJK has neither; HanaMinB has both (U+20000
# is also in HanaMinA, which comes first in the font list; U+23456 is only in HanaMinB).
RARE = "\U00020000\U00023456"
NAME = f"李{RARE}"


async def test_rare_characters_render_with_an_embedded_font(
    server: LiveServer, services: Services, world: World
) -> None:
    judge = AccountPrincipal(world.judge)
    case = await services.clerk.create_case(
        judge,
        number="(2024)苏0903执2000号",
        creditor_name="王建国",
        debtor_name=NAME,
        amount_owed_fen=1_000_000,
    )
    detention = await services.clerk.create_detention(
        judge,
        case_id=case.id,
        center=CENTER,
        start=datetime.now(UTC) - timedelta(days=1),
        days=10,
    )
    assert detention.debtor_name == NAME
    registry = services.registry
    order = await registry.draft_order(
        judge, kind=DocKind.RENEWAL, detention_id=detention.id, reason="拒不履行", days=5
    )
    await registry.approve(AccountPrincipal(world.approver), order.id)
    started = time.perf_counter()
    issued = await registry.issue(judge, order.id)
    print(f"rendered, sealed and stored in {time.perf_counter() - started:.2f} s")
    pdf = await services.files.get(issued.id)
    assert sha256(pdf) == issued.sha256

    fonts = pdf_fonts(pdf)
    print("fonts:", ", ".join(f"{f['name']} emb={f['emb']}" for f in fonts))
    assert all(f["emb"] == "yes" for f in fonts), fonts
    assert any(f["name"].split("+")[-1].startswith("HanaMinB") for f in fonts), fonts

    text = pdf_text(pdf)
    flat = "".join(text.split())
    assert f"被拘留人：{NAME}，" in flat
    assert f"对被拘留人{NAME}续行拘留5日" in flat
    assert flat.count(NAME) >= 4
    # No replacement characters or empty boxes where a glyph was missing.
    assert "\ufffd" not in text
    assert "\u25a1" not in text
    assert "\U00020000" in text
    assert "\U00023456" in text

    # The PDF names itself: its number, its id, where to verify it; and its /Subject.
    assert issued.number == f"{case.number}之一"
    assert f"文书编号：{issued.number}" in flat
    assert f"文书ID：{issued.id}" in flat
    public_url = server.app[SETTINGS].public_url
    assert f"{public_url}/verify/{issued.id}" in flat
    reader = PdfFileReader(io.BytesIO(pdf))
    info = reader.trailer_view["/Info"]
    assert str(info["/Subject"]) == f"courtlink:document:{issued.id}"
    assert str(info["/Title"]) == "续拘决定书"
    report = await server.app[SEAL].averify(pdf)
    assert report.ok, report.problems
    assert report.document_id == issued.id
