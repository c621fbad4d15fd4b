"""A raw batch a critical check stopped keeps its verdict and, once made, the decision that ended it.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DECISION_COLUMNS = ("verdict", "decision", "decided_by", "decided_at", "decision_note")


def upgrade() -> None:
    with op.batch_alter_table("quality_validated_batches") as table:
        table.add_column(sa.Column("verdict", sa.String))
        table.add_column(sa.Column("decision", sa.String))
        table.add_column(sa.Column("decided_by", sa.String))
        table.add_column(sa.Column("decided_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("decision_note", sa.String))


def downgrade() -> None:
    with op.batch_alter_table("quality_validated_batches") as table:
        for column in DECISION_COLUMNS:
            table.drop_column(column)
