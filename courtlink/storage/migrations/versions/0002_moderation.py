"""Sessions carry the judge's moderation (admitted seats, caucus, muted seats) and the video
codec chosen for the session.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("video_codec", sa.String(8), nullable=False, server_default="vp8")
        )
        batch.add_column(sa.Column("admitted", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("caucus", sa.String(16)))
        batch.add_column(sa.Column("muted", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("muted")
        batch.drop_column("caucus")
        batch.drop_column("admitted")
        batch.drop_column("video_codec")
