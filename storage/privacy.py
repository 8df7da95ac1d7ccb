"""Subject access and erasure: finding every record about a person, and erasing it.

A person is named by how they reached us (a Telegram user, a web chat session, an email
address, a phone number) or by a case reference. Contact details and chats are sealed,
so cases are found by their blind indexes (:mod:`storage.encryption`); conversations by
their chat. Erasing keeps a case's anonymous labels (what the yearly analysis counts)
and removes everything that could identify someone.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from flows.privacy import Identity, RequestKind
from storage import links as link_store
from storage import outbox
from storage import web as web_store
from storage.encryption import DataKeys
from storage.models import (
    Case,
    CaseEvent,
    ConversationRecord,
    EmailRecord,
    OutboxMessage,
    PrivacyRequest,
    TranscriptEntry,
)

CHANNEL_OF = {Identity.TELEGRAM_USER: "telegram", Identity.WEB_SESSION: "web"}
"""The chat channel an identity names (its chat id is the identifier given)."""
PERSONAL_FIELDS = (
    "subject",
    "description",
    "links",
    "contact_email",
    "contact_phone",
    "contact_name",
    "outcome_note",
)
"""A case's fields that erasure empties (with its transcript, notes and chat)."""
_ERASED_VALUES: dict[str, Any] = {
    "subject": None,
    "description": None,
    "links": [],
    "contact_email": None,
    "contact_phone": None,
    "contact_name": None,
    "outcome_note": None,
    "conversation_id": None,
    "enquirer_chat": None,
    "contact_email_index": None,
    "contact_phone_index": None,
    "enquirer_index": None,
}


def chat_identity(channel: str, chat_id: str) -> str:
    """How a chat is written in a case's ``enquirer_chat`` (and its blind index)."""
    return f"{channel}:{chat_id}"


@dataclass(frozen=True, slots=True)
class Found:
    """Every record about one person."""

    cases: list[Case]
    conversations: list[ConversationRecord]
    messages: int

    @property
    def references(self) -> list[str]:
        """The references of the cases found, for listing and for the audit."""
        return [c.reference for c in self.cases]


def _case_condition(keys: DataKeys, identity: Identity, value: str) -> ColumnElement[bool]:
    if identity is Identity.REFERENCE:
        return Case.reference == value.strip().upper()
    if identity is Identity.EMAIL:
        return Case.contact_email_index.in_(keys.blinds("email", value))
    if identity is Identity.PHONE:
        return Case.contact_phone_index.in_(keys.blinds("phone", value))
    chat = chat_identity(CHANNEL_OF[identity], value.strip())
    return Case.enquirer_index.in_(keys.blinds("chat", chat))


async def find(
    session: AsyncSession, keys: DataKeys, identity: Identity, value: str, *, lock: bool = False
) -> Found:
    """The cases, conversations and messages about the person ``identity``/``value`` names.

    With ``lock`` (for an erasure) the chats' rows are locked first, as a turn locks its chat
    (``conversations.load_for_update``), and held until the transaction ends: a turn of one
    of those chats, on any replica, then runs wholly before the erasure (which sees the case
    it may have sent) or wholly after it (on a fresh chat), never in between. SQLite needs no
    row lock: its transactions never overlap (``BEGIN IMMEDIATE``).
    """
    if identity in CHANNEL_OF:
        chat = (ConversationRecord.channel == CHANNEL_OF[identity]) & (
            ConversationRecord.chat_id == value.strip()
        )
        conversations = await _conversations(session, chat, lock=lock)
        cases = await _cases(session, keys, identity, value)
    else:
        cases = await _cases(session, keys, identity, value)
        ids = [c.conversation_id for c in cases if c.conversation_id is not None]
        conversations = await _conversations(session, ConversationRecord.id.in_(ids), lock=lock)
        if lock and conversations:  # what a turn of those chats committed while we waited
            cases = await _cases(session, keys, identity, value)
    case_ids = [c.id for c in cases]
    chat_ids = [c.id for c in conversations]
    count = select(func.count()).select_from(TranscriptEntry)
    count = count.where(
        or_(
            TranscriptEntry.case_id.in_(case_ids) if case_ids else false(),
            TranscriptEntry.conversation_id.in_(chat_ids) if chat_ids else false(),
        )
    )
    messages = int((await session.execute(count)).scalar_one())
    return Found(cases=cases, conversations=conversations, messages=messages)


async def _cases(
    session: AsyncSession, keys: DataKeys, identity: Identity, value: str
) -> list[Case]:
    query = (
        select(Case)
        .where(_case_condition(keys, identity, value), Case.erased_at.is_(None))
        .options(selectinload(Case.categories))
        .order_by(Case.received_at, Case.id)
        .execution_options(populate_existing=True)  # read again after a lock, not cached
    )
    return list((await session.execute(query)).scalars())


async def _conversations(
    session: AsyncSession, which: ColumnElement[bool], *, lock: bool
) -> list[ConversationRecord]:
    query = select(ConversationRecord).where(which).order_by(ConversationRecord.id)
    if lock:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class CaseErasure:
    """What erasing one case removes (names of fields, counts: never the data itself)."""

    reference: str
    fields: list[str]
    transcript: int
    notes: int
    messages_waiting: int


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """Exactly what an erasure removes: shown by ``--dry-run``, then done."""

    cases: list[CaseErasure] = field(default_factory=list)
    conversations: int = 0
    conversation_messages: int = 0


async def plan(session: AsyncSession, found: Found) -> ErasurePlan:
    """What :func:`erase` would remove for ``found`` (read only)."""
    planned = []
    for case in found.cases:
        fields = [name for name in PERSONAL_FIELDS if getattr(case, name) not in (None, "", [])]
        transcript = await _count(session, TranscriptEntry, TranscriptEntry.case_id == case.id)
        notes = await _count(
            session, CaseEvent, (CaseEvent.case_id == case.id) & CaseEvent.detail.is_not(None)
        )
        waiting = await _count(session, OutboxMessage, OutboxMessage.case_id == case.id)
        planned.append(CaseErasure(case.reference, fields, transcript, notes, waiting))
    chat_ids = [c.id for c in found.conversations]
    chat_turns = (
        await _count(
            session,
            TranscriptEntry,
            TranscriptEntry.conversation_id.in_(chat_ids) & TranscriptEntry.case_id.is_(None),
        )
        if chat_ids
        else 0
    )
    return ErasurePlan(planned, len(found.conversations), chat_turns)


async def _count(session: AsyncSession, model: type[object], where: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(model).where(where)
    return int((await session.execute(query)).scalar_one())


async def erase_cases(session: AsyncSession, ids: Sequence[int], now: datetime) -> None:
    """Remove the personal data of the cases ``ids``; their labels and dates stay.

    Their transcripts go, the text of their notes and replies, and every outbox row
    about them (payloads hold what people wrote; the caller enqueues what must still
    be said, such as the card saying the case was erased).
    """
    if not ids:
        return
    ids = list(ids)
    await session.execute(delete(TranscriptEntry).where(TranscriptEntry.case_id.in_(ids)))
    await link_store.forget(session, ids)  # an account name identifies as well as a link
    await session.execute(delete(EmailRecord).where(EmailRecord.case_id.in_(ids)))
    await session.execute(update(CaseEvent).where(CaseEvent.case_id.in_(ids)).values(detail=None))
    await session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.case_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Case)
        .where(Case.id.in_(ids))
        .values(**_ERASED_VALUES, erased_at=now)
        .execution_options(synchronize_session=False)
    )


async def erase_conversations(
    session: AsyncSession,
    conversations: Sequence[ConversationRecord],
    now: datetime,
    *,
    blank: str,
) -> None:
    """Forget chats: their progress, what was said in them, and what waits to be sent. A
    web chat's own copy of what it showed keeps its numbering, every message ``blank``."""
    if not conversations:
        return
    web = CHANNEL_OF[Identity.WEB_SESSION]
    await web_store.forget(
        session,
        [c.chat_id for c in conversations if c.channel == web],
        blank,
        now,
        everything=True,
    )
    ids = [c.id for c in conversations]
    await session.execute(delete(TranscriptEntry).where(TranscriptEntry.conversation_id.in_(ids)))
    streams = [outbox.chat_stream(c.channel, c.chat_id) for c in conversations]
    await session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.stream.in_(streams))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(ConversationRecord)
        .where(ConversationRecord.id.in_(ids))
        .execution_options(synchronize_session=False)
    )


# Requests ------------------------------------------------------------------------------

_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_PREFIX = {RequestKind.ACCESS: "SAR-", RequestKind.ERASURE: "ERA-"}


def identity_index(keys: DataKeys, identity: Identity, value: str) -> str:
    """How a request names its person: a blind index, never the identifier itself."""
    return keys.blind(f"request:{identity.value}", value)


def add_request(
    session: AsyncSession,
    *,
    kind: RequestKind,
    identity: Identity,
    subject_index: str,
    received_on: date,
    due_on: date,
    actor: str,
    closed_at: datetime | None = None,
) -> PrivacyRequest:
    """Record a request (to the caller's transaction), with a reference to quote."""
    reference = _PREFIX[kind] + "".join(secrets.choice(_ALPHABET) for _ in range(6))
    request = PrivacyRequest(
        reference=reference,
        kind=kind.value,
        subject_kind=identity.value,
        subject_index=subject_index,
        received_on=received_on,
        due_on=due_on,
        extended=False,
        recorded_by=actor[:100],
        closed_at=closed_at,
    )
    session.add(request)
    return request


async def open_requests(session: AsyncSession) -> Sequence[PrivacyRequest]:
    """Requests not yet closed, soonest due first."""
    query = (
        select(PrivacyRequest)
        .where(PrivacyRequest.closed_at.is_(None))
        .order_by(PrivacyRequest.due_on, PrivacyRequest.id)
    )
    return (await session.execute(query)).scalars().all()


async def get_request(session: AsyncSession, reference: str) -> PrivacyRequest | None:
    """One subject-access or erasure request by its reference (any case), or None."""
    query = select(PrivacyRequest).where(PrivacyRequest.reference == reference.strip().upper())
    return (await session.execute(query)).scalar_one_or_none()


async def newly_overdue_requests(
    session: AsyncSession, today: date, now: datetime
) -> Sequence[PrivacyRequest]:
    """Open requests past their due day not flagged yet, stamped so they are flagged once."""
    stamped = (
        update(PrivacyRequest)
        .where(
            PrivacyRequest.closed_at.is_(None),
            PrivacyRequest.due_on < today,
            PrivacyRequest.overdue_flagged_at.is_(None),
        )
        .values(overdue_flagged_at=now)
        .returning(PrivacyRequest.id)
    )
    ids = list((await session.execute(stamped)).scalars())
    if not ids:
        return []
    query = select(PrivacyRequest).where(PrivacyRequest.id.in_(ids)).order_by(PrivacyRequest.id)
    return (await session.execute(query)).scalars().all()


# Holds ---------------------------------------------------------------------------------


async def place_hold(
    session: AsyncSession, case_id: int, *, actor: str, reason: str, now: datetime
) -> None:
    """The retention sweep leaves this case until the hold is lifted."""
    await session.execute(
        update(Case)
        .where(Case.id == case_id)
        .values(hold_reason=reason[:300], held_by=actor[:100], held_at=now)
        .execution_options(synchronize_session=False)
    )


async def lift_hold(session: AsyncSession, case_id: int) -> None:
    """End a legal hold: the case is erased again when its time comes."""
    await session.execute(
        update(Case)
        .where(Case.id == case_id)
        .values(hold_reason=None, held_by=None, held_at=None)
        .execution_options(synchronize_session=False)
    )
