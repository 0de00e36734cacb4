"""Customers across their ids: a phone number, a BSUID, a parent BSUID, and those before a
change, tied to one customer (shared/storage/customers.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_identities",
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("linked_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("identity", name=op.f("pk_customer_identities")),
    )
    op.create_index(
        op.f("ix_customer_identities_customer_id"),
        "customer_identities",
        ["customer_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_identities_customer_id"), table_name="customer_identities")
    op.drop_table("customer_identities")
