"""Documents to PDF: Jinja2 templates in Chinese -> HTML -> PDF (WeasyPrint) -> court seal.

Fonts come from Debian packages (tools/setup installs them): Noto Serif/Sans CJK SC for the
text, with HanaMinA and HanaMinB after them, so that rare characters in names (CJK Extension B,
e.g. 𠀾) still get a glyph instead of a box. Each PDF shows its number, its id and a QR code of
``<public_url>/verify/<id>``; its /Subject is ``courtlink:document:<id>``.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import jinja2
import segno
from weasyprint import HTML

from courtlink.papers.filters import install_filters
from courtlink.papers.seal import SUBJECT_PREFIX, CourtSeal

__all__ = ["DocumentPrinter", "render_pdf"]


def _png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def render_pdf(html: str) -> bytes:
    """HTML to PDF bytes (synchronous, CPU-heavy: call it in a thread)."""
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


class DocumentPrinter:
    """Implements rooms.registry.Printer."""

    def __init__(self, seal: CourtSeal, public_url: str, court: str = "") -> None:
        self.seal = seal
        self.public_url = public_url
        self.court = court
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("courtlink.web", "templates/documents"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
        )
        install_filters(self.env)
        self.env.filters["png"] = _png_data_uri

    def verify_url(self, document_id: str) -> str:
        return f"{self.public_url}/verify/{document_id}"

    def html(self, template: str, context: dict[str, Any], *, document_id: str) -> str:
        url = self.verify_url(document_id)
        qr = segno.make(url, error="m").png_data_uri(scale=3, border=2)
        court = self.court or getattr(context.get("case"), "court", "")
        return self.env.get_template(f"{template}.html").render(
            **context,
            document_id=document_id,
            subject=SUBJECT_PREFIX + document_id,
            verify_url=url,
            qr=qr,
            court=court,
        )

    async def print(
        self, template: str, context: dict[str, Any], *, document_id: str, seal: bool = True
    ) -> tuple[bytes, str | None]:
        html = self.html(template, context, document_id=document_id)

        def work() -> tuple[bytes, str | None]:
            pdf = render_pdf(html)
            if not seal:
                return pdf, None
            return self.seal.seal(pdf)

        return await asyncio.to_thread(work)
