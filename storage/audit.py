"""The audit trail: who did what to which case, when, through which channel.

Rows are only ever added (the database refuses UPDATE and DELETE on the table, see
migration 0007privacy). They hold no personal data of enquirers: the case is named by
its reference, which stays meaningful after the case's personal data is erased.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.privacy import AuditAction, AuditChannel
from storage.models import AuditEntry

ACTOR_LIMIT = 100


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: AuditAction,
    channel: AuditChannel,
    case_reference: str | None = None,
) -> AuditEntry:
    """Add one entry to the caller's transaction (it exists exactly when the action does)."""
    entry = AuditEntry(
        at=at,
        actor=actor[:ACTOR_LIMIT],
        action=AuditAction(action).value,
        channel=AuditChannel(channel).value,
        case_reference=case_reference,
    )
    session.add(entry)
    return entry


async def entries(
    session: AsyncSession,
    *,
    case_reference: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
) -> Sequence[AuditEntry]:
    """Entries oldest first, optionally for one case, by one actor, or from a moment on."""
    query = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
    if case_reference:
        query = query.where(AuditEntry.case_reference == case_reference.strip().upper())
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return (await session.execute(query)).scalars().all()


def entry_to_dict(entry: AuditEntry) -> dict[str, str | None]:
    """An entry in the shape ``helpline audit --json`` prints."""
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "case": entry.case_reference,
        "channel": entry.channel,
    }
