"""The database schema (SQLAlchemy Core). Alembic migrations under migrations/ create it;
a test checks that the migrated schema and this metadata agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

__all__ = ["metadata"]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone; PostgreSQL keeps timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def _id(name: str = "id", *args: Any, **kw: Any) -> Column[str]:
    return Column(name, String(32), *args, **kw)


accounts = Table(
    "accounts",
    metadata,
    _id(primary_key=True),
    Column("username", String(40), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("court", String(100), nullable=False, default=""),
    Column("center", String(100), nullable=False, default=""),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("password_hash", String(200)),
    Column("pin_hash", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

logins = Table(
    "logins",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    _id("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(40), nullable=False),
    Column("remote", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_login_failures_username_at", "username", "at"),
)

cases = Table(
    "cases",
    metadata,
    _id(primary_key=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("court", String(100), nullable=False),
    _id("judge_id", ForeignKey("accounts.id"), nullable=False),
    Column("creditor_name", String(100), nullable=False),
    Column("debtor_name", String(100), nullable=False),
    Column("amount_owed_fen", BigInteger, nullable=False),
    Column("amount_paid_fen", BigInteger, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
)

detentions = Table(
    "detentions",
    metadata,
    _id(primary_key=True),
    _id("case_id", ForeignKey("cases.id"), nullable=False, index=True),
    Column("debtor_name", String(100), nullable=False),
    Column("center", String(100), nullable=False),
    Column("released_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
)

detention_periods = Table(
    "detention_periods",
    metadata,
    _id("detention_id", ForeignKey("detentions.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("start", UTCDateTime, nullable=False),
    Column("days", Integer, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    _id(primary_key=True),
    _id("case_id", ForeignKey("cases.id"), nullable=False, index=True),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("lobby", Boolean, nullable=False),
    Column("recorded", Boolean, nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("video_codec", String(8), nullable=False, server_default="vp8"),
    Column("admitted", String(64), nullable=False, server_default=""),
    Column("caucus", String(16)),
    Column("muted", String(64), nullable=False, server_default=""),
)

invites = Table(
    "invites",
    metadata,
    _id(primary_key=True),
    _id("session_id", ForeignKey("sessions.id"), nullable=False, index=True),
    Column("seats", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("label", String(100), nullable=False, default=""),
)

terminals = Table(
    "terminals",
    metadata,
    _id(primary_key=True),
    Column("name", String(100), nullable=False),
    Column("center", String(100), nullable=False),
    Column("credential_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

consents = Table(
    "consents",
    metadata,
    _id("session_id", ForeignKey("sessions.id"), primary_key=True),
    Column("seat", String(16), primary_key=True),
    _id("invite_id", ForeignKey("invites.id"), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("recorded", Boolean, nullable=False),
    Column("text_version", Integer, nullable=False),
    Column("confirmed_by", String(32)),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("session_id", String(32), index=True),
    Column("case_id", String(32), index=True),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("checkpoint_seq", BigInteger, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kid", String(32), nullable=False),
    Column("signature", String(200), nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    _id(primary_key=True),
    _id("case_id", ForeignKey("cases.id"), nullable=False, index=True),
    Column("detention_id", String(32)),
    Column("parent_id", String(32)),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("number", String(100), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("fields", Text, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("media_type", String(64), nullable=False),
    Column("file_name", String(200), nullable=False),
    Column("signed_by", String(32)),
)

document_steps = Table(
    "document_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _id("document_id", ForeignKey("documents.id"), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("officer_id", String(32)),
    Column("at", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),
    Column("receipt_id", String(32)),
)

inbox_items = Table(
    "inbox_items",
    metadata,
    _id(primary_key=True),
    _id("document_id", ForeignKey("documents.id"), nullable=False),
    Column("recipient", String(100), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("fetched_at", UTCDateTime),
    Column("acknowledged_at", UTCDateTime),
    Column("alerted_at", UTCDateTime),
    UniqueConstraint("document_id", "recipient", name="uq_inbox_items_document_id"),
)

drawn_signatures = Table(
    "drawn_signatures",
    metadata,
    _id("document_id", ForeignKey("documents.id"), primary_key=True),
    Column("seat", String(16), primary_key=True),
    Column("png", LargeBinary, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("officer_id", String(32)),
    Column("at", UTCDateTime, nullable=False),
)
