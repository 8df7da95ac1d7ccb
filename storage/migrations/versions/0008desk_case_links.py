"""case links (the accounts, groups and invites a case is known by); App Home viewers

Revision ID: 0008desk
Revises: 0004
Create Date: 2026-12-02 00:00:00

One row per (case, key); cases sharing a key are linked reports of the same account.
The practitioners who opened the desk's App Home, whose queue is republished on changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0008desk"
down_revision = "0007privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the case_links and slack_home_viewers tables."""
    op.create_table(
        "case_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("shown", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "key", name="uq_case_links_case_key"),
    )
    op.create_index("ix_case_links_key", "case_links", ["key"], unique=False)
    op.create_index("ix_case_links_case_id", "case_links", ["case_id"], unique=False)
    op.create_table(
        "slack_home_viewers",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("slack_home_viewers")
    op.drop_index("ix_case_links_key", table_name="case_links")
    op.drop_table("case_links")
