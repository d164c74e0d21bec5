"""Storage: the SQLAlchemy schema, its migrations, and the Store that opens it."""

from rooms.storage.records import Records
from rooms.storage.store import Store

__all__ = ["Records", "Store"]
