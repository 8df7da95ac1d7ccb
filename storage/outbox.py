"""The transactional outbox: enqueue with the data, take due rows in order, mark results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage

# Kinds of hand-off. Streams are sent strictly in order within themselves.
SLACK_CARD = "slack.card"
SLACK_THREAD = "slack.thread"
SLACK_POST = "slack.post"
ENQUIRER_MESSAGE = "enquirer.message"
STREAMS = {
    SLACK_CARD: "slack",
    SLACK_THREAD: "slack",
    SLACK_POST: "slack",
    ENQUIRER_MESSAGE: "enquirer",
}


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
    )
    session.add(message)
    return message


async def due(
    session: AsyncSession, now: datetime, kinds: Sequence[str], limit: int = 50
) -> Sequence[OutboxMessage]:
    """Pending rows of ``kinds`` in id order, up to the first one still waiting to retry.

    Later rows of a stream wait behind an earlier failing one, so cards arrive in order
    and a thread reply never precedes its card. Rows are locked (PostgreSQL SKIP LOCKED)
    so two workers never send the same row.
    """
    rows: list[OutboxMessage] = []
    # Each family is fetched on its own, so a Slack backlog never hides a reply to an
    # enquirer (and the other way round).
    for family in sorted({STREAMS[k] for k in kinds}):
        family_kinds = [k for k in kinds if STREAMS[k] == family]
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.kind.in_(family_kinds),
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.failed_at.is_(None),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows += (await session.execute(query)).scalars().all()
    rows.sort(key=lambda row: row.id)
    ready: list[OutboxMessage] = []
    blocked: set[str] = set()
    for row in rows:
        stream = stream_of(row)
        if row.available_at > now:
            blocked.add(stream)
        if stream not in blocked:
            ready.append(row)
    return ready


def stream_of(message: OutboxMessage) -> str:
    """Rows of one stream are delivered strictly in order: Slack, or one enquirer's chat."""
    stream = STREAMS[message.kind]
    if message.kind == ENQUIRER_MESSAGE:
        payload = message.payload or {}
        return f"{stream}:{payload.get('channel')}:{payload.get('chat_id')}"
    return stream


def mark_sent(message: OutboxMessage, now: datetime) -> None:
    message.sent_at = now
    message.attempts += 1
    message.last_error = None


def mark_retry(message: OutboxMessage, now: datetime, delay: timedelta, error: str) -> None:
    message.attempts += 1
    message.available_at = now + delay
    message.last_error = error[:200]


def mark_failed(message: OutboxMessage, now: datetime, error: str) -> None:
    message.attempts += 1
    message.failed_at = now
    message.last_error = error[:200]


async def pending_count(session: AsyncSession, kinds: Sequence[str] | None = None) -> int:
    query = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
    )
    if kinds:
        query = query.where(OutboxMessage.kind.in_(kinds))
    return int((await session.execute(query)).scalar_one())


async def release_locks_for(session: AsyncSession, ids: Sequence[int], now: datetime) -> None:
    """Make rows due again at once (used when a sender was not available)."""
    if ids:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(available_at=now)
        )
