"""Response-time timers driven from the database, so they survive restarts and fire once.

Each timer is a conditional UPDATE that stamps the cases it fires for and returns them:
with two replicas running, the second finds nothing left to stamp.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Case

OPEN = ("new", "claimed")


async def _stamp(session: AsyncSession, column: str, condition: object, now: datetime) -> list[int]:
    result = await session.execute(
        update(Case).where(condition).values({column: now}).returning(Case.id)  # type: ignore[arg-type]
    )
    return sorted(result.scalars())


async def _load(session: AsyncSession, ids: Sequence[int]) -> list[Case]:
    if not ids:
        return []
    query = (
        select(Case)
        .where(Case.id.in_(ids))
        .options(selectinload(Case.categories))
        .order_by(Case.received_at, Case.id)
    )
    return list((await session.execute(query)).scalars())


async def due_reminders(session: AsyncSession, now: datetime) -> list[Case]:
    """Unclaimed cases past half their target that have not been reminded yet."""
    condition = (
        (Case.status == "new")
        & Case.claimed_by.is_(None)
        & Case.remind_at.is_not(None)
        & (Case.remind_at <= now)
        & Case.reminded_at.is_(None)
    )
    return await _load(session, await _stamp(session, "reminded_at", condition, now))


async def newly_overdue(session: AsyncSession, now: datetime) -> list[Case]:
    """Open cases past their due time, not yet flagged."""
    condition = (
        Case.status.in_(OPEN)
        & Case.due_at.is_not(None)
        & (Case.due_at <= now)
        & Case.overdue_flagged_at.is_(None)
    )
    return await _load(session, await _stamp(session, "overdue_flagged_at", condition, now))


async def take_for_digest(session: AsyncSession, now: datetime) -> list[Case]:
    """Cases that arrived out of hours and are not in a digest yet (oldest first)."""
    condition = (
        Case.in_hours.is_(False)
        & Case.digested_at.is_(None)
        & (Case.received_at <= now)
        & Case.status.in_(OPEN)
    )
    return await _load(session, await _stamp(session, "digested_at", condition, now))


async def overdue(session: AsyncSession, now: datetime) -> Sequence[Case]:
    """Open cases whose due time has passed (for listings)."""
    query = (
        select(Case)
        .where(Case.status.in_(OPEN), Case.due_at.is_not(None), Case.due_at < now)
        .options(selectinload(Case.categories))
        .order_by(Case.due_at)
    )
    return (await session.execute(query)).scalars().all()
