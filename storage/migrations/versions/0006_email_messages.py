"""email messages: what came in and went out of the helpline's mailbox

Revision ID: 0006mail
Revises: 0004
Create Date: 2026-12-02 00:00:00

One row per email handled or sent: its place in the mailbox (folder, UIDVALIDITY, UID) and
Message-ID, so each is handled once, and our own Message-IDs, so replies thread onto their
case. No content and no address is stored here (the sender only as a hash).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0006mail"
down_revision = "0005web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the table."""
    op.create_table(
        "email_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=True),
        sa.Column("mailbox_key", sa.String(length=250), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("sender_key", sa.String(length=64), nullable=True),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox_key"),
        sa.UniqueConstraint("direction", "message_id", name="uq_email_messages_message_id"),
    )
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_messages_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_email_messages_sender_key"), ["sender_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_email_messages_at"), ["at"], unique=False)


def downgrade() -> None:
    """Drop it."""
    op.drop_table("email_messages")
