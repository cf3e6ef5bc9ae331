"""outbox delivery: priority, usefulness (expires_at), Slack health

Revision ID: 0010
Revises: 0013
Create Date: 2026-12-02 02:10:00

Pages go before bulk notices (priority), a notification that is no longer useful is dropped
instead of sent late (expires_at), a busy channel does not hold back the others (lane), and the
senders share whether Slack is failing.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.db

revision = "0010"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        # Rows queued before this revision are ordinary notices (priority 1).
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("expires_at", bot.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lane", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
        batch_op.create_index("ix_outbox_due", ["status", "priority", "not_before"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_lane"), ["lane"], unique=False)
    op.create_table(
        "slack_health",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("failing_since", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("slack_health")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_lane"))
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_column("lane")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("priority")
