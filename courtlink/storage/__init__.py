"""Storage: the SQLAlchemy schema, its migrations, and the Store that opens it."""

from courtlink.storage.records import Records
from courtlink.storage.store import Store

__all__ = ["Records", "Store"]
