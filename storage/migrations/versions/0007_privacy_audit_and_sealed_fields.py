"""data protection: sealed personal fields, blind indexes, retention holds, audit, requests

Revision ID: 0007privacy
Revises: 0004
Create Date: 2026-12-02 00:00:00

Personal fields become text that holds AES-GCM ciphertext (PostgreSQL: the column types
change to ``text``; SQLite keeps any value in any column, so its tables are not
rebuilt). Values written before this revision are sealed here with the engine's key.
Cases gain blind indexes for subject access, a retention date, a legal hold and an
erasure stamp; subject words are tallied (the yearly report counts them without
opening a subject, and erasure leaves the count). The audit trail is append-only: a
trigger refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage import encryption
from storage.models import UTCDateTime

revision = "0007privacy"
down_revision = "0006mail"
branch_labels = None
depends_on = None

SEALED = {
    "cases": (
        "subject",
        "description",
        "links",
        "contact_email",
        "contact_phone",
        "contact_name",
        "outcome_note",
    ),
    "conversations": ("state",),
    "transcript": ("text",),
    "outbox": ("payload",),
    "inbox": ("body",),
    "case_events": ("detail",),
    "web_messages": ("payload",),
}
"""The existing columns sealed at this revision (values written before it are sealed here)."""
ADDED_SEALED = {"cases": ("enquirer_chat",)}
"""Sealed columns this revision adds (they hold no values yet)."""

APPEND_ONLY_PG = """
CREATE OR REPLACE FUNCTION audit_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    """Add the audit, requests and word-tally tables, hold columns, and seal existing rows."""
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        for name, columns in SEALED.items():
            for column in columns:
                op.alter_column(name, column, type_=sa.Text(), postgresql_using=f"{column}::text")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enquirer_chat", sa.Text(), nullable=True))
        for index in ("contact_email_index", "contact_phone_index", "enquirer_index"):
            batch_op.add_column(sa.Column(index, sa.String(length=40), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_cases_{index}"), [index], unique=False)
        batch_op.add_column(sa.Column("erase_after", UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_erase_after"), ["erase_after"], unique=False)
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("held_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("held_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("erased_at", UTCDateTime(), nullable=True))

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("case_reference", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_actor"), ["actor"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_case_reference"), ["case_reference"], unique=False
        )
    if postgres:
        op.execute(APPEND_ONLY_PG)
        op.execute(
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
            "FOR EACH ROW EXECUTE FUNCTION audit_is_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
                "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
            )

    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_index", sa.String(length=40), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("extended", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("overdue_flagged_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("privacy_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_requests_due_on"), ["due_on"], unique=False)

    op.create_table(
        "subject_words",
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "word"),
    )

    keys = encryption.keys_of(bind.dialect)
    if keys.usable:
        _count_existing_subjects(bind, keys)
        encryption.reseal(bind, keys, SEALED)
        encryption.reindex(bind, keys, only=["cases"])  # the tables of this revision


def _count_existing_subjects(bind: sa.Connection, keys: encryption.DataKeys) -> None:
    """The words of the subjects already stored (read before they are sealed)."""
    from storage import subject_words

    cases = sa.table("cases", sa.column("received_at", UTCDateTime()), sa.column("subject"))
    rows = bind.execute(
        sa.select(cases.c.received_at, cases.c.subject).where(cases.c.subject.is_not(None))
    ).all()
    pairs = [(received, keys.open(subject)) for received, subject in rows]
    subject_words.add_sync(bind, subject_words.tally(pairs))


def downgrade() -> None:
    """Drop what upgrade added (sealed values stay sealed)."""
    bind = op.get_bind()
    op.drop_table("subject_words")
    op.drop_table("privacy_requests")
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP TRIGGER IF EXISTS audit_no_truncate ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_is_append_only()")
    op.drop_table("audit")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for index in ("contact_email_index", "contact_phone_index", "enquirer_index"):
            batch_op.drop_index(batch_op.f(f"ix_cases_{index}"))
            batch_op.drop_column(index)
        batch_op.drop_index(batch_op.f("ix_cases_erase_after"))
        for name in ("enquirer_chat", "erase_after", "hold_reason", "held_by", "held_at"):
            batch_op.drop_column(name)
        batch_op.drop_column("erased_at")
