"""The initial schema: every table of shared/storage/schema.py.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 18:45:28.707390
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_events",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("waba_id", sa.Text(), nullable=False),
        sa.Column("phone_number_id", sa.Text(), nullable=True),
        sa.Column("entry_time", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_account_events")),
    )
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_events_field"), ["field"], unique=False)

    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("wa_id", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("profile_name", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contacts")),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("origin_type", sa.Text(), nullable=True),
        sa.Column("expiration_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("wa_id", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_table(
        "media",
        sa.Column("media_id", sa.Text(), nullable=False),
        sa.Column("wamid", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("mime_type", sa.Text(), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_media")),
    )
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_wamid"), ["wamid"], unique=False)

    op.create_table(
        "messages",
        sa.Column("wamid", sa.Text(), nullable=False),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("phone_number_id", sa.Text(), nullable=True),
        sa.Column("waba_id", sa.Text(), nullable=True),
        sa.Column("wa_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("context_wamid", sa.Text(), nullable=True),
        sa.Column("context_from", sa.Text(), nullable=True),
        sa.Column("forwarded", sa.Boolean(), nullable=True),
        sa.Column("frequently_forwarded", sa.Boolean(), nullable=True),
        sa.Column("referral", sa.Text(), nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.Column("handled_at", sa.Float(), nullable=True),
        sa.Column("status_rank", sa.Integer(), nullable=True),
        sa.Column("failure_code", sa.BigInteger(), nullable=True),
        sa.Column("failure_title", sa.Text(), nullable=True),
        sa.Column("failure_details", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Text(),
            sa.Computed(
                (
                    "CASE WHEN failure_code IS NOT NULL "
                    "AND (status_rank IS NULL OR status_rank <= 1) "
                    "THEN 'failed' "
                    "WHEN status_rank = 0 THEN 'accepted' WHEN status_rank = 1 THEN 'sent' "
                    "WHEN status_rank = 2 THEN 'delivered' WHEN status_rank = 3 THEN 'read' "
                    "WHEN status_rank = 4 THEN 'played' END"
                ),
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("last_status_at", sa.BigInteger(), nullable=True),
        sa.Column("conversation_id", sa.Text(), nullable=True),
        sa.Column("pricing_billable", sa.Boolean(), nullable=True),
        sa.Column("pricing_model", sa.Text(), nullable=True),
        sa.Column("pricing_category", sa.Text(), nullable=True),
        sa.Column("pricing_type", sa.Text(), nullable=True),
        sa.Column("biz_opaque_callback_data", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("wamid", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_wa_id"), ["wa_id"], unique=False)

    op.create_table(
        "phone_numbers",
        sa.Column("display_phone_number", sa.Text(), nullable=False),
        sa.Column("waba_id", sa.Text(), nullable=False),
        sa.Column("quality_event", sa.Text(), nullable=True),
        sa.Column("messaging_tier", sa.Text(), nullable=True),
        sa.Column("quality_at", sa.Float(), nullable=True),
        sa.Column("account_event", sa.Text(), nullable=True),
        sa.Column("account_event_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("display_phone_number", name=op.f("pk_phone_numbers")),
    )
    op.create_table(
        "send_jobs",
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("phone_number_id", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("wamid", sa.Text(), nullable=True),
        sa.Column("error_code", sa.BigInteger(), nullable=True),
        sa.Column("error_title", sa.Text(), nullable=True),
        sa.Column("error_details", sa.Text(), nullable=True),
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_send_jobs")),
    )
    with op.batch_alter_table("send_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_send_jobs_wamid"), ["wamid"], unique=False)

    op.create_table(
        "statuses",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("wamid", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.Column("recipient_id", sa.Text(), nullable=True),
        sa.Column("phone_number_id", sa.Text(), nullable=True),
        sa.Column("error_code", sa.BigInteger(), nullable=True),
        sa.Column("error_title", sa.Text(), nullable=True),
        sa.Column("error_details", sa.Text(), nullable=True),
        sa.Column("conversation_id", sa.Text(), nullable=True),
        sa.Column("pricing_category", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_statuses")),
    )
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_statuses_wamid"), ["wamid"], unique=False)

    op.create_table(
        "templates",
        sa.Column("template_id", sa.Text(), nullable=False),
        sa.Column("waba_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_at", sa.Float(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("category_at", sa.Float(), nullable=True),
        sa.Column("quality", sa.Text(), nullable=True),
        sa.Column("quality_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("template_id", name=op.f("pk_templates")),
    )


def downgrade() -> None:
    op.drop_table("templates")
    with op.batch_alter_table("statuses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statuses_wamid"))

    op.drop_table("statuses")
    with op.batch_alter_table("send_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_send_jobs_wamid"))

    op.drop_table("send_jobs")
    op.drop_table("phone_numbers")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_wa_id"))

    op.drop_table("messages")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_wamid"))

    op.drop_table("media")
    op.drop_table("conversations")
    op.drop_table("contacts")
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_events_field"))

    op.drop_table("account_events")
