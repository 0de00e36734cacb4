"""Per-message pricing: each stored status keeps whether Meta bills it, under which pricing model
and of which type, so the report charges billable messages only (cli/report/figures.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pricing_billable", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("pricing_model", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("pricing_type", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.drop_column("pricing_type")
        batch_op.drop_column("pricing_model")
        batch_op.drop_column("pricing_billable")
