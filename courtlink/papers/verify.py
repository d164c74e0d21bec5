"""Checking a PDF against the court's seal and, when the records are at hand, its record."""

from __future__ import annotations

from dataclasses import dataclass, field

from courtlink.court.documents.lifecycle import Document
from courtlink.court.documents.registry import Registry
from courtlink.errors import NotFound
from courtlink.papers.seal import CourtSeal, SealReport

__all__ = ["Check", "check_copy"]


@dataclass
class Check:
    seal: SealReport
    document: Document | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.seal.ok and not self.problems


async def check_copy(
    seal: CourtSeal, pdf: bytes, registry: Registry | None, expected_id: str | None = None
) -> Check:
    """Seal first (offline); then, with a registry, that the record exists and holds this very
    file (its SHA-256) and, with ``expected_id``, that it is that document."""
    report = await seal.averify(pdf)
    check = Check(report, problems=list(report.problems))
    if expected_id is not None and report.document_id not in (None, expected_id):
        check.problems.append("this file is another document")
    if registry is None:
        return check
    document_id = report.document_id or expected_id
    if document_id is None:
        check.problems.append("the file names no Courtlink document")
        return check
    try:
        check.document = await registry.find(document_id)
    except NotFound:
        check.problems.append("no record of this document")
        return check
    if check.document.sha256 != report.sha256:
        check.problems.append(
            "the file differs from the one recorded (a later version, or changed)"
        )
    return check
