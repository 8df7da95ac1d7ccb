"""case links: the accounts, groups and invites a case is known by

Revision ID: 0008desk
Revises: 0004
Create Date: 2026-12-02 00:00:00

One row per (case, key); cases sharing a key are linked reports of the same account.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008desk"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_links",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "key"),
    )
    op.create_index("ix_case_links_key", "case_links", ["key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_links_key", table_name="case_links")
    op.drop_table("case_links")
