"""Documents on the web side: rendering to PDF, the court's seal, files on disk, uploads."""

from web.documents.files import FileStore
from web.documents.printer import DocumentPrinter
from web.documents.seal import CourtSeal, SealReport
from web.documents.uploads import inspect_upload

__all__ = ["CourtSeal", "DocumentPrinter", "FileStore", "SealReport", "inspect_upload"]
