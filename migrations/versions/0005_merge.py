"""one history: join the capability branches 0002 (on-call), 0003 (paging), 0004 (support)

Revision ID: 0005
Revises: 0002, 0003, 0004
Create Date: 2026-12-02 01:50:00

From here on the history is linear: every new revision follows the single head.
"""

revision = "0005"
down_revision = ("0002", "0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
