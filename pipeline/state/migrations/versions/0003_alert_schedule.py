"""The SLA notices waiting handoffs will owe, with the moments they fall due; an outbox notice
claimed by the delivery sending it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_schedule",
        sa.Column("notice_key", sa.String, primary_key=True),
        sa.Column("notify_at", sa.DateTime, nullable=False),
        sa.Column("notice", sa.Text, nullable=False),
        sa.Column("loaded_as_of", sa.DateTime, nullable=False),
    )
    op.create_index("ix_alert_schedule_notify_at", "alert_schedule", ["notify_at"])
    with op.batch_alter_table("alert_outbox") as table:
        table.add_column(sa.Column("sending_since", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("alert_outbox") as table:
        table.drop_column("sending_since")
    op.drop_table("alert_schedule")
