"""outbox leases, streams and doubt; the webhook inbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00

The outbox gets a stream column (rows of one stream go in order; a chat's replies are
one stream), a lease that is renewed while its holder lives (so a crashed process's rows
are picked up within seconds, not minutes), a flag for attempts that may have arrived
(looked up before sending again) and a count of failures that were not rate limits (what
the backoff grows with). The inbox holds webhook updates accepted but not yet handled.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Give outbox rows a stream, a lease and failure counts (filling streams for rows already
    there), and add the webhook inbox.
    """
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("leased_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("leased_until", UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("maybe_sent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("failures", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_outbox_stream"), ["stream"], unique=False)
    _fill_streams()

    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("chat", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("leased_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "key", name="uq_inbox_update"),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_available_at"), ["available_at"], unique=False)


def _fill_streams() -> None:
    """Rows written before this revision: Slack rows share one stream, a chat's its own."""
    bind = op.get_bind()
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("payload", sa.JSON()),
        sa.column("stream", sa.String()),
    )
    bind.execute(outbox.update().where(outbox.c.kind.like("slack.%")).values(stream="slack"))
    rows = bind.execute(
        sa.select(outbox.c.id, outbox.c.payload).where(outbox.c.kind.like("enquirer.%"))
    ).all()
    for row in rows:
        payload = row.payload or {}
        stream = f"enquirer:{payload.get('channel')}:{payload.get('chat_id')}"
        bind.execute(outbox.update().where(outbox.c.id == row.id).values(stream=stream[:120]))


def downgrade() -> None:
    """Drop the inbox and the outbox columns :func:`upgrade` added."""
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_available_at"))
    op.drop_table("inbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_stream"))
        batch_op.drop_column("failures")
        batch_op.drop_column("maybe_sent")
        batch_op.drop_column("leased_until")
        batch_op.drop_column("leased_by")
        batch_op.drop_column("stream")
