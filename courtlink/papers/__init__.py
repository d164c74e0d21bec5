"""Documents on the web side: rendering to PDF, the court's seal, files on disk, uploads."""

from courtlink.papers.files import FileStore
from courtlink.papers.printer import DocumentPrinter
from courtlink.papers.seal import CourtSeal, SealReport
from courtlink.papers.uploads import inspect_upload

__all__ = ["CourtSeal", "DocumentPrinter", "FileStore", "SealReport", "inspect_upload"]
