"""The operational store's tables, as the code reads and writes them. Their history is in
``migrations/versions``: a change here goes with a new migration there. The migrations spell their
tables out again on purpose: a migration is a record of what was done, and must not change when
this file does."""

import sqlalchemy as sa

metadata = sa.MetaData()

# The write-back ledger: every batch sent and every record's outcome (pipeline.feedback.ledger).
writeback_batches = sa.Table(
    "writeback_batches",
    metadata,
    sa.Column("batch_id", sa.String, primary_key=True),
    sa.Column("system", sa.String, nullable=False),
    sa.Column("object_type", sa.String, nullable=False),
    sa.Column("run_id", sa.String),
    sa.Column("sent_at", sa.DateTime, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response_status", sa.String),
    # Null while the batch's fate is unknown.
    sa.Column("answered_at", sa.DateTime),
)

writeback_record_outcomes = sa.Table(
    "writeback_record_outcomes",
    metadata,
    sa.Column("outcome_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String, nullable=False),
    sa.Column("system", sa.String, nullable=False),
    sa.Column("object_type", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("property", sa.String, nullable=False),
    sa.Column("value", sa.String),
    # accepted | rejected | skipped (Marketo's word for a refused record) | unconfirmed (sent by a
    # run that died before the answer, and not found in the system when read back)
    sa.Column("outcome", sa.String, nullable=False),
    sa.Column("reason", sa.String),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Index("writeback_record_outcomes_by_record", "system", "object_type", "record_id", "property"),
)

writeback_pending_changes = sa.Table(
    "writeback_pending_changes",
    metadata,
    sa.Column("batch_id", sa.String, nullable=False, index=True),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("property", sa.String, nullable=False),
    sa.Column("value", sa.String),
)

# The alert outbox: every notice once per channel (pipeline.alerts.outbox).
alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column("notice_key", sa.String, primary_key=True),
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("notice_kind", sa.String, nullable=False),
    sa.Column("notice", sa.Text, nullable=False),  # the notice as JSON
    sa.Column("queued_at", sa.DateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String),
    sa.Column("delivered_at", sa.DateTime),
    sa.Column("sending_since", sa.DateTime),  # claimed by a delivery sending it now
)


# The SLA notices waiting handoffs will owe, as the last run that evaluated the clocks scheduled
# them (pipeline.alerts.schedule): the sla_notices_due sensor sends each when its moment comes.
alert_schedule = sa.Table(
    "alert_schedule",
    metadata,
    sa.Column("notice_key", sa.String, primary_key=True),
    sa.Column("notify_at", sa.DateTime, nullable=False, index=True),
    sa.Column("notice", sa.Text, nullable=False),  # the notice as JSON
    # CRM changes journaled before this moment had been loaded when the clocks were evaluated.
    sa.Column("loaded_as_of", sa.DateTime, nullable=False),
)


def _raw_load() -> list[sa.Column]:
    """The raw table and the dlt load a quality row is about."""
    return [
        sa.Column("schema_name", sa.String, primary_key=True),
        sa.Column("table_name", sa.String, primary_key=True),
        sa.Column("load_id", sa.String, primary_key=True),
    ]


# Which raw batches the quality gate judged, and the live records counted after each load
# (pipeline.quality.checks).
quality_validated_batches = sa.Table(
    "quality_validated_batches",
    metadata,
    *_raw_load(),
    sa.Column("critical", sa.Boolean, nullable=False),
    sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
    # A batch a critical failure stopped stays stopped until it is decided: ``reloaded`` (its failing
    # records came back fixed from the source) or ``accepted`` (by an operator, who and why recorded).
    sa.Column("verdict", sa.String),
    sa.Column("decision", sa.String),
    sa.Column("decided_by", sa.String),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("decision_note", sa.String),
)

quality_live_row_counts = sa.Table(
    "quality_live_row_counts",
    metadata,
    *_raw_load(),
    sa.Column("live_rows", sa.BigInteger, nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
)

# Data homes from before the operational store kept this state in the DuckDB warehouse; each such
# warehouse is adopted once (pipeline.state.store.adopt_warehouse_state).
adopted_warehouses = sa.Table(
    "adopted_warehouses",
    metadata,
    sa.Column("warehouse", sa.String, primary_key=True),
    sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
)
