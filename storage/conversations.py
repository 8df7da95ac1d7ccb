"""Conversation progress, transcripts and update dedupe: small functions over a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from flows.conversation import Conversation
from storage.models import ConversationRecord, ProcessedUpdate, TranscriptEntry


@dataclass(frozen=True, slots=True)
class Saved:
    """A chat's saved progress as read from the database (plain data, not an ORM object)."""

    id: int
    state: Mapping[str, Any]


def _chat(channel: str, chat_id: str) -> ColumnElement[bool]:
    return (ConversationRecord.channel == channel) & (ConversationRecord.chat_id == chat_id)


async def load_for_update(
    session: AsyncSession, channel: str, chat_id: str, now: datetime
) -> Saved:
    """The chat's saved progress, created if new, locked until the transaction ends.

    The row lock (PostgreSQL) or the immediate write transaction (SQLite) keeps a
    second replica from handling the same chat at the same time. Plain Core statements:
    this runs for every message, and the ORM's unit of work would double its cost.
    """
    query = (
        select(ConversationRecord.id, ConversationRecord.state)
        .where(_chat(channel, chat_id))
        .with_for_update()
    )
    row = (await session.execute(query)).first()
    if row is None:
        values = {"channel": channel, "chat_id": chat_id, "state": {}, "updated_at": now}
        # Another replica may create it at the same moment: then take theirs.
        await session.execute(_insert_ignoring_conflict(session, ConversationRecord, values))
        row = (await session.execute(query)).one()
    return Saved(int(row.id), row.state or {})


async def find(session: AsyncSession, channel: str, chat_id: str) -> Saved | None:
    query = select(ConversationRecord.id, ConversationRecord.state).where(_chat(channel, chat_id))
    row = (await session.execute(query)).first()
    return Saved(int(row.id), row.state or {}) if row else None


def restore(saved: Saved) -> Conversation:
    return Conversation.from_json(saved.state)


async def store(
    session: AsyncSession, saved: Saved, conversation: Conversation, now: datetime
) -> None:
    await session.execute(
        update(ConversationRecord)
        .where(ConversationRecord.id == saved.id)
        .values(state=conversation.to_json(), updated_at=now)
    )


async def add_turns(session: AsyncSession, turns: Sequence[Mapping[str, Any]]) -> None:
    """Append several turns in one statement (the hot path: every message adds some)."""
    if turns:
        await session.execute(insert(TranscriptEntry), [dict(t) for t in turns])


def _insert_ignoring_conflict(session: AsyncSession, table: Any, values: Mapping[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return (
        (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        .values(dict(values))
        .on_conflict_do_nothing()
    )


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
    values = {"source": source, "key": key, "at": now}
    result = await session.execute(_insert_ignoring_conflict(session, ProcessedUpdate, values))
    return bool(getattr(result, "rowcount", 0))


async def forget_processed_before(session: AsyncSession, cutoff: datetime) -> int:
    """Drop dedupe keys older than any redelivery window (Telegram keeps updates 24 h)."""
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
