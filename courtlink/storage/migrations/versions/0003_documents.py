"""Documents, their steps, recipients' inboxes and drawn signatures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtlink.storage.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("detention_id", sa.String(32)),
        sa.Column("parent_id", sa.String(32)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("number", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger()),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("signed_by", sa.String(32)),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_documents_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
        sa.UniqueConstraint("number", name="uq_documents_number"),
    )
    op.create_index("ix_documents_case_id", "documents", ["case_id"])
    op.create_table(
        "document_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("officer_id", sa.String(32)),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("receipt_id", sa.String(32)),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_document_steps_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_document_steps"),
    )
    op.create_index("ix_document_steps_document_id", "document_steps", ["document_id"])
    op.create_table(
        "inbox_items",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("fetched_at", UTCDateTime()),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("alerted_at", UTCDateTime()),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_inbox_items_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_items"),
        sa.UniqueConstraint("document_id", "recipient", name="uq_inbox_items_document_id"),
    )
    op.create_index("ix_inbox_items_recipient", "inbox_items", ["recipient"])
    op.create_table(
        "drawn_signatures",
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("seat", sa.String(16), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("officer_id", sa.String(32)),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_drawn_signatures_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("document_id", "seat", name="pk_drawn_signatures"),
    )


def downgrade() -> None:
    for table in ("drawn_signatures", "inbox_items", "document_steps", "documents"):
        op.drop_table(table)
