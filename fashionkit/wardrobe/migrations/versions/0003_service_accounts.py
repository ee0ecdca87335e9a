"""Web-service logins (``service_accounts``: user id → password hash) in the migrations.

Before this revision the service created the table itself on start, outside the migrations, so a
database may already have it (with rows): then it is kept as it is, since the service created it
with exactly this definition.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("service_accounts"):
        return
    op.create_table(
        "service_accounts",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("password_hash", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_accounts")
