"""on-call revisions: a token per rotation that changes with its overrides and roster records

Revision ID: 0020
Revises: 0010
Create Date: 2026-12-06 09:00:00

Each process caches rotation timelines keyed by this token, so a change another replica made
is seen at the next read. Rotations that already have overrides or roster records get a token
now, so no cache can mistake their data for an empty rotation's.
"""

import uuid

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0020"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oncall_revisions",
        sa.Column("rotation_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("revision", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("rotation_id"),
    )
    connection = op.get_bind()
    rotations = connection.execute(
        sa.text(
            "SELECT rotation_id FROM oncall_overrides UNION SELECT rotation_id FROM oncall_rosters"
        )
    ).scalars()
    rows = [{"rotation_id": r, "revision": uuid.uuid4().hex} for r in rotations]
    if rows:
        connection.execute(
            sa.text(
                "INSERT INTO oncall_revisions (rotation_id, revision) "
                "VALUES (:rotation_id, :revision)"
            ),
            rows,
        )


def downgrade() -> None:
    op.drop_table("oncall_revisions")
