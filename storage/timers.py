"""Response-time timers driven from the database, so they survive restarts and fire once.

Each timer is a conditional UPDATE that stamps the cases it fires for and returns them:
with two replicas running, the second finds nothing left to stamp.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from flows.conversation import CaseStatus
from storage.cases import cases_by_ids, is_open, overdue_at
from storage.models import Case


async def _stamp(session: AsyncSession, column: str, condition: object, now: datetime) -> list[int]:
    result = await session.execute(
        update(Case).where(condition).values({column: now}).returning(Case.id)  # type: ignore[arg-type]
    )
    return sorted(result.scalars())


async def due_reminders(session: AsyncSession, now: datetime) -> list[Case]:
    """Unclaimed cases past half their target that have not been reminded yet."""
    condition = (
        (Case.status == CaseStatus.NEW)
        & Case.claimed_by.is_(None)
        & Case.remind_at.is_not(None)
        & (Case.remind_at <= now)
        & Case.reminded_at.is_(None)
    )
    return await cases_by_ids(session, await _stamp(session, "reminded_at", condition, now))


async def newly_overdue(session: AsyncSession, now: datetime) -> list[Case]:
    """Cases that are overdue now (:meth:`Case.is_overdue`), not yet flagged."""
    condition = overdue_at(now) & Case.overdue_flagged_at.is_(None)
    return await cases_by_ids(session, await _stamp(session, "overdue_flagged_at", condition, now))


async def take_for_digest(session: AsyncSession, now: datetime) -> list[Case]:
    """Cases that arrived out of hours and are not in a digest yet (oldest first)."""
    condition = (
        Case.in_hours.is_(False)
        & Case.digested_at.is_(None)
        & (Case.received_at <= now)
        & is_open()
    )
    return await cases_by_ids(session, await _stamp(session, "digested_at", condition, now))
