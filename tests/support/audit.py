"""The audit trail as tests compare it: (actor, action, channel, case) rows, oldest first."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import audit


async def trail(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str, str]]:
    """Every entry, oldest first, as (actor, action, channel, case reference or "")."""
    async with sessions() as session:
        found = await audit.entries(session)
    return [(e.actor, e.action, e.channel, e.case_reference or "") for e in found]
