"""Conversation progress, transcripts and update dedupe: small functions over a session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flows.conversation import Conversation
from storage.models import ConversationRecord, ProcessedUpdate, TranscriptEntry


async def load_for_update(
    session: AsyncSession, channel: str, chat_id: str, now: datetime
) -> ConversationRecord:
    """The chat's conversation row, created if new, locked until the transaction ends.

    The row lock (PostgreSQL) or the immediate write transaction (SQLite) keeps a
    second replica from handling the same chat at the same time.
    """
    query = (
        select(ConversationRecord)
        .where(ConversationRecord.channel == channel, ConversationRecord.chat_id == chat_id)
        .with_for_update()
    )
    record = (await session.execute(query)).scalar_one_or_none()
    if record is not None:
        return record
    try:
        async with session.begin_nested():
            record = ConversationRecord(channel=channel, chat_id=chat_id, state={}, updated_at=now)
            session.add(record)
    except IntegrityError:
        # Another replica created it between our select and insert: take theirs.
        record = (await session.execute(query)).scalar_one()
    return record


async def find(session: AsyncSession, channel: str, chat_id: str) -> ConversationRecord | None:
    query = select(ConversationRecord).where(
        ConversationRecord.channel == channel, ConversationRecord.chat_id == chat_id
    )
    return (await session.execute(query)).scalar_one_or_none()


def restore(record: ConversationRecord) -> Conversation:
    return Conversation.from_json(record.state)


def store(record: ConversationRecord, conversation: Conversation, now: datetime) -> None:
    record.state = conversation.to_json()
    record.updated_at = now


def add_turn(
    session: AsyncSession,
    *,
    conversation_id: int | None,
    case_id: int | None = None,
    sender: str,
    text: str,
    at: datetime,
    kind: str = "text",
) -> None:
    """Append one turn to the transcript."""
    session.add(
        TranscriptEntry(
            conversation_id=conversation_id,
            case_id=case_id,
            sender=sender,
            text=text,
            at=at,
            kind=kind,
        )
    )


async def attach_transcript(session: AsyncSession, conversation_id: int, case_id: int) -> None:
    """Give the conversation's loose turns to the case it became."""
    await session.flush()
    await session.execute(
        update(TranscriptEntry)
        .where(
            TranscriptEntry.conversation_id == conversation_id, TranscriptEntry.case_id.is_(None)
        )
        .values(case_id=case_id)
    )


async def forget_transcript(session: AsyncSession, conversation_id: int) -> None:
    """Delete what an unfinished conversation collected (cancel, restart, signposting)."""
    await session.flush()
    await session.execute(
        delete(TranscriptEntry).where(
            TranscriptEntry.conversation_id == conversation_id, TranscriptEntry.case_id.is_(None)
        )
    )


async def first_time(session: AsyncSession, source: str, key: str, now: datetime) -> bool:
    """Record that ``source`` delivered ``key``; False if it had already been seen.

    Runs inside the caller's transaction: if the work fails and rolls back, the key
    is released and a redelivery is processed.
    """
    dialect = session.get_bind().dialect.name
    values = {"source": source, "key": key, "at": now}
    insert_ = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ProcessedUpdate)
    result = await session.execute(insert_.values(values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


async def forget_processed_before(session: AsyncSession, cutoff: datetime) -> int:
    """Drop dedupe keys older than any redelivery window (Telegram keeps updates 24 h)."""
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
