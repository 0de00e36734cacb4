"""The one schema, as SQLAlchemy Core tables: what every query is written against.

The migrations in ``migrations/versions`` create exactly this (a test compares them), on SQLite
and on PostgreSQL alike. Column types are the portable subset: text, integers, floats, booleans;
JSON is kept as text, verbatim as Meta sent it, so nothing is lost in translation.

Tables::

    messages          one row per message, in or out, keyed by wamid; outbound ones carry their
                      delivery state, folded from their statuses (workers/progress.py)
    statuses          every distinct status update, keyed by the event key <wamid>:<status>[:code]
    contacts          the customers wapipe has heard from, by wa_id (or user id)
    conversations     conversation windows seen on statuses (id, origin, expiry)
    media             inbound media records (the media worker fills them)
    send_jobs         outbound jobs by idempotency key (the sender fills them)
    account_events    every account and template webhook change, keyed by its event key
    templates         the latest known state of each message template
    phone_numbers     the latest known quality and messaging tier of each phone number
    analytics_points  the Cloud API's analytics data points, as pulled (``wapipe analytics``)
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

# Names for constraints, so every backend (and every migration) calls them the same.
metadata: Final = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The delivery state shown for an outbound message, from the two columns folded in SQL (see
# shared/storage/statuses.py): 'failed' unless it got further than 'sent' anyway.
STATUS_EXPRESSION: Final = (
    "CASE WHEN failure_code IS NOT NULL AND (status_rank IS NULL OR status_rank <= 1) "
    "THEN 'failed' "
    "WHEN status_rank = 0 THEN 'accepted' WHEN status_rank = 1 THEN 'sent' "
    "WHEN status_rank = 2 THEN 'delivered' WHEN status_rank = 3 THEN 'read' "
    "WHEN status_rank = 4 THEN 'played' END"
)

messages: Final = Table(
    "messages",
    metadata,
    Column("wamid", Text, primary_key=True),
    Column("direction", Text, nullable=False),  # 'in' or 'out'
    Column("phone_number_id", Text),  # our number: the receiver of 'in', the sender of 'out'
    Column("waba_id", Text),
    Column("wa_id", Text, index=True),  # the customer
    Column("type", Text),  # text, image, ... (inbound; outbound when the sender knows it)
    Column("timestamp", BigInteger),  # Meta's, unix seconds
    Column("received_at", Float),  # when the ingress received it
    Column("payload", Text),  # inbound: the message object, verbatim JSON
    Column("context_wamid", Text),  # the message replied to
    Column("context_from", Text),
    Column("forwarded", Boolean),
    Column("frequently_forwarded", Boolean),
    Column("referral", Text),  # click-to-WhatsApp ad or post, verbatim JSON
    Column("errors", Text),  # unsupported messages: Meta's errors, verbatim JSON
    Column("handled_at", Float),  # inbound: when business logic had it
    # Outbound delivery state (see STATUS_EXPRESSION).
    Column("status_rank", Integer),
    Column("failure_code", BigInteger),
    Column("failure_title", Text),
    Column("failure_details", Text),
    Column("status", Text, Computed(STATUS_EXPRESSION, persisted=True)),
    Column("last_status_at", BigInteger),
    Column("conversation_id", Text),
    Column("pricing_billable", Boolean),
    Column("pricing_model", Text),
    Column("pricing_category", Text),
    Column("pricing_type", Text),
    # Indexed: the sender settles a send whose answer it lost by the callback data it sent.
    Column("biz_opaque_callback_data", Text, index=True),
)

statuses: Final = Table(
    "statuses",
    metadata,
    Column("key", Text, primary_key=True),  # <wamid>:<status>[:code], the event's key
    Column("wamid", Text, nullable=False, index=True),
    Column("status", Text, nullable=False),
    Column("timestamp", BigInteger),
    Column("recipient_id", Text),
    Column("phone_number_id", Text),
    Column("error_code", BigInteger),
    Column("error_title", Text),
    Column("error_details", Text),
    Column("conversation_id", Text),
    Column("pricing_category", Text),
    # What the report charges by (cli/report/charges.py): each status's pricing, as Meta sent it.
    Column("pricing_billable", Boolean),
    Column("pricing_model", Text),  # CBP (before 2025-07-01) or PMP
    Column("pricing_type", Text),  # regular, free_customer_service, free_entry_point
    Column("received_at", Float, nullable=False),
    Column("stored_at", Float, nullable=False),
    Column("payload", Text, nullable=False),  # the status object, verbatim JSON
)

contacts: Final = Table(
    "contacts",
    metadata,
    # wa_id, or for a username user who hides the number, the business-scoped user id.
    Column("contact_id", Text, primary_key=True),
    Column("wa_id", Text),
    Column("user_id", Text),  # the business-scoped user id, where Meta sends one
    Column("profile_name", Text),
    Column("first_seen_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
)

# One person across their ids: a phone number (wa_id), a BSUID, a parent BSUID, and the ones
# they had before a change. Every id seen together with another is the same customer
# (shared/storage/customers.py); customer_id is the first id the customer was known by.
customer_identities: Final = Table(
    "customer_identities",
    metadata,
    Column("identity", Text, primary_key=True),
    Column("kind", Text, nullable=False),  # phone, bsuid, parent_bsuid
    Column("customer_id", Text, nullable=False, index=True),
    Column("linked_at", Float, nullable=False),
)

conversations: Final = Table(
    "conversations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("origin_type", Text),
    Column("expiration_timestamp", BigInteger),
    Column("wa_id", Text),
    Column("first_seen_at", Float, nullable=False),
)

media: Final = Table(
    "media",
    metadata,
    Column("media_id", Text, primary_key=True),
    Column("wamid", Text, index=True),
    Column("state", Text, nullable=False),  # pending, stored, failed
    Column("mime_type", Text),
    Column("file_name", Text),
    Column("sha256", Text),
    Column("size_bytes", BigInteger),
    Column("location", Text),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False),
)

send_jobs: Final = Table(
    "send_jobs",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("phone_number_id", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    # queued, sending, accepted, failed, unknown (see shared/storage/send_jobs.py)
    Column("state", Text, nullable=False),
    Column("wamid", Text, index=True),
    Column("callback_data", Text, index=True),  # biz_opaque_callback_data as sent
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error_code", BigInteger),
    Column("error_title", Text),
    Column("error_details", Text),
    Column("job", Text, nullable=False),  # the job as published, verbatim JSON
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The sender looks for jobs by state (unknown outcomes, stale sends) every few seconds.
    Index("ix_send_jobs_state_updated_at", "state", "updated_at"),
)

account_events: Final = Table(
    "account_events",
    metadata,
    Column("key", Text, primary_key=True),  # <field>:<digest of the change>
    Column("field", Text, nullable=False, index=True),
    Column("waba_id", Text, nullable=False),
    Column("phone_number_id", Text),
    Column("entry_time", BigInteger),
    Column("received_at", Float, nullable=False),
    Column("stored_at", Float, nullable=False),
    Column("payload", Text, nullable=False),  # the change's value, verbatim JSON
)

templates: Final = Table(
    "templates",
    metadata,
    # Each attribute moves forward in its own time (status, category and quality updates come
    # apart, in any order): the value of the latest update of that attribute wins.
    Column("template_id", Text, primary_key=True),  # message_template_id
    Column("waba_id", Text, nullable=False),
    Column("name", Text),
    Column("language", Text),
    Column("status", Text),  # APPROVED, REJECTED, PAUSED, DISABLED, ...
    Column("status_reason", Text),
    Column("status_at", Float),
    Column("category", Text),
    Column("category_at", Float),
    Column("quality", Text),  # GREEN, YELLOW, RED, UNKNOWN
    Column("quality_at", Float),
    # What only a pull (``wapipe templates sync``) tells: the sender checks parameter counts on it.
    Column("parameter_format", Text),  # POSITIONAL or NAMED
    Column("components", Text),  # verbatim JSON
    Column("synced_at", Float),
)

phone_numbers: Final = Table(
    "phone_numbers",
    metadata,
    # Meta's quality and account updates name the number, not its id.
    Column("display_phone_number", Text, primary_key=True),
    Column("waba_id", Text, nullable=False),
    Column("quality_event", Text),  # the latest: FLAGGED, UNFLAGGED, THROUGHPUT_UPGRADE, ...
    Column("messaging_tier", Text),  # current_limit, e.g. TIER_10K
    Column("quality_at", Float),
    Column("account_event", Text),  # the latest account_update event, e.g. ACCOUNT_VIOLATION
    Column("account_event_at", Float),
)

flows: Final = Table(
    "flows",
    metadata,
    # What the `flows` webhook field says of each flow, the latest of each kind.
    Column("flow_id", Text, primary_key=True),
    Column("waba_id", Text, nullable=False),
    Column("status", Text),  # DRAFT, PUBLISHED, THROTTLED, BLOCKED, DEPRECATED
    Column("status_at", Float),
    Column("alert_event", Text),  # ENDPOINT_LATENCY, ENDPOINT_ERROR_RATE, ...
    Column("alert_state", Text),  # ACTIVATED, DEACTIVATED
    Column("alert_message", Text),
    Column("alert_at", Float),
)

analytics_points: Final = Table(
    "analytics_points",
    metadata,
    # <kind>:<waba_id>:<start>:<dimensions>: a point pulled again replaces the one stored.
    Column("key", Text, primary_key=True),
    Column("kind", Text, nullable=False),  # messages, conversations, pricing, templates
    Column("waba_id", Text, nullable=False),
    Column("start_at", BigInteger, nullable=False),  # unix seconds
    Column("end_at", BigInteger, nullable=False),
    Column("dimensions", Text, nullable=False),  # JSON: phone number, country, category, ...
    Column("metrics", Text, nullable=False),  # JSON: sent, delivered, cost, ...
    Column("pulled_at", Float, nullable=False),
    Index("ix_analytics_points_kind_start_at", "kind", "start_at"),
)


INT64_MAX: Final = 2**63 - 1


def bigint(value: str | int | None) -> int | None:
    """Meta's numbers (often strings) for a BigInteger column: None for what is no number or
    out of its range, rather than a value the database refuses."""
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is None or abs(number) <= INT64_MAX else None
