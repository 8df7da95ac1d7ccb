"""The webhook inbox: updates stored before they are acknowledged, deleted once handled.

:func:`accept` runs in its own short transaction as an update arrives; :func:`take` runs
in the transaction that handles it (so the turn and the removal commit together). What
is left behind by a crash or a failure is found again by :func:`due`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage import leasing
from storage.models import InboxUpdate
from storage.prepared import Prepared

Database = AsyncSession | AsyncConnection


async def _connection(db: Database) -> AsyncConnection:
    return db if isinstance(db, AsyncConnection) else await db.connection()


def _accept_statements() -> dict[str, Any]:
    row: dict[str, Any] = {
        name: bindparam(name)
        for name in (
            "source",
            "key",
            "chat",
            "body",
            "received_at",
            "available_at",
            "leased_by",
            "leased_until",
            "attempts",
        )
    }
    return {
        "postgresql": postgresql.insert(InboxUpdate)
        .values(row)
        .on_conflict_do_nothing()
        .returning(InboxUpdate.id),
        "sqlite": sqlite.insert(InboxUpdate)
        .values(row)
        .on_conflict_do_nothing()
        .returning(InboxUpdate.id),
    }


# Every webhook update runs both (see storage.prepared).
_ACCEPT = Prepared(_accept_statements())
_TAKE = Prepared(
    delete(InboxUpdate).where(
        InboxUpdate.source == bindparam("source"), InboxUpdate.key == bindparam("key")
    )
)


async def accept(
    db: Database,
    *,
    source: str,
    key: str,
    chat: str | None,
    body: str,
    now: datetime,
    holder: str,
    until: datetime,
) -> int | None:
    """Store an arriving update, leased to ``holder``; its row id, or None if already here."""
    connection = await _connection(db)
    values = {
        "source": source,
        "key": key,
        "chat": chat,
        "body": body,
        "received_at": now,
        "available_at": now,
        "leased_by": holder,
        "leased_until": until,
        "attempts": 0,
    }
    found = await _ACCEPT.rows(connection, values)
    return int(found[0][0]) if found else None


async def take(db: Database, source: str, key: str) -> None:
    """Remove a handled update (in the transaction that handled it)."""
    await _TAKE.rows(await _connection(db), {"source": source, "key": key})


async def release(
    session: AsyncSession, row_id: int, *, now: datetime, delay: timedelta, error: str
) -> None:
    """Handling failed: try again after ``delay`` (growing with the attempts)."""
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.id == row_id)
        .values(
            attempts=InboxUpdate.attempts + 1,
            available_at=now + delay,
            last_error=error[:200],
            leased_by=None,
            leased_until=None,
        )
        .execution_options(synchronize_session=False)
    )


async def attempts(session: AsyncSession, row_id: int) -> int:
    """How many times handling the update has been tried (0 once it is gone)."""
    found = await session.get(InboxUpdate, row_id)
    return found.attempts if found else 0


async def due(session: AsyncSession, now: datetime, limit: int = 100) -> Sequence[InboxUpdate]:
    """Updates nobody holds whose time has come, oldest first (locked while leased)."""
    query = (
        select(InboxUpdate)
        .where(
            InboxUpdate.available_at <= now,
            (InboxUpdate.leased_until.is_(None)) | (InboxUpdate.leased_until <= now),
        )
        .order_by(InboxUpdate.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


async def lease(session: AsyncSession, ids: Collection[int], holder: str, until: datetime) -> None:
    """Lease these updates to ``holder`` until ``until``, so no other process takes them."""
    await leasing.take(session, InboxUpdate, ids, holder, until)


async def renew(session: AsyncSession, ids: Collection[int], until: datetime) -> None:
    """Push back the leases of updates still held; a released one stays released."""
    await leasing.renew(session, InboxUpdate, ids, until)


async def release_all(session: AsyncSession) -> int:
    """Free every lease: only when no other process can hold one (SQLite, at start)."""
    result = await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.leased_by.is_not(None))
        .values(leased_by=None, leased_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class Summary:
    """What health checks and the CLI say about the inbox."""

    pending: int
    stuck: int
    oldest_at: datetime | None
    stuck_error: str | None


async def summary(session: AsyncSession, now: datetime, stuck_after: timedelta) -> Summary:
    """Counts of waiting and stuck updates, and the error of the oldest stuck one."""
    cutoff = now - stuck_after
    pending, oldest = (
        await session.execute(select(func.count(), func.min(InboxUpdate.received_at)))
    ).one()
    stuck = int(
        (
            await session.execute(select(func.count()).where(InboxUpdate.received_at < cutoff))
        ).scalar_one()
    )
    error = None
    if stuck:
        error = (
            await session.execute(
                select(InboxUpdate.last_error)
                .where(InboxUpdate.received_at < cutoff)
                .order_by(InboxUpdate.id)
                .limit(1)
            )
        ).scalar_one_or_none()
    return Summary(int(pending), stuck, oldest, error)
