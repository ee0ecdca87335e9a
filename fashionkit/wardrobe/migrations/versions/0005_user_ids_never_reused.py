"""Account ids are never reused: ``users.id`` is AUTOINCREMENT on SQLite.

Without it SQLite hands the largest id of a deleted row to the next insert, so anything that
names a user by id (a bearer token) would name the next person registered. PostgreSQL's
sequences never go back, so only SQLite's table is rebuilt.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "users", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "users", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
