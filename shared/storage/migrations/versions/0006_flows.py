"""WhatsApp Flows: what the `flows` webhook field says of each flow (its status, its latest
endpoint alert).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("flow_id", sa.Text(), nullable=False),
        sa.Column("waba_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("status_at", sa.Float(), nullable=True),
        sa.Column("alert_event", sa.Text(), nullable=True),
        sa.Column("alert_state", sa.Text(), nullable=True),
        sa.Column("alert_message", sa.Text(), nullable=True),
        sa.Column("alert_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("flow_id", name=op.f("pk_flows")),
    )


def downgrade() -> None:
    op.drop_table("flows")
