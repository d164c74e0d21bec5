"""Chinese first, with an English switch: Babel catalogs and Jinja2's i18n extension.

Templates are written with English message ids (``{{ _("Join") }}``) and the zh_CN catalog in
web/locale translates them; the default language is zh-CN. Catalogs are compiled from their .po
files when the app starts, so there is no build step and no compiled file in the repository.
"""

from __future__ import annotations

import io
from importlib import resources

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

__all__ = ["DEFAULT_LANG", "LANGS", "N_", "Translator", "pick_lang"]

DEFAULT_LANG = "zh-CN"
LANGS = {"zh-CN": "zh_CN", "en": "en"}
LANG_COOKIE = "cl_lang"


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where shown."""
    return message


class Translator:
    """Holds one compiled catalog per language."""

    def __init__(self) -> None:
        self._catalogs: dict[str, NullTranslations] = {"en": NullTranslations()}
        root = resources.files("courtlink.web").joinpath("locale")
        for lang, code in LANGS.items():
            po = root.joinpath(code, "LC_MESSAGES", "messages.po")
            if not po.is_file():
                continue
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=code)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            self._catalogs[lang] = Translations(buffer)

    def get(self, lang: str) -> NullTranslations:
        return self._catalogs.get(lang, self._catalogs["en"])

    def gettext(self, lang: str, message: str) -> str:
        return self.get(lang).gettext(message)

    def install(self, env: Environment) -> None:
        """Make ``_``/``gettext``/``ngettext`` in templates follow the ``lang`` of each render."""
        env.add_extension("jinja2.ext.i18n")

        @pass_context
        def gettext(context: Context, message: str) -> str:
            return self.get(context.get("lang", DEFAULT_LANG)).gettext(message)

        @pass_context
        def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
            return self.get(context.get("lang", DEFAULT_LANG)).ngettext(singular, plural, n)

        env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]


def pick_lang(request: web.Request) -> str:
    """``?lang=`` wins (and is remembered in a cookie by the page handler), then the cookie."""
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE) or DEFAULT_LANG
    return asked if asked in LANGS else DEFAULT_LANG
