"""paging: outbound webhook deliveries (PagerDuty Events API v2, generic JSON)

Revision ID: 0006
Revises: 0009
Create Date: 2026-12-02 03:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.db

revision = "0006"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(
        op.f("ix_page_webhook_deliveries_page_id"), "page_webhook_deliveries", ["page_id"]
    )
    op.create_index(
        op.f("ix_page_webhook_deliveries_status"), "page_webhook_deliveries", ["status"]
    )
    op.create_index(
        op.f("ix_page_webhook_deliveries_not_before"), "page_webhook_deliveries", ["not_before"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_page_webhook_deliveries_not_before"), "page_webhook_deliveries")
    op.drop_index(op.f("ix_page_webhook_deliveries_status"), "page_webhook_deliveries")
    op.drop_index(op.f("ix_page_webhook_deliveries_page_id"), "page_webhook_deliveries")
    op.drop_table("page_webhook_deliveries")
