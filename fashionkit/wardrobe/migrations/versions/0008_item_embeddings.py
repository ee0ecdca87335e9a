"""Recognising a person's items in new photos: ``item_embeddings`` (one appearance vector per
item and embedder), and ``photo_jobs.kind`` ("photo": items are added from it; "outfit": a
photo of what the person wears, whose items are recognised and logged as worn).

Existing jobs are photo jobs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_embeddings",
        sa.Column(
            "item_id",
            sa.Integer(),
            sa.ForeignKey("items.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("embedder", sa.String(200), primary_key=True),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("photo_jobs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="photo")
        )


def downgrade() -> None:
    with op.batch_alter_table("photo_jobs") as batch:
        batch.drop_column("kind")
    op.drop_table("item_embeddings")
