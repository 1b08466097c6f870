"""Alembic environment: runs on the connection that memory.migrate hands over.

Migrations never import the application's models: each revision states its own
tables, so that an old revision keeps meaning what it meant when it was written.
"""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `assistant db upgrade` or memory.migrate.upgrade(engine)")

# render_as_batch: SQLite alters a table by copying it; Alembic's batch mode does that.
context.configure(connection=connection, render_as_batch=True, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
