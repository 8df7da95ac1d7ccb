"""Practitioner actions on cases: race-safe claims, releases, resolutions, and their record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows.conversation import CaseStatus
from storage.cases import is_open
from storage.models import Case, CaseEvent, ConversationRecord


def record(
    session: AsyncSession, case_id: int, *, actor: str, action: str, at: datetime, detail: str = ""
) -> None:
    """Every practitioner action is kept on the case: who, what, when."""
    session.add(
        CaseEvent(case_id=case_id, actor=actor, action=action, at=at, detail=detail or None)
    )


async def claim(session: AsyncSession, case_id: int, actor: str, now: datetime) -> bool:
    """Take an unclaimed open case. One conditional UPDATE: exactly one claimer wins."""
    result = await session.execute(
        update(Case)
        .where(Case.id == case_id, Case.status == CaseStatus.NEW, Case.claimed_by.is_(None))
        .values(status=CaseStatus.CLAIMED, claimed_by=actor, claimed_at=now)
        .returning(Case.id)
    )
    return result.scalar_one_or_none() is not None


async def release(session: AsyncSession, case_id: int, actor: str) -> bool:
    """Give a claimed case back; only its holder can."""
    result = await session.execute(
        update(Case)
        .where(Case.id == case_id, Case.status == CaseStatus.CLAIMED, Case.claimed_by == actor)
        .values(status=CaseStatus.NEW, claimed_by=None, claimed_at=None)
        .returning(Case.id)
    )
    return result.scalar_one_or_none() is not None


async def resolve(
    session: AsyncSession,
    case_id: int,
    actor: str,
    *,
    outcome: str,
    note: str | None,
    referred_to_platform: bool,
    now: datetime,
) -> bool:
    """Close an open case held by ``actor`` (or unclaimed) with its outcome."""
    result = await session.execute(
        update(Case)
        .where(
            Case.id == case_id,
            is_open(),
            (Case.claimed_by.is_(None)) | (Case.claimed_by == actor),
        )
        .values(
            status=CaseStatus.RESOLVED,
            outcome=outcome,
            outcome_note=note,
            referred_to_platform=referred_to_platform,
            resolved_at=now,
            claimed_by=actor,
        )
        .returning(Case.id)
    )
    return result.scalar_one_or_none() is not None


async def events(session: AsyncSession, case_id: int) -> Sequence[CaseEvent]:
    """Who did what to the case, in the order it happened."""
    query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    return (await session.execute(query)).scalars().all()


async def enquirer_chat(session: AsyncSession, case: Case) -> tuple[str, str] | None:
    """The (channel, chat id) where the enquirer who opened ``case`` can be written to."""
    if case.conversation_id is None:
        return None
    record_ = await session.get(ConversationRecord, case.conversation_id)
    return (record_.channel, record_.chat_id) if record_ else None
