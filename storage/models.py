"""The database schema: cases, their categories, conversations, transcripts, dedupe keys.

The schema itself is created and changed only by the Alembic migrations in
``storage/migrations``; these classes must match them (a test checks).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flows.conversation import CaseStatus, is_overdue
from storage.encryption import BLIND_INDEXES, Sealed, SealedJSON, keys_of


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store an aware time as UTC (naive on SQLite, which has no zones); refuse a naive one."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read a stored time back as an aware UTC datetime, whatever the database gave."""
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
        """Store a status as its string, refusing anything that is not a :class:`CaseStatus`."""
        return None if value is None else CaseStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> CaseStatus | None:
        """Read a stored status back as a :class:`CaseStatus`."""
        return None if value is None else CaseStatus(value)


class Base(DeclarativeBase):
    """The models' base: every datetime column is stored as UTC, dicts and lists as JSON."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class Case(Base):
    """One enquiry, from submission to resolution; personal fields are erased by retention."""

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
    subject: Mapped[str | None] = mapped_column(Sealed())
    description: Mapped[str | None] = mapped_column(Sealed())
    links: Mapped[list[Any]] = mapped_column(SealedJSON(), default=list)
    already_reported: Mapped[bool | None] = mapped_column(Boolean)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_via: Mapped[str | None] = mapped_column(String(16))
    contact_email: Mapped[str | None] = mapped_column(Sealed())
    contact_phone: Mapped[str | None] = mapped_column(Sealed())
    contact_name: Mapped[str | None] = mapped_column(Sealed())
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
    outcome_note: Mapped[str | None] = mapped_column(Sealed())
    referred_to_platform: Mapped[bool | None] = mapped_column(Boolean)
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None] = mapped_column()
    overdue_flagged_at: Mapped[datetime | None] = mapped_column()
    digested_at: Mapped[datetime | None] = mapped_column()
    enquirer_chat: Mapped[str | None] = mapped_column(Sealed())
    """``channel:chat id`` of the chat the case came from (kept after the chat is gone)."""
    contact_email_index: Mapped[str | None] = mapped_column(String(40), index=True)
    contact_phone_index: Mapped[str | None] = mapped_column(String(40), index=True)
    enquirer_index: Mapped[str | None] = mapped_column(String(40), index=True)
    """Blind indexes (keyed HMACs) of the contact details and chat, for subject access."""
    erase_after: Mapped[datetime | None] = mapped_column(index=True)
    """When the retention sweep erases the personal data (set at creation)."""
    hold_reason: Mapped[str | None] = mapped_column(String(300))
    """A legal hold: the sweep leaves the case while this is set."""
    held_by: Mapped[str | None] = mapped_column(String(100))
    held_at: Mapped[datetime | None] = mapped_column()
    erased_at: Mapped[datetime | None] = mapped_column()
    """When the personal data went (by retention or on request); the labels stay."""

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
    state: Mapped[dict[str, Any]] = mapped_column(SealedJSON(), default=dict)
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
    text: Mapped[str] = mapped_column(Sealed(), default="")


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
    payload: Mapped[dict[str, Any]] = mapped_column(SealedJSON(), default=dict)
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
    body: Mapped[str] = mapped_column(Sealed())
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
    detail: Mapped[str | None] = mapped_column(Sealed())


class EmailRecord(Base):
    """One email in or out of the helpline's mailbox: what it was, never what it said.

    Inbound rows make each message handled once (its place in the mailbox, its
    Message-ID); outbound rows hold our own Message-IDs, so a reply to one threads onto its
    case. The sender is kept only as a hash, enough to limit acknowledgements per sender.
    """

    __tablename__ = "email_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str | None] = mapped_column(String(250))
    mailbox_key: Mapped[str | None] = mapped_column(String(250), unique=True)
    """``folder:uidvalidity:uid`` of an inbound message."""
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), index=True
    )
    outcome: Mapped[str] = mapped_column(String(24))
    sender_key: Mapped[str | None] = mapped_column(String(64), index=True)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (
        UniqueConstraint("direction", "message_id", name="uq_email_messages_message_id"),
    )


class CaseLink(Base):
    """A key a case is known by (an account, a group, an invite: :func:`flows.links.link_key`).

    Cases sharing a key are reports of the same thing: the desk sees them linked. An
    account name identifies a person as well as a link does, so the key is kept sealed
    (``shown``) and matched by its blind index (``key``, kept by ``BLIND_INDEXES``).
    """

    __tablename__ = "case_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(40))
    shown: Mapped[str] = mapped_column(Sealed())

    __table_args__ = (
        Index("ix_case_links_key", "key"),
        UniqueConstraint("case_id", "key", name="uq_case_links_case_key"),
    )


class HomeViewer(Base):
    """A practitioner who opened the desk's App Home in Slack: their queue is kept current."""

    __tablename__ = "slack_home_viewers"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column()


class AuditEntry(Base):
    """One practitioner action or disclosure of personal data (append-only; no personal data).

    It names the case by reference, not by a foreign key, so it outlives the case's erasure.
    """

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(32))
    case_reference: Mapped[str | None] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(16))


class PrivacyRequest(Base):
    """A subject access or erasure request: when it came, when it is due, when answered.

    The person is named only by a blind index (see :mod:`storage.encryption`).
    """

    __tablename__ = "privacy_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_index: Mapped[str] = mapped_column(String(40))
    received_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None] = mapped_column()
    overdue_flagged_at: Mapped[datetime | None] = mapped_column()


class SubjectWord(Base):
    """Words of subject lines, counted by the hour the cases arrived (see
    :mod:`storage.subject_words`): the report's Table 5 without opening a subject. No row
    names a case, so erasure leaves it."""

    __tablename__ = "subject_words"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    word: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


@event.listens_for(Case, "after_insert")
def _count_subject_words(_mapper: Any, connection: Any, case: Case) -> None:
    """Every case stored through the ORM adds its subject's words to the tally."""
    from storage import subject_words  # it imports these models

    subject_words.add_sync(connection, subject_words.tally([(case.received_at, case.subject)]))


@event.listens_for(CaseLink, "before_insert")
def _index_link(_mapper: Any, connection: Any, link: CaseLink) -> None:
    """A link's blind index follows its key (see BLIND_INDEXES)."""
    ((index, (source, kind)),) = BLIND_INDEXES["case_links"].items()
    setattr(link, index, keys_of(connection.dialect).blind(kind, getattr(link, source)))


@event.listens_for(Case, "before_insert")
@event.listens_for(Case, "before_update")
def _keep_blind_indexes(_mapper: Any, connection: Any, case: Case) -> None:
    """A case's blind indexes follow its contact details and chat (see BLIND_INDEXES)."""
    keys = keys_of(connection.dialect)
    for index, (source, kind) in BLIND_INDEXES["cases"].items():
        value = getattr(case, source)
        setattr(case, index, keys.blind(kind, value) if value else None)


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
    payload: Mapped[dict[str, Any]] = mapped_column(SealedJSON(), default=dict)
    """What the enquirer or the bot said: sealed, as every message is."""
    at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        UniqueConstraint("chat_id", "seq", name="uq_web_messages_seq"),
        UniqueConstraint("chat_id", "origin", name="uq_web_messages_origin"),
    )
