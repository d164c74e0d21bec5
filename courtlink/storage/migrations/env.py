"""Alembic environment. Courtlink runs migrations itself (on start and with
``courtlink db upgrade``) and hands Alembic an open connection; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from courtlink.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when someone runs alembic by hand
    raise RuntimeError("run migrations with `courtlink db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
