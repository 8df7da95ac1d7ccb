"""What the outbox holds, for health checks, the stuck-row alarm and ``helpline outbox``:
counts, what is stuck and why, the rows given up, and sending those again. Never a row's
payload (it can hold what people wrote).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, OutboxMessage
from storage.outbox import PENDING


@dataclass(frozen=True, slots=True)
class Summary:
    """What health checks and the CLI say about the outbox."""

    pending: int
    stuck: int
    """Pending for longer than the threshold the caller gave."""
    failed: int
    oldest_pending_at: datetime | None
    stuck_error: str | None
    """The last error of the oldest stuck row (an error kind, never message text)."""
    parked: int = 0
    """Pending rows of kinds nothing here sends (the desk's, with Slack not configured):
    kept, and sent once it is; neither pending nor stuck above."""


async def summary(
    session: AsyncSession,
    now: datetime,
    stuck_after: timedelta,
    *,
    sent: Collection[str] | None = None,
) -> Summary:
    """Counts of pending, stuck and failed rows, and the error of the oldest stuck one;
    with ``sent`` (the kinds the service has senders for), rows of other kinds apart."""
    cutoff = now - stuck_after
    waiting = PENDING if sent is None else and_(PENDING, OutboxMessage.kind.in_(list(sent)))
    pending, oldest = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(waiting)
        )
    ).one()
    parked = 0
    if sent is not None:
        parked = int(
            (
                await session.execute(
                    select(func.count()).where(PENDING, OutboxMessage.kind.not_in(list(sent)))
                )
            ).scalar_one()
        )
    stuck = int(
        (
            await session.execute(
                select(func.count()).where(waiting, OutboxMessage.created_at < cutoff)
            )
        ).scalar_one()
    )
    failed = int(
        (
            await session.execute(select(func.count()).where(OutboxMessage.failed_at.is_not(None)))
        ).scalar_one()
    )
    error = None
    if stuck:
        error = (
            await session.execute(
                select(OutboxMessage.last_error)
                .where(waiting, OutboxMessage.created_at < cutoff)
                .order_by(OutboxMessage.id)
                .limit(1)
            )
        ).scalar_one_or_none()
    return Summary(int(pending), stuck, failed, oldest, error, parked)


@dataclass(frozen=True, slots=True)
class Listed:
    """One row as the CLI shows it: never its payload (it can hold what people wrote)."""

    id: int
    kind: str
    reference: str | None
    created_at: datetime
    available_at: datetime
    attempts: int
    failures: int
    leased_by: str | None
    last_error: str | None
    failed_at: datetime | None


async def rows(session: AsyncSession, *, failed: bool, limit: int = 100) -> list[Listed]:
    """Pending rows (or, with ``failed``, those given up), oldest first."""
    condition = OutboxMessage.failed_at.is_not(None) if failed else PENDING
    query = (
        select(OutboxMessage, Case.reference)
        .outerjoin(Case, Case.id == OutboxMessage.case_id)
        .where(condition)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    found = []
    for row, reference in (await session.execute(query)).all():
        found.append(
            Listed(
                row.id,
                row.kind,
                reference,
                row.created_at,
                row.available_at,
                row.attempts,
                row.failures,
                row.leased_by,
                row.last_error,
                row.failed_at,
            )
        )
    return found


async def retry_failed(session: AsyncSession, now: datetime, ids: Collection[int] | None) -> int:
    """Put given-up rows back in the queue (all of them, or ``ids``)."""
    query = update(OutboxMessage).where(OutboxMessage.failed_at.is_not(None))
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(list(ids)))
    result = await session.execute(
        query.values(failed_at=None, available_at=now, failures=0).execution_options(
            synchronize_session=False
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def still_pending(session: AsyncSession, row_id: int) -> bool:
    """Whether the row still waits to be sent (not sent, given up or deleted meanwhile)."""
    query = select(OutboxMessage.id).where(OutboxMessage.id == row_id, PENDING)
    return (await session.execute(query)).scalar_one_or_none() is not None
