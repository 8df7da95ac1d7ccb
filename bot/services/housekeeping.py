"""Periodic chores of the running service: retention and dedupe-key cleanup."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.services.periodic import repeat
from storage import conversations as convo_store
from storage import outbox
from storage import web as web_store
from storage.retention import Purged, purge_before

log = logging.getLogger(__name__)
DEDUPE_WINDOW = timedelta(days=2)  # Telegram keeps undelivered updates for 24 hours
OUTBOX_KEPT = timedelta(days=7)  # sent or given-up rows, for `helpline outbox --failed`
EVERY = 3600.0  # seconds between rounds while the service runs


class Housekeeping:
    """Erases what the retention period says must go, hourly (and on ``helpline db purge``)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        retention_days: int,
        every: float = EVERY,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.retention_days = retention_days
        self._every = every

    async def purge_expired(self) -> Purged:
        """Erase personal data older than the retention period; forget old dedupe keys and
        outbox rows done with."""
        now = self._clock()
        cutoff = now - timedelta(days=self.retention_days)
        async with self._sessions() as session, session.begin():
            purged = await purge_before(session, cutoff)
            await convo_store.forget_processed_before(session, now - DEDUPE_WINDOW)
            # Their payloads hold what people wrote: not kept once there is nothing to send.
            await outbox.purge_done_before(session, now - OUTBOX_KEPT)
            await web_store.purge_expired(session, now)  # web chats past their retention
        if purged.cases or purged.conversations:
            log.info(
                "retention: erased %d case(s), %d conversation(s)",
                purged.cases,
                purged.conversations,
            )
        return purged

    async def run(self, stop: asyncio.Event) -> None:
        """A round now, then every hour, until ``stop``."""
        await repeat(self.purge_expired, every=self._every, stop=stop, what="housekeeping")
