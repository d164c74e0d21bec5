"""Storage: the SQLAlchemy schema, its migrations, the Store that opens it, and Records, the
queries of one transaction (one module per aggregate, one row mapper in rows.py)."""

from courtlink.storage.records import Records
from courtlink.storage.store import Store

__all__ = ["Records", "Store"]
