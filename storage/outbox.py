"""The transactional outbox: enqueue with the data, lease due rows in order, mark results.

A row is sent by whoever holds its lease (``leased_by`` until ``leased_until``): the
worker, or the fast path that sends a turn's replies straight away. Holders renew their
leases while they live (:func:`renew`), so the rows of a process that died are free again
within one lease, and a row is never given up because it kept failing: it waits, loud,
until it can go (:func:`summary` says which rows are stuck).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage import leasing
from storage.models import OutboxMessage
from storage.prepared import Prepared

# Kinds of hand-off. Streams are sent strictly in order within themselves.
SLACK_CARD = "slack.card"
SLACK_THREAD = "slack.thread"
SLACK_POST = "slack.post"
"""A message to the desk channel (or on-call): ``{say, values}`` or ``{text}``, ``target``."""
SLACK_DIGEST = "slack.digest"
"""The morning digest: ``{cases: [id, ...]}``, worded when it is sent."""
SLACK_HOME = "slack.home"
"""The desk's App Home queue to republish: ``{user}`` for one practitioner, ``{}`` for all
who opened it. A stream of its own: a queue refresh never holds a card back."""
SLACK_ERASED = "slack.erased"
"""A case's personal data was erased: its card and the bot's thread posts say so."""
ENQUIRER_MESSAGE = "enquirer.message"
"""A practitioner's message (or a desk notice) to an enquirer: ``{channel, chat_id, text}``."""
ENQUIRER_REPLY = "enquirer.reply"
"""A turn's replies: ``{channel, chat_id, replies: [...], done: n}`` (n already delivered)."""
STREAMS = {
    SLACK_CARD: "slack",
    SLACK_THREAD: "slack",
    SLACK_POST: "slack",
    SLACK_DIGEST: "slack",
    SLACK_HOME: "slack.home",
    SLACK_ERASED: "slack",
    ENQUIRER_MESSAGE: "enquirer",
    ENQUIRER_REPLY: "enquirer",
}


DESK_KINDS = frozenset(kind for kind, family in STREAMS.items() if family.startswith("slack"))
"""The kinds only the Slack desk sends."""


def chat_stream(channel: str, chat_id: str) -> str:
    """The stream of everything said to one enquirer's chat."""
    return f"enquirer:{channel}:{chat_id}"[:120]


def stream_for(kind: str, payload: dict[str, Any] | None) -> str:
    """The stream a row of ``kind`` joins; rows in one stream are sent in order."""
    family = STREAMS[kind]
    if family == "enquirer":
        payload = payload or {}
        return chat_stream(str(payload.get("channel")), str(payload.get("chat_id")))
    return family


def stream_of(message: OutboxMessage) -> str:
    """Rows of one stream are delivered strictly in order: Slack, or one enquirer's chat."""
    return message.stream or stream_for(message.kind, message.payload)


def enqueue(
    session: AsyncSession,
    kind: str,
    *,
    now: datetime,
    case_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Add a hand-off to the caller's transaction: it exists exactly when the data does."""
    if kind not in STREAMS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    message = OutboxMessage(
        kind=kind,
        case_id=case_id,
        payload=payload or {},
        created_at=now,
        available_at=now,
        attempts=0,
        failures=0,
        maybe_sent=False,
        stream=stream_for(kind, payload),
    )
    session.add(message)
    return message


PENDING = and_(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
REPLY_FIELDS = (
    "kind",
    "case_id",
    "payload",
    "created_at",
    "available_at",
    "attempts",
    "failures",
    "maybe_sent",
    "stream",
    "leased_by",
    "leased_until",
)
_ADD_REPLIES = Prepared(
    insert(OutboxMessage)
    .values({name: bindparam(name) for name in REPLY_FIELDS})
    .returning(OutboxMessage.id)
)


def reply_row(
    *,
    channel: str,
    chat_id: str,
    replies: list[dict[str, Any]],
    now: datetime,
    holder: str | None,
    until: datetime | None,
) -> dict[str, Any]:
    """The outbox row holding a turn's replies (every column of :data:`REPLY_FIELDS`).

    With a ``holder`` the row is leased to it (the fast path sends it at once and then
    :func:`acknowledge` s it); without, the worker sends it.
    """
    return {
        "kind": ENQUIRER_REPLY,
        "case_id": None,
        "payload": {"channel": channel, "chat_id": chat_id, "replies": replies, "done": 0},
        "created_at": now,
        "available_at": now,
        "attempts": 0,
        "failures": 0,
        "maybe_sent": False,
        "stream": chat_stream(channel, chat_id),
        "leased_by": holder,
        "leased_until": until if holder else None,
    }


async def add_reply_row(connection: AsyncConnection, row: dict[str, Any]) -> int:
    """Write a :func:`reply_row` in the caller's transaction (one statement); its id."""
    return int((await _ADD_REPLIES.rows(connection, row))[0][0])


FAST_PATH = "f:"
"""How ``leased_by`` starts for replies a process sends straight after their turn."""


def backlog(stream: ColumnElement[str], now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """Whether ``stream`` has anything pending that no live fast path is sending.

    A turn's replies go out at once only when this is false, so they never overtake an
    earlier message to the chat that is waiting for the worker (handed over after a
    failure, or left by a process that died). Replies some fast path holds a live lease
    on are being sent now (or were, and their row is about to go): waiting for them
    would only add the worker's delay.
    """
    live_fast = and_(
        OutboxMessage.leased_by.like(FAST_PATH + "%"),
        OutboxMessage.leased_until.is_not(None),
        OutboxMessage.leased_until > now,
    )
    return (
        select(OutboxMessage.id).where(OutboxMessage.stream == stream, PENDING, ~live_fast).exists()
    )


async def due(
    session: AsyncSession, now: datetime, kinds: Sequence[str], limit: int = 50
) -> Sequence[OutboxMessage]:
    """Pending rows of ``kinds`` in id order, up to the first one that must wait.

    A row waits while it is leased (someone is sending it) or until its retry time; later
    rows of its stream wait behind it, so cards arrive in order and a thread reply never
    precedes its card. Rows are locked (PostgreSQL ``FOR UPDATE SKIP LOCKED``) while the
    caller leases them, so two workers (replicas) never take the same row nor wait for
    each other; a stream whose first row another worker has locked waits whole, so its
    later rows are not sent ahead of it.
    """
    rows: list[OutboxMessage] = []
    # Each family is fetched on its own, so a Slack backlog never hides a reply to an
    # enquirer (and the other way round).
    for family in sorted({STREAMS[k] for k in kinds}):
        family_kinds = [k for k in kinds if STREAMS[k] == family]
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.kind.in_(family_kinds), PENDING)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows += (await session.execute(query)).scalars().all()
    rows.sort(key=lambda row: row.id)
    ready: list[OutboxMessage] = []
    blocked = await _behind_locked(session, rows)
    for row in rows:
        stream = stream_of(row)
        leased = row.leased_until is not None and row.leased_until > now
        if row.available_at > now or leased:
            blocked.add(stream)
        if stream not in blocked:
            ready.append(row)
    return ready


async def _behind_locked(session: AsyncSession, rows: Sequence[OutboxMessage]) -> set[str]:
    """Streams whose first pending row is not among ``rows``: another worker has it locked
    (SKIP LOCKED passed it over) and is leasing it now, so the rest of its stream waits.

    A plain read, which a row lock does not block; on SQLite (one process) it finds none.
    """
    if not rows or (await session.connection()).dialect.name != "postgresql":
        return set()
    first: dict[str, int] = {}
    for row in rows:
        first.setdefault(stream_of(row), row.id)
    query = (
        select(OutboxMessage.stream, func.min(OutboxMessage.id))
        .where(PENDING, OutboxMessage.stream.in_(list(first)))
        .group_by(OutboxMessage.stream)
    )
    return {
        str(stream)
        for stream, lowest in (await session.execute(query)).all()
        if stream is not None and lowest < first[str(stream)]
    }


async def lease(session: AsyncSession, ids: Collection[int], holder: str, until: datetime) -> None:
    """Take rows for ``holder`` until ``until`` (renewed by :func:`renew` while it lives)."""
    await leasing.take(session, OutboxMessage, ids, holder, until)


async def renew(session: AsyncSession, ids: Collection[int], until: datetime) -> None:
    """Extend the leases of rows still in hand (the holder's heartbeat)."""
    await leasing.renew(session, OutboxMessage, ids, until, PENDING)


async def release(session: AsyncSession, ids: Collection[int]) -> None:
    """Give rows back untried (they were held behind a retry in their stream)."""
    await leasing.give_back(session, OutboxMessage, ids)


async def release_all(session: AsyncSession) -> int:
    """Free every lease: only when no other process can hold one (SQLite, at start).

    Whoever held them may have been sending them when it stopped: they are marked
    ``maybe_sent``, so their senders look before sending again.
    """
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.leased_by.is_not(None), PENDING)
        .values(leased_by=None, leased_until=None, maybe_sent=True)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _unlease(message: OutboxMessage) -> None:
    message.leased_by = None
    message.leased_until = None


async def locked(session: AsyncSession, row_id: int) -> OutboxMessage | None:
    """The row, locked for this transaction, if it still waits to be sent.

    None when it is gone, sent or given up meanwhile (another holder got there first):
    whoever attempted it then records nothing.
    """
    row = await session.get(OutboxMessage, row_id, with_for_update=True)
    if row is None or row.sent_at is not None or row.failed_at is not None:
        return None
    return row


def desk_note(key: str, *, people: dict[str, str] | None = None, **values: str) -> dict[str, Any]:
    """A desk message as the copy key that words it and the values to fill in.

    The desk's channel words and escapes it when it is sent, so what writes it (intake,
    timers, the desk service) needs to know nothing about how Slack shows text.
    ``people`` are practitioners (shown as the desk shows a person); ``values`` are
    anything else, shown literally whatever they contain.
    """
    note: dict[str, Any] = {"say": key, "values": values}
    if people:
        note["people"] = people
    return note


def mark_sent(message: OutboxMessage, now: datetime) -> None:
    """The row arrived: never send it again, and release its lease."""
    message.sent_at = now
    message.attempts += 1
    message.last_error = None
    message.maybe_sent = False
    _unlease(message)


def mark_retry(
    message: OutboxMessage,
    now: datetime,
    delay: timedelta,
    error: str,
    *,
    rate_limited: bool = False,
    maybe_sent: bool = False,
    progress: dict[str, Any] | None = None,
) -> None:
    """Try again after ``delay``. A rate limit is not a failure: it does not grow the backoff."""
    message.attempts += 1
    if not rate_limited:
        message.failures += 1
    message.available_at = now + delay
    message.last_error = error[:200]
    message.maybe_sent = maybe_sent
    if progress:
        message.payload = {**(message.payload or {}), **progress}
    _unlease(message)


def mark_failed(message: OutboxMessage, now: datetime, error: str) -> None:
    """Can never be delivered (say, the enquirer blocked the bot). Listed by :func:`rows`."""
    message.attempts += 1
    message.failed_at = now
    message.last_error = error[:200]
    _unlease(message)


async def acknowledge(db: AsyncSession | AsyncConnection, ids: Collection[int]) -> None:
    """Replies the fast path delivered: nothing is left to do or keep (the transcript has
    them). Core statements on the connection (no ORM objects are involved).

    On PostgreSQL this commit does not wait for the disk: losing it in a crash only means
    a reply is sent once more, which a lease running out allows for anyway.
    """
    if ids:
        connection = db if isinstance(db, AsyncConnection) else await db.connection()
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        await connection.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(list(ids))))


async def hand_off(
    session: AsyncSession,
    row_id: int,
    *,
    now: datetime,
    delay: timedelta,
    error: str,
    done: int,
    rate_limited: bool,
) -> None:
    """The fast path could not finish: ``done`` messages went out, the worker sends the rest."""
    row = await session.get(OutboxMessage, row_id)
    if row is None or row.sent_at is not None:
        return
    mark_retry(row, now, delay, error, rate_limited=rate_limited, progress={"done": done})


async def pending_count(session: AsyncSession, kinds: Sequence[str] | None = None) -> int:
    """How many rows are waiting to be sent (of ``kinds`` only, when given)."""
    query = select(func.count()).select_from(OutboxMessage).where(PENDING)
    if kinds:
        query = query.where(OutboxMessage.kind.in_(kinds))
    return int((await session.execute(query)).scalar_one())


async def purge_done_before(session: AsyncSession, cutoff: datetime) -> int:
    """Forget rows sent or given up before ``cutoff`` (their payloads hold what people wrote)."""
    result = await session.execute(
        delete(OutboxMessage)
        .where(
            or_(OutboxMessage.sent_at < cutoff, OutboxMessage.failed_at < cutoff),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
