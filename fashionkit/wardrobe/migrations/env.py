"""Alembic environment: run by :func:`fashionkit.wardrobe.migrate.upgrade` on the connection it
passes in ``config.attributes["connection"]`` (there is no alembic.ini: the store migrates itself
when opened)."""

from alembic import context

from fashionkit.wardrobe.models import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
