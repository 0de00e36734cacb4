"""Managing the account: templates keep what a pull tells (parameter format, components, when
synced); the Cloud API's analytics data points are stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parameter_format", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("components", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("synced_at", sa.Float(), nullable=True))
    op.create_table(
        "analytics_points",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("waba_id", sa.Text(), nullable=False),
        sa.Column("start_at", sa.BigInteger(), nullable=False),
        sa.Column("end_at", sa.BigInteger(), nullable=False),
        sa.Column("dimensions", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("pulled_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_analytics_points")),
    )
    op.create_index(
        "ix_analytics_points_kind_start_at", "analytics_points", ["kind", "start_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_analytics_points_kind_start_at", table_name="analytics_points")
    op.drop_table("analytics_points")
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("synced_at")
        batch_op.drop_column("components")
        batch_op.drop_column("parameter_format")
