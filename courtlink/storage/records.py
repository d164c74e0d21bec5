"""``Records``: every query Courtlink makes, on one open connection (one transaction).

The queries live with their aggregate (accounts.py, cases.py, sessions.py, terminals.py,
audit.py, documents.py, meta.py); rows become the domain's frozen dataclasses through the
mappers in rows.py, and nowhere else.
"""

from __future__ import annotations

from courtlink.storage.accounts import AccountRecords
from courtlink.storage.audit import AuditRecords
from courtlink.storage.cases import CaseRecords
from courtlink.storage.documents import DocumentRecords
from courtlink.storage.meta import MetaRecords
from courtlink.storage.sessions import SessionRecords
from courtlink.storage.terminals import TerminalRecords

__all__ = ["Records"]


class Records(
    AccountRecords,
    CaseRecords,
    SessionRecords,
    TerminalRecords,
    AuditRecords,
    DocumentRecords,
    MetaRecords,
):
    """Every query Courtlink makes. Instances live for one transaction (see ``Store``):
    ``async with store.read() as tx: await tx.case(...)``."""
