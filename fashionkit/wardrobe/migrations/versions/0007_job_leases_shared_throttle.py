"""Several service processes on one database: photo jobs held under a lease
(``photo_jobs.lease_until``), and the login throttle's counts in a table every process reads
(``service_throttle``).

A running job's process renews its lease every few seconds; a job whose lease has run out
(its process died) is taken over by any other (:mod:`fashionkit.service.photos`). Jobs left
running by an older fashionkit have no lease and are taken over at once. Throttle rows are
keyed ``"account:<name>"``, ``"client:<address>"`` (wrong passwords: ``failures``, ``last_s``
the time of the last one) and ``"register:<address>"`` (``times``: the registrations of the
window, seconds since the epoch) (:mod:`fashionkit.service.limits`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photo_jobs") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.create_table(
        "service_throttle",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_s", sa.Float(), nullable=False),
        sa.Column("times", sa.JSON(), nullable=True),
    )
    op.create_index("ix_service_throttle_last_s", "service_throttle", ["last_s"])


def downgrade() -> None:
    op.drop_index("ix_service_throttle_last_s", table_name="service_throttle")
    op.drop_table("service_throttle")
    with op.batch_alter_table("photo_jobs") as batch:
        batch.drop_column("lease_until")
