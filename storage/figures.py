"""The desk's figures for ``GET /metrics``: cases by status and channel, the queue's age,
overdue cases and the outbox's depth. Counts and times only, never what anyone wrote."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.conversation import CaseStatus
from storage.cases import overdue_at
from storage.models import Case, OutboxMessage
from storage.outbox import PENDING


@dataclass(frozen=True, slots=True)
class Figures:
    """What ``GET /metrics`` reads from the database at each scrape."""

    cases: dict[tuple[str, str], int]
    """(status, channel) to the number of cases."""
    oldest_unclaimed_at: datetime | None
    overdue: int
    outbox_pending: int
    outbox_oldest_at: datetime | None
    outbox_failed: int
    outbox_parked: int = 0
    """Pending rows of kinds nothing here sends (see ``outbox_status.Summary.parked``)."""


async def figures(
    session: AsyncSession, now: datetime, *, sent: Collection[str] | None = None
) -> Figures:
    """Five aggregate queries, each on an indexed column or a small table (six with
    ``sent``, the outbox kinds the service sends: the others' rows are counted apart)."""
    by = select(Case.status, Case.channel, func.count()).group_by(Case.status, Case.channel)
    cases = {
        (CaseStatus(status).value, str(channel)): int(count)
        for status, channel, count in (await session.execute(by)).all()
    }
    unclaimed = select(func.min(Case.received_at)).where(Case.status == CaseStatus.NEW)
    oldest = (await session.execute(unclaimed)).scalar_one_or_none()
    overdue = select(func.count()).select_from(Case).where(overdue_at(now))
    waiting = PENDING if sent is None else and_(PENDING, OutboxMessage.kind.in_(list(sent)))
    pending, outbox_oldest = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(waiting)
        )
    ).one()
    parked = 0
    if sent is not None:
        others = select(func.count()).where(PENDING, OutboxMessage.kind.not_in(list(sent)))
        parked = int((await session.execute(others)).scalar_one())
    failed = select(func.count()).where(OutboxMessage.failed_at.is_not(None))
    return Figures(
        cases=cases,
        oldest_unclaimed_at=oldest,
        overdue=int((await session.execute(overdue)).scalar_one()),
        outbox_pending=int(pending),
        outbox_oldest_at=outbox_oldest,
        outbox_failed=int((await session.execute(failed)).scalar_one()),
        outbox_parked=parked,
    )
