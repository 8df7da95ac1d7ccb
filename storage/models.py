"""The database schema: cases, their categories, conversations, transcripts, dedupe keys.

The schema itself is created and changed only by the Alembic migrations in
``storage/migrations``; these classes must match them (a test checks).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flows.conversation import CaseStatus, is_overdue


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StatusColumn(TypeDecorator[CaseStatus]):
    """A case's status as :class:`CaseStatus` in Python and its plain value in the table.

    A value that is not a status is refused on the way in, so no stray string is stored.
    """

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: CaseStatus | str | None, dialect: Dialect) -> str | None:
        return None if value is None else CaseStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> CaseStatus | None:
        return None if value is None else CaseStatus(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[CaseStatus] = mapped_column(StatusColumn(), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    enquirer_type: Mapped[str | None] = mapped_column(String(64))
    setting: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    platform_type: Mapped[str | None] = mapped_column(String(64))
    platform: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    links: Mapped[list[Any]] = mapped_column(default=list)
    already_reported: Mapped[bool | None] = mapped_column(Boolean)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_via: Mapped[str | None] = mapped_column(String(16))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    signposted_to: Mapped[list[Any]] = mapped_column(default=list)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    due_at: Mapped[datetime | None] = mapped_column()
    in_hours: Mapped[bool | None] = mapped_column(Boolean)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(64))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    referred_to_platform: Mapped[bool | None] = mapped_column(Boolean)
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None] = mapped_column()
    overdue_flagged_at: Mapped[datetime | None] = mapped_column()
    digested_at: Mapped[datetime | None] = mapped_column()

    categories: Mapped[list[CaseCategory]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseCategory.position"
    )

    def is_overdue(self, now: datetime) -> bool:
        """Open and past its reply time (see :func:`flows.conversation.is_overdue`)."""
        return is_overdue(self.status, self.due_at, now)


class CaseCategory(Base):
    """One row per (case, category): the report counts them with GROUP BY."""

    __tablename__ = "case_categories"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    case: Mapped[Case] = relationship(back_populates="categories")

    __table_args__ = (Index("ix_case_categories_category", "category"),)


class ConversationRecord(Base):
    """An enquirer's progress in one chat on one channel, saved after every message."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("channel", "chat_id", name="uq_conversations_chat"),)


class TranscriptEntry(Base):
    """One turn: who spoke, and what (an attachment is recorded only as refused).

    While a conversation is in progress its entries have no case; when it becomes a case
    they are attached to it. Cancelling deletes the entries that have no case.
    """

    __tablename__ = "transcript"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column()
    sender: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24), default="text")
    text: Mapped[str] = mapped_column(Text, default="")


class ProcessedUpdate(Base):
    """Dedupe: an update from a source (a bot, a Slack app) is acted on once."""

    __tablename__ = "processed_updates"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """A hand-off that must not be lost, written in the same transaction as its cause.

    A worker sends due rows in id order, retrying with backoff; ``sent_at`` marks
    success, ``failed_at`` a message given up on (the reason is kept in ``last_error``).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column()
    available_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(200))
    stream: Mapped[str | None] = mapped_column(String(120), index=True)
    """Rows of one stream go strictly in order: ``slack``, or ``enquirer:<channel>:<chat>``."""
    leased_by: Mapped[str | None] = mapped_column(String(64))
    """The process (and role) sending the row now; None when nobody is."""
    leased_until: Mapped[datetime | None] = mapped_column()
    """Until when the lease holds; renewed while its holder lives, so a crash frees it soon."""
    maybe_sent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """An earlier attempt may have arrived (it timed out): look before sending again."""
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Failed attempts that were not rate limits: what the backoff grows with."""

    __table_args__ = (Index("ix_outbox_pending", "sent_at", "failed_at", "available_at"),)


class InboxUpdate(Base):
    """An update accepted from a webhook and not yet handled (the transactional inbox).

    The webhook answers as soon as the update is stored here, so a chat's queue never
    holds the sender's connection; handling it deletes the row in the turn's own
    transaction. A crash leaves the row, and it is handled again once its lease runs out.
    """

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    chat: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column()
    available_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    leased_by: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("source", "key", name="uq_inbox_update"),)


class CaseEvent(Base):
    """Who did what to a case, and when (claims, replies, outcomes)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class WebSession(Base):
    """A web chat's session: what the browser's random token opens (it is kept only hashed).

    ``chat_id`` is the conversation's chat on channel ``web``; the token never is. Ending a
    session (quick exit, expiry) deletes it with its messages.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)


class WebMessage(Base):
    """One message shown in a web chat, numbered in order within its chat (``seq``).

    A browser that reconnects asks for what came after the last number it saw. ``origin``
    says what wrote it (a turn's reply, an outbox row), so a resend writes nothing twice.
    """

    __tablename__ = "web_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        UniqueConstraint("chat_id", "seq", name="uq_web_messages_seq"),
        UniqueConstraint("chat_id", "origin", name="uq_web_messages_origin"),
    )
