"""The sender: send_jobs keeps the callback data it sent and its tries, and is looked up by
state; lost answers are settled by callback data, so messages.biz_opaque_callback_data is
indexed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("send_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_data", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(
            batch_op.f("ix_send_jobs_callback_data"), ["callback_data"], unique=False
        )
        batch_op.create_index(
            "ix_send_jobs_state_updated_at", ["state", "updated_at"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_biz_opaque_callback_data"),
            ["biz_opaque_callback_data"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_biz_opaque_callback_data"))
    with op.batch_alter_table("send_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_send_jobs_state_updated_at")
        batch_op.drop_index(batch_op.f("ix_send_jobs_callback_data"))
        batch_op.drop_column("attempts")
        batch_op.drop_column("callback_data")
