"""Every message the pages can show has a Chinese translation, and the catalog holds nothing
that no page uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po

from courtlink.court.detentions import DetentionStatus
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.sessions import SessionState
from courtlink.web.i18n import DEFAULT_LANG, Translator

PACKAGE = Path(__file__).resolve().parents[2] / "courtlink"
WEB = PACKAGE / "web"
PO = WEB / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"

# Ids a template translates from a variable (``_(seat.value)``, ``_(row.status)``...).
DYNAMIC = {
    *(str(s) for s in Seat),
    *(str(r) for r in AccountRole),
    *(str(s) for s in DetentionStatus),
    *(str(s) for s in SessionState),
}


def _ids(results: object) -> set[str]:
    found = set()
    for _lineno, message, _comments, _context in results:  # type: ignore[attr-defined]
        found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def template_ids() -> set[str]:
    ids: set[str] = set()
    for template in sorted((WEB / "templates").rglob("*.html")):
        with template.open("rb") as handle:
            ids |= _ids(
                extract(
                    "jinja2.ext:babel_extract",
                    handle,
                    options={"extensions": "jinja2.ext.i18n"},
                )
            )
    return ids


def python_ids() -> set[str]:
    """``_t(request, "...")`` calls and ``N_("...")`` marks in courtlink/ (babel.cfg keywords)."""
    ids: set[str] = set()
    for module in sorted(PACKAGE.rglob("*.py")):
        with module.open("rb") as handle:
            ids |= _ids(extract("python", handle, keywords={"_t": (2,), "N_": None}))
    return ids


def catalog() -> dict[str, str]:
    with PO.open("rb") as handle:
        po = read_po(handle, locale="zh_CN")
    return {str(m.id): str(m.string) for m in po if m.id}


def test_extraction_finds_the_messages() -> None:
    """A guard for the test itself: the extractors see templates and Python alike."""
    templates, python = template_ids(), python_ids()
    assert {"Log in", "Dashboard", "Agree and continue", "Expiring soon"} <= templates
    assert "Officers work at the detention-center terminal." in python
    assert len(templates) > 50


@pytest.mark.parametrize("source", ["templates", "python", "dynamic"])
def test_every_message_has_a_chinese_translation(source: str) -> None:
    wanted = {"templates": template_ids, "python": python_ids, "dynamic": lambda: DYNAMIC}[source]()
    translations = catalog()
    missing = sorted(m for m in wanted if m not in translations)
    empty = sorted(m for m in wanted if m in translations and not translations[m].strip())
    assert not missing, f"no zh_CN entry in {PO.name} for: {missing}"
    assert not empty, f"empty zh_CN translation for: {empty}"


def test_translations_are_chinese() -> None:
    """A translation left in English (copied id) is as bad as a missing one."""
    for message, translated in catalog().items():
        assert translated != message, message
        assert any("\u4e00" <= ch <= "\u9fff" for ch in translated), (message, translated)


def test_no_translation_is_left_over() -> None:
    used = template_ids() | python_ids() | DYNAMIC
    unused = sorted(set(catalog()) - used)
    assert not unused, f"{PO.name} holds messages no page uses: {unused}"


def test_catalog_has_no_fuzzy_or_duplicate_entries() -> None:
    with PO.open("rb") as handle:
        po = read_po(handle, locale="zh_CN")
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    assert not fuzzy, fuzzy
    text = PO.read_text(encoding="utf-8")
    ids = [line for line in text.splitlines() if line.startswith("msgid ")]
    single = [i for i in ids if i != 'msgid ""']
    assert len(single) == len(set(single)), "duplicate msgid"


def test_translator_compiles_the_catalog() -> None:
    translator = Translator()
    assert DEFAULT_LANG == "zh-CN"
    assert translator.gettext("zh-CN", "Log in") == "登录"
    assert translator.gettext("zh-CN", "creditor") == "申请执行人"
    assert translator.gettext("en", "Log in") == "Log in"
    assert translator.gettext("xx", "Log in") == "Log in"  # unknown languages fall back
