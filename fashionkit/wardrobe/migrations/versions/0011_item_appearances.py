"""Where an item is seen besides its own placement: ``item_appearances`` (the item, a wardrobe
photo, its box, mask, score and parts there). A duplicate merged into an item, and the other
shoe of a pair, become appearances, so the photo's annotations for fine-tuning keep them.

Existing wardrobes get an empty table: duplicates merged before this were removed with their
placement, which was not kept.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_appearances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "item_id",
            sa.Integer(),
            sa.ForeignKey("items.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "photo_id",
            sa.Integer(),
            sa.ForeignKey("photos.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("mask", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("item_appearances")
