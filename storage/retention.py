"""Retention: personal data is kept for the configured period, then erased.

Cases keep their taxonomy labels (enquirer type, setting, region, platform, categories,
outcome, dates) so the helpline's yearly figures stay countable; everything that could
identify someone (title, description, links and the accounts they name, contact details,
notes, transcript) goes.

Each case carries the moment its personal data goes (``erase_after``, set when it is
created); cases from before that column existed go ``retention`` after they arrived. A
case under a legal hold (``hold_reason``) is left until the hold is lifted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, ConversationRecord, EmailRecord
from storage.privacy import erase_cases


@dataclass(frozen=True, slots=True)
class Purged:
    """How many cases and conversations a purge erased, for the log and the CLI."""

    cases: int
    conversations: int
    references: Sequence[str] = field(default=())
    """The cases erased (for the audit trail and the cards)."""
    ids: Sequence[int] = field(default=())


async def purge_before(
    session: AsyncSession, cutoff: datetime, now: datetime | None = None
) -> Purged:
    """Erase personal data of cases due for erasure, and of conversations idle since ``cutoff``.

    A case is due when its ``erase_after`` has passed (``now``), or, for a case without
    one, when it arrived before ``cutoff``; held or already erased cases are left.
    """
    now = now or cutoff
    due = (Case.erase_after.is_not(None) & (Case.erase_after < now)) | (
        Case.erase_after.is_(None) & (Case.received_at < cutoff)
    )
    old = select(Case.id, Case.reference).where(
        due, Case.erased_at.is_(None), Case.hold_reason.is_(None)
    )
    rows = (await session.execute(old)).all()
    ids = [row.id for row in rows]
    await erase_cases(session, ids, now)
    # What the mailbox bookkeeping knows (Message-IDs, a hash of the sender) goes too.
    await session.execute(delete(EmailRecord).where(EmailRecord.at < cutoff))
    idle = await session.execute(
        delete(ConversationRecord).where(ConversationRecord.updated_at < cutoff)
    )
    return Purged(
        cases=len(ids),
        conversations=int(getattr(idle, "rowcount", 0) or 0),
        references=[row.reference for row in rows],
        ids=ids,
    )
