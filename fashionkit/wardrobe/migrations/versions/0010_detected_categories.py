"""The categories the detector saw items under: ``items.detected_category_id`` (when the item
was added from a photo) and ``item_embeddings.category_id`` (in the photo a view of it was seen
in), so an item whose category the person corrected is still recognised where the detector
sees it as before.

Existing rows get NULL: what the detector said of them was not kept, and recognition falls
back to the item's category, as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("detected_category_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("item_embeddings") as batch:
        batch.add_column(sa.Column("category_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("item_embeddings") as batch:
        batch.drop_column("category_id")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("detected_category_id")
