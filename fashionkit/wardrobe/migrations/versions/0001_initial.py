"""The first wardrobe schema: users, photos, items with attributes and details, wear log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("suffix", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "sha256", name="uq_photos_user_sha256"),
    )
    op.create_index("ix_photos_user_id", "photos", ["user_id"])
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("supercategory", sa.String(50), nullable=False),
        sa.Column(
            "photo_id", sa.Integer(), sa.ForeignKey("photos.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("mask", sa.JSON(), nullable=True),
        sa.Column("cutout_sha256", sa.String(64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("colors", sa.JSON(), nullable=False),
        sa.Column("season", sa.JSON(), nullable=False),
        sa.Column("material", sa.String(100), nullable=True),
        sa.Column("pattern", sa.String(100), nullable=True),
        sa.Column("brand", sa.String(100), nullable=True),
        sa.Column("trend", sa.String(100), nullable=True),
        sa.Column("occasion", sa.JSON(), nullable=False),
        sa.Column("formality", sa.Integer(), nullable=True),
        sa.Column("favorite", sa.Boolean(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "key", name="uq_items_user_key"),
        sa.CheckConstraint(
            "formality IS NULL OR (formality BETWEEN 1 AND 5)", name="ck_items_formality"
        ),
    )
    op.create_index("ix_items_user_id", "items", ["user_id"])
    op.create_table(
        "item_attributes",
        sa.Column(
            "item_id",
            sa.Integer(),
            sa.ForeignKey("items.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attribute_id", sa.Integer(), primary_key=True),
        sa.Column("score", sa.Float(), nullable=True),
    )
    op.create_table(
        "item_details",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("attribute_ids", sa.JSON(), nullable=False),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("mask", sa.JSON(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
    )
    op.create_index("ix_item_details_item_id", "item_details", ["item_id"])
    op.create_table(
        "wear_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("worn_on", sa.Date(), nullable=False),
    )
    op.create_index("ix_wear_log_item_id", "wear_log", ["item_id"])


def downgrade() -> None:
    for index, table in (
        ("ix_wear_log_item_id", "wear_log"),
        ("ix_item_details_item_id", "item_details"),
        (None, "item_attributes"),
        ("ix_items_user_id", "items"),
        ("ix_photos_user_id", "photos"),
        (None, "users"),
    ):
        if index:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
