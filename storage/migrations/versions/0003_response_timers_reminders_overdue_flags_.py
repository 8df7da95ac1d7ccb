"""response timers: reminders, overdue flags, digests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:16:12.975840
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the reminder, overdue and digest times that the response timers keep on cases."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remind_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("reminded_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("overdue_flagged_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("digested_at", UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_remind_at"), ["remind_at"], unique=False)


def downgrade() -> None:
    """Drop the columns :func:`upgrade` added."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_remind_at"))
        batch_op.drop_column("digested_at")
        batch_op.drop_column("overdue_flagged_at")
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("remind_at")
