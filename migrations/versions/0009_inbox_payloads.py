"""inbox: store each request whole, with a status and a lease, so its work survives a crash

Revision ID: 0009
Revises: 0012
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.db

revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))
        # Rows from before were acted on when they were recorded: they are done.
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column(
                "status",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="done",
            )
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("lease_until", bot.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("done_at", bot.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_inbox_events_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_inbox_events_lease_until"), ["lease_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_events_lease_until"))
        batch_op.drop_index(batch_op.f("ix_inbox_events_status"))
        for column in (
            "last_error",
            "done_at",
            "lease_token",
            "lease_until",
            "attempts",
            "status",
            "headers",
            "body",
        ):
            batch_op.drop_column(column)
