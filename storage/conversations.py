"""Conversation progress, transcripts and update dedupe: small functions over a session.

The functions every inbound message runs (:func:`first_time`, :func:`load_for_update`,
:func:`add_turns`, :func:`store`) take a session or its connection and run statements
built once, below, as :class:`~storage.prepared.Prepared` statements: SQLAlchemy compiles
them once per dialect and the driver runs them, since Core's per-execution work cost
several times what the database did.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    String,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from flows.conversation import Conversation
from storage import outbox
from storage.models import (
    Case,
    ConversationRecord,
    OutboxMessage,
    ProcessedUpdate,
    TranscriptEntry,
    UTCDateTime,
)
from storage.prepared import Prepared


@dataclass(frozen=True, slots=True)
class Saved:
    """A chat's saved progress as read from the database (plain data, not an ORM object)."""

    id: int
    state: Mapping[str, Any]
    backlog: bool = False
    """Something said to this chat earlier is still waiting in the outbox (when asked)."""


Database = AsyncSession | AsyncConnection
"""Where a statement runs: a session, or (cheaper, on the hot path) its connection."""


def _chat(channel: str, chat_id: str) -> ColumnElement[bool]:
    return (ConversationRecord.channel == channel) & (ConversationRecord.chat_id == chat_id)


def _insert_or_nothing(table: Any, returning: Any = None, **values: str) -> Prepared:
    """``INSERT … ON CONFLICT DO NOTHING`` for each dialect, parameters bound by name
    (``RETURNING returning``: a row only when one was inserted)."""
    row: dict[str, BindParameter[Any]] = {
        column: bindparam(name) for column, name in values.items()
    }
    statements: dict[str, Any] = {
        "postgresql": postgresql.insert(table).values(row).on_conflict_do_nothing(),
        "sqlite": sqlite.insert(table).values(row).on_conflict_do_nothing(),
    }
    if returning is not None:
        statements = {name: s.returning(returning) for name, s in statements.items()}
    return Prepared(statements)


_LOAD_SELECT = (
    select(ConversationRecord.id, ConversationRecord.state)
    .where(
        ConversationRecord.channel == bindparam("channel"),
        ConversationRecord.chat_id == bindparam("chat_id"),
    )
    .with_for_update(of=ConversationRecord)
)
_LOAD_WITH_BACKLOG_SELECT = (
    select(
        ConversationRecord.id,
        ConversationRecord.state,
        outbox.backlog(
            bindparam("stream", type_=String), bindparam("now", type_=UTCDateTime())
        ).label("backlog"),
    )
    .where(
        ConversationRecord.channel == bindparam("channel"),
        ConversationRecord.chat_id == bindparam("chat_id"),
    )
    .with_for_update(of=ConversationRecord)
)
_LOAD = Prepared(_LOAD_SELECT)
_LOAD_WITH_BACKLOG = Prepared(_LOAD_WITH_BACKLOG_SELECT)
_CREATE = _insert_or_nothing(
    ConversationRecord, channel="channel", chat_id="chat_id", state="empty", updated_at="at"
)
_STORE = Prepared(
    update(ConversationRecord)
    .where(ConversationRecord.id == bindparam("conversation"))
    .values(state=bindparam("new_state"), updated_at=bindparam("at"))
)
TURN_FIELDS = ("conversation_id", "case_id", "at", "sender", "text", "kind")
"""What each turn given to :func:`add_turns` holds."""
_ADD_TURNS = Prepared(
    insert(TranscriptEntry).values({name: bindparam(name) for name in TURN_FIELDS})
)
_SEEN = _insert_or_nothing(
    ProcessedUpdate, ProcessedUpdate.key, source="source", key="key", at="at"
)


async def _connection(db: Database) -> AsyncConnection:
    """Core statements run on the connection: through a session they would take the ORM's
    bulk paths (slower, and an ORM insert reports no row count)."""
    return db if isinstance(db, AsyncConnection) else await db.connection()


async def load_for_update(
    db: Database, channel: str, chat_id: str, now: datetime, *, backlog: bool = False
) -> Saved:
    """The chat's saved progress, created if new, locked until the transaction ends.

    The row lock (PostgreSQL) or the immediate write transaction (SQLite) keeps a
    second replica from handling the same chat at the same time. Plain Core statements:
    this runs for every message, and the ORM's unit of work would double its cost.

    With ``backlog`` the same statement also says whether the chat has a
    :attr:`Saved.backlog` in the outbox (see ``storage.outbox.backlog``).
    """
    connection = await _connection(db)
    chat: dict[str, Any] = {"channel": channel, "chat_id": chat_id}
    load = _LOAD
    if backlog:
        load = _LOAD_WITH_BACKLOG
        chat |= {"stream": outbox.chat_stream(channel, chat_id), "now": now}
    rows = await load.rows(connection, chat)
    if not rows:
        # Another replica may create it at the same moment: then take theirs.
        new = {"channel": channel, "chat_id": chat_id, "empty": {}, "at": now}
        await _CREATE.rows(connection, new)
        rows = await load.rows(connection, chat)
    found = rows[0]
    return Saved(int(found[0]), found[1] or {}, bool(found[2]) if backlog else False)


@functools.cache
def _open_in_one(backlog: bool) -> Prepared:
    """PostgreSQL: :func:`first_time` and :func:`load_for_update` in one statement (the
    dedupe insert as a data-modifying CTE, the locked row joined to its count)."""
    seen = (
        postgresql.insert(ProcessedUpdate)
        .values(source=bindparam("source"), key=bindparam("key"), at=bindparam("at"))
        .on_conflict_do_nothing()
        .returning(ProcessedUpdate.key)
        .cte("seen")
    )
    counted = select(func.count().label("first")).select_from(seen).subquery("counted")
    load = _LOAD_WITH_BACKLOG_SELECT if backlog else _LOAD_SELECT
    chat = load.lateral("chat")
    columns = [counted.c.first, *chat.c]
    return Prepared(select(*columns).select_from(counted.outerjoin(chat, true())))


async def open_turn(
    db: Database,
    channel: str,
    chat_id: str,
    now: datetime,
    *,
    dedupe: tuple[str, str] | None,
    backlog: bool = False,
) -> Saved | None:
    """Begin a message's work: record its ``dedupe`` key (:func:`first_time`) and lock
    the chat's conversation (:func:`load_for_update`); None when the key was seen before
    (a duplicate). One statement on PostgreSQL, two on SQLite."""
    connection = await _connection(db)
    if dedupe is None or connection.dialect.name != "postgresql":
        if dedupe is not None and not await first_time(connection, *dedupe, now):
            return None
        return await load_for_update(connection, channel, chat_id, now, backlog=backlog)
    params: dict[str, Any] = {"source": dedupe[0], "key": dedupe[1], "at": now}
    params |= {"channel": channel, "chat_id": chat_id}
    if backlog:
        params |= {"stream": outbox.chat_stream(channel, chat_id), "now": now}
    first, found, state, *more = (await _open_in_one(backlog).rows(connection, params))[0]
    if not first:
        return None
    if found is None:  # a new chat: created (and locked) the usual way
        return await load_for_update(connection, channel, chat_id, now, backlog=backlog)
    return Saved(int(found), state or {}, bool(more[0]) if backlog else False)


async def find(session: AsyncSession, channel: str, chat_id: str) -> Saved | None:
    """The chat's saved conversation, if any; unlike :func:`load_for_update`, never creates one."""
    query = select(ConversationRecord.id, ConversationRecord.state).where(_chat(channel, chat_id))
    row = (await session.execute(query)).first()
    return Saved(int(row.id), row.state or {}) if row else None


def restore(saved: Saved) -> Conversation:
    """The conversation as it was saved."""
    return Conversation.from_json(saved.state)


async def store(db: Database, saved: Saved, conversation: Conversation, now: datetime) -> None:
    """Save the conversation after a turn, on the turn's own connection (as
    :func:`load_for_update` read it).
    """
    params = {"conversation": saved.id, "new_state": conversation.to_json(), "at": now}
    await _STORE.rows(await _connection(db), params)


@functools.cache
def _save_in_one(turns: int, reply: bool) -> Prepared:
    """PostgreSQL: ``turns`` transcript rows, the replies' outbox row (``reply``) and the
    conversation saved in one statement, the inserts as data-modifying CTEs: one round
    trip where three would be, for the statement every message ends with."""
    save: Any = (
        update(ConversationRecord)
        .where(ConversationRecord.id == bindparam("conversation"))
        .values(state=bindparam("new_state"), updated_at=bindparam("at"))
    )
    if turns:
        # Typed: rows after the first would otherwise bind untyped, and go unsealed.
        columns = TranscriptEntry.__table__.c
        rows = [
            {name: bindparam(f"{name}_{n}", type_=columns[name].type) for name in TURN_FIELDS}
            for n in range(turns)
        ]
        save = save.add_cte(insert(TranscriptEntry).values(rows).cte("turns"))
    if reply:
        added = (
            insert(OutboxMessage)
            .values({name: bindparam(f"reply_{name}") for name in outbox.REPLY_FIELDS})
            .returning(OutboxMessage.id)
            .cte("reply")
        )
        save = save.add_cte(added).returning(select(added.c.id).scalar_subquery())
    return Prepared(save)


async def save_turn(
    db: Database,
    saved: Saved,
    conversation: Conversation,
    now: datetime,
    *,
    turns: Sequence[Mapping[str, Any]] = (),
    reply: Mapping[str, Any] | None = None,
) -> int | None:
    """End a message's transaction: add its ``turns`` (as :func:`add_turns`), save the
    conversation (as :func:`store`) and write its replies' outbox row (``reply``, an
    ``outbox.reply_row``); the row's id. One statement on PostgreSQL, three on SQLite
    (where a statement costs no round trip)."""
    connection = await _connection(db)
    if connection.dialect.name != "postgresql":
        await add_turns(connection, turns)
        await store(connection, saved, conversation, now)
        return await outbox.add_reply_row(connection, dict(reply)) if reply else None
    params: dict[str, Any] = {
        "conversation": saved.id,
        "new_state": conversation.to_json(),
        "at": now,
    }
    for n, turn in enumerate(turns):
        params |= {f"{name}_{n}": turn[name] for name in TURN_FIELDS}
    if reply:
        params |= {f"reply_{name}": reply[name] for name in outbox.REPLY_FIELDS}
    found = await _save_in_one(len(turns), reply is not None).rows(connection, params)
    return int(found[0][0]) if reply else None


async def add_turns(db: Database, turns: Sequence[Mapping[str, Any]]) -> None:
    """Append several turns (each with every one of :data:`TURN_FIELDS`) in one call to
    the driver (the hot path: every message adds some)."""
    if turns:
        await _ADD_TURNS.many(await _connection(db), turns)


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


async def attach_transcript(
    session: AsyncSession, conversation_id: int, case_id: int, since: datetime | None = None
) -> None:
    """Give the conversation's loose turns to the case it became (or that they are about).

    ``since``: only the turns from then on (a follow-up to an earlier case written while a
    new enquiry is in progress: the new enquiry's turns are not the earlier case's).
    """
    await session.flush()
    query = update(TranscriptEntry).where(
        TranscriptEntry.conversation_id == conversation_id, TranscriptEntry.case_id.is_(None)
    )
    if since is not None:
        query = query.where(TranscriptEntry.at >= since)
    await session.execute(query.values(case_id=case_id))


async def forget_transcript(session: AsyncSession, conversation_id: int) -> None:
    """Delete what an unfinished conversation collected (cancel, restart, signposting)."""
    await session.flush()
    await session.execute(
        delete(TranscriptEntry).where(
            TranscriptEntry.conversation_id == conversation_id, TranscriptEntry.case_id.is_(None)
        )
    )


async def first_time(db: Database, source: str, key: str, now: datetime) -> bool:
    """Record that ``source`` delivered ``key``; False if it had already been seen.

    Runs inside the caller's transaction: if the work fails and rolls back, the key
    is released and a redelivery is processed.
    """
    values = {"source": source, "key": key, "at": now}
    return bool(await _SEEN.rows(await _connection(db), values))


async def forget_processed_before(session: AsyncSession, cutoff: datetime) -> int:
    """Drop dedupe keys older than any redelivery window (Telegram keeps updates 24 h)."""
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


async def awaiting_answer(
    db: Database, conversation_id: int, references: Sequence[str]
) -> str | None:
    """Which of ``references`` (this chat's earlier cases) a practitioner wrote to since
    the enquirer last wrote in the chat, the latest first; None if none.

    Run only for chats with earlier cases, so the usual turn pays nothing for it.
    """
    if not references:
        return None
    last_said = (
        select(func.max(TranscriptEntry.at))
        .where(
            TranscriptEntry.conversation_id == conversation_id,
            TranscriptEntry.sender == "enquirer",
        )
        .scalar_subquery()
    )
    query = (
        select(Case.reference)
        .join(TranscriptEntry, TranscriptEntry.case_id == Case.id)
        .where(
            Case.conversation_id == conversation_id,
            Case.reference.in_(list(references)),
            TranscriptEntry.sender == "practitioner",
            or_(last_said.is_(None), TranscriptEntry.at > last_said),
        )
        .order_by(TranscriptEntry.at.desc())
        .limit(1)
    )
    connection = await _connection(db)
    return (await connection.execute(query)).scalar_one_or_none()
