"""Alembic's entry point: wapipe runs it with a connection in hand (shared/storage/database.py).

Offline SQL scripts (``alembic upgrade --sql``) are not supported: run ``wapipe migrate``.
"""

from alembic import context

from wapipe.shared.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `wapipe migrate` (shared.storage.database.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE by copy on SQLite
)
with context.begin_transaction():
    context.run_migrations()
