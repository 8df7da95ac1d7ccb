"""The desk's queue as the Slack App Home shows it, and who is shown it.

Unclaimed cases urgent first, then by due time; the practitioner's own cases; the
overdue ones. Refreshes are coalesced: one pending "republish for everyone" row is enough,
however many cases changed meanwhile, since it is worded from the database when sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from flows.conversation import CaseStatus
from storage import outbox
from storage.cases import overdue_at
from storage.models import Case, HomeViewer, OutboxMessage

VIEWERS = 500
"""Most recent App Home viewers kept current (each refresh is one call per viewer)."""


@dataclass(frozen=True, slots=True)
class Queue:
    """One practitioner's App Home: the lists and how many wait in all."""

    unclaimed: Sequence[Case]
    unclaimed_total: int
    mine: Sequence[Case]
    overdue: Sequence[Case]


async def queue(session: AsyncSession, now: datetime, actor: str, limit: int) -> Queue:
    """What ``actor`` (as the desk records practitioners, ``<@U…>``) sees, ``limit`` a list."""
    unclaimed_rule = and_(Case.status == CaseStatus.NEW, Case.claimed_by.is_(None))
    unclaimed = (
        select(Case)
        .where(unclaimed_rule)
        .options(selectinload(Case.categories))
        .order_by(Case.urgent.desc(), Case.due_at.is_(None), Case.due_at, Case.received_at)
    )
    found = list((await session.execute(unclaimed.limit(limit + 1))).scalars())
    total = len(found)
    if total > limit:
        counted = select(func.count()).select_from(Case).where(unclaimed_rule)
        total = int((await session.execute(counted)).scalar_one())
    mine = (
        select(Case)
        .where(Case.status == CaseStatus.CLAIMED, Case.claimed_by == actor)
        .order_by(Case.due_at.is_(None), Case.due_at, Case.received_at)
        .limit(limit)
    )
    late = select(Case).where(overdue_at(now)).order_by(Case.due_at).limit(limit)
    return Queue(
        unclaimed=found[:limit],
        unclaimed_total=total,
        mine=list((await session.execute(mine)).scalars()),
        overdue=list((await session.execute(late)).scalars()),
    )


async def remember_viewer(session: AsyncSession, user_id: str, now: datetime) -> None:
    """``user_id`` opened the App Home: keep their queue current from now on."""
    viewer = await session.get(HomeViewer, user_id)
    if viewer is None:
        session.add(HomeViewer(user_id=user_id, opened_at=now))
    else:
        viewer.opened_at = now


async def viewers(session: AsyncSession) -> list[str]:
    """Who opened the App Home, most recent first (their queues are kept current)."""
    query = select(HomeViewer.user_id).order_by(HomeViewer.opened_at.desc()).limit(VIEWERS)
    return list((await session.execute(query)).scalars())


async def refresh(session: AsyncSession, now: datetime, user: str | None = None) -> None:
    """Have the queue republished (for ``user``, or everyone who opened it), unless a
    refresh for everyone is already waiting and nobody is sending it yet."""
    if user is None:
        # Payloads are sealed, so the few waiting refreshes are read rather than queried.
        waiting = select(OutboxMessage.payload).where(
            OutboxMessage.kind == outbox.SLACK_HOME,
            outbox.PENDING,
            OutboxMessage.leased_by.is_(None),
        )
        if any(not payload.get("user") for payload in (await session.execute(waiting)).scalars()):
            return
    outbox.enqueue(session, outbox.SLACK_HOME, now=now, payload={"user": user} if user else {})
