"""Periodic chores of the running service: retention and dedupe-key cleanup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.services.periodic import repeat
from flows.privacy import AuditAction, AuditChannel
from storage import audit, outbox
from storage import conversations as convo_store
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
        leads: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """``leads``: whether this replica does it now (see
        :class:`bot.services.leader.Leadership`); None: always."""
        self._leads = leads
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
            purged = await purge_before(session, cutoff, now)
            for case_id, reference in zip(purged.ids, purged.references, strict=True):
                audit.record(
                    session,
                    at=now,
                    actor="retention",
                    action=AuditAction.ERASED_BY_RETENTION,
                    channel=AuditChannel.SYSTEM,
                    case_reference=reference,
                )
                outbox.enqueue(session, outbox.SLACK_ERASED, now=now, case_id=case_id)
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
        """A round now, then every hour, until ``stop`` (by the replica that leads)."""
        await repeat(self._round, every=self._every, stop=stop, what="housekeeping")

    async def _round(self) -> None:
        if self._leads is None or await self._leads():
            await self.purge_expired()
