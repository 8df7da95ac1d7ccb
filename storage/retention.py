"""Retention: personal data is kept for the configured period, then erased.

Cases keep their taxonomy labels (enquirer type, setting, region, platform, categories,
outcome, dates) so the helpline's yearly figures stay countable; everything that could
identify someone (title, description, links and the accounts they name, contact details,
notes, transcript) goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import links as link_store
from storage.models import Case, CaseEvent, ConversationRecord, EmailRecord, TranscriptEntry


@dataclass(frozen=True, slots=True)
class Purged:
    """How many cases and conversations a purge erased, for the log and the CLI."""

    cases: int
    conversations: int


async def purge_before(session: AsyncSession, cutoff: datetime) -> Purged:
    """Erase personal data of cases received, and conversations idle, before ``cutoff``."""
    old = select(Case.id).where(Case.received_at < cutoff, Case.description.is_not(None))
    ids = list((await session.execute(old)).scalars())
    if ids:
        await session.execute(delete(TranscriptEntry).where(TranscriptEntry.case_id.in_(ids)))
        await link_store.forget(session, ids)
        await session.execute(
            update(CaseEvent).where(CaseEvent.case_id.in_(ids)).values(detail=None)
        )
        await session.execute(
            update(Case)
            .where(Case.id.in_(ids))
            .values(
                subject=None,
                description=None,
                links=[],
                contact_email=None,
                contact_phone=None,
                contact_name=None,
                outcome_note=None,
                conversation_id=None,
            )
        )
    # What the mailbox bookkeeping knows (Message-IDs, a hash of the sender) goes too.
    await session.execute(delete(EmailRecord).where(EmailRecord.at < cutoff))
    idle = await session.execute(
        delete(ConversationRecord).where(ConversationRecord.updated_at < cutoff)
    )
    return Purged(cases=len(ids), conversations=int(getattr(idle, "rowcount", 0) or 0))
