"""Logins can be ended: ``service_accounts.token_generation``, a number every bearer token of
the account carries, raised by a password change or a sign-out everywhere so that every token
issued before stops authenticating (:mod:`fashionkit.service.auth`).

Existing logins start at 0; tokens issued before this revision carry no number and are refused,
so everyone logs in once more.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_accounts") as batch:
        batch.add_column(
            sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("service_accounts") as batch:
        batch.drop_column("token_generation")
