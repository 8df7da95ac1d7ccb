"""cases, conversations and transcripts

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:54:15.264185
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the first schema: conversations, processed updates, cases and transcripts."""
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "chat_id", name="uq_conversations_chat"),
    )
    op.create_table(
        "processed_updates",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "key"),
    )
    with op.batch_alter_table("processed_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_processed_updates_at"), ["at"], unique=False)

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("enquirer_type", sa.String(length=64), nullable=True),
        sa.Column("setting", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("platform_type", sa.String(length=64), nullable=True),
        sa.Column("platform", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("already_reported", sa.Boolean(), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("reply_via", sa.String(length=16), nullable=True),
        sa.Column("contact_email", sa.String(length=254), nullable=True),
        sa.Column("contact_phone", sa.String(length=32), nullable=True),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("signposted_to", sa.JSON(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("in_hours", sa.Boolean(), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=True),
        sa.Column("referred_to_platform", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cases_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cases_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_status"), ["status"], unique=False)

    op.create_table(
        "case_categories",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "category"),
    )
    with op.batch_alter_table("case_categories", schema=None) as batch_op:
        batch_op.create_index("ix_case_categories_category", ["category"], unique=False)

    op.create_table(
        "transcript",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transcript", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transcript_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_transcript_conversation_id"), ["conversation_id"], unique=False
        )


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    with op.batch_alter_table("transcript", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcript_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_transcript_case_id"))

    op.drop_table("transcript")
    with op.batch_alter_table("case_categories", schema=None) as batch_op:
        batch_op.drop_index("ix_case_categories_category")

    op.drop_table("case_categories")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_status"))
        batch_op.drop_index(batch_op.f("ix_cases_received_at"))
        batch_op.drop_index(batch_op.f("ix_cases_conversation_id"))

    op.drop_table("cases")
    with op.batch_alter_table("processed_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processed_updates_at"))

    op.drop_table("processed_updates")
    op.drop_table("conversations")
