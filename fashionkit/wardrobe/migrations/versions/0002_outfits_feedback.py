"""Outfits, feedback (like / dislike / wore) and the outfit a wear-log entry belongs to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outfits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("conditions", sa.JSON(), nullable=True),
    )
    op.create_index("ix_outfits_user_id", "outfits", ["user_id"])
    op.create_table(
        "outfit_items",
        sa.Column(
            "outfit_id",
            sa.Integer(),
            sa.ForeignKey("outfits.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "outfit_id",
            sa.Integer(),
            sa.ForeignKey("outfits.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('like', 'dislike', 'wore')", name="ck_feedback_kind"),
    )
    op.create_index("ix_feedback_user_id", "feedback", ["user_id"])
    with op.batch_alter_table("wear_log") as batch:
        batch.add_column(sa.Column("outfit_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_wear_log_outfit_id", "outfits", ["outfit_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("wear_log") as batch:
        batch.drop_constraint("fk_wear_log_outfit_id", type_="foreignkey")
        batch.drop_column("outfit_id")
    op.drop_index("ix_feedback_user_id", table_name="feedback")
    op.drop_table("feedback")
    op.drop_table("outfit_items")
    op.drop_index("ix_outfits_user_id", table_name="outfits")
    op.drop_table("outfits")
