"""The operational store's first tables: write-back ledger, alert outbox, quality state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _raw_load() -> list[sa.Column]:
    """The raw table and the dlt load a quality row is about."""
    return [
        sa.Column("schema_name", sa.String, primary_key=True),
        sa.Column("table_name", sa.String, primary_key=True),
        sa.Column("load_id", sa.String, primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "writeback_batches",
        sa.Column("batch_id", sa.String, primary_key=True),
        sa.Column("system", sa.String, nullable=False),
        sa.Column("object_type", sa.String, nullable=False),
        sa.Column("run_id", sa.String),
        sa.Column("sent_at", sa.DateTime, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response_status", sa.String),
        sa.Column("answered_at", sa.DateTime),
    )
    op.create_table(
        "writeback_record_outcomes",
        sa.Column("outcome_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String, nullable=False),
        sa.Column("system", sa.String, nullable=False),
        sa.Column("object_type", sa.String, nullable=False),
        sa.Column("record_id", sa.String, nullable=False),
        sa.Column("property", sa.String, nullable=False),
        sa.Column("value", sa.String),
        sa.Column("outcome", sa.String, nullable=False),
        sa.Column("reason", sa.String),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "writeback_record_outcomes_by_record",
        "writeback_record_outcomes",
        ["system", "object_type", "record_id", "property"],
    )
    op.create_table(
        "writeback_pending_changes",
        sa.Column("batch_id", sa.String, nullable=False, index=True),
        sa.Column("record_id", sa.String, nullable=False),
        sa.Column("property", sa.String, nullable=False),
        sa.Column("value", sa.String),
    )
    op.create_table(
        "alert_outbox",
        sa.Column("notice_key", sa.String, primary_key=True),
        sa.Column("channel", sa.String, primary_key=True),
        sa.Column("notice_kind", sa.String, nullable=False),
        sa.Column("notice", sa.Text, nullable=False),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String),
        sa.Column("delivered_at", sa.DateTime),
    )
    op.create_table(
        "quality_validated_batches",
        *_raw_load(),
        sa.Column("critical", sa.Boolean, nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "quality_live_row_counts",
        *_raw_load(),
        sa.Column("live_rows", sa.BigInteger, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "adopted_warehouses",
        sa.Column("warehouse", sa.String, primary_key=True),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "adopted_warehouses",
        "quality_live_row_counts",
        "quality_validated_batches",
        "alert_outbox",
        "writeback_pending_changes",
        "writeback_record_outcomes",
        "writeback_batches",
    ):
        op.drop_table(table)
