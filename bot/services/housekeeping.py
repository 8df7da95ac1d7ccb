"""Periodic chores of the running service: retention and dedupe-key cleanup."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot import logs
from bot.core import Core
from storage import conversations as convo_store
from storage import outbox
from storage.retention import Purged, purge_before

log = logging.getLogger(__name__)
DEDUPE_WINDOW = timedelta(days=2)  # Telegram keeps undelivered updates for 24 hours
OUTBOX_KEPT = timedelta(days=7)  # sent or given-up rows, for `helpline outbox --failed`


async def purge_expired(core: Core) -> Purged:
    """Erase personal data older than the retention period; forget old dedupe keys and
    outbox rows done with."""
    now = core.clock()
    async with core.sessions() as session, session.begin():
        purged = await purge_before(session, now - timedelta(days=core.settings.retention_days))
        await convo_store.forget_processed_before(session, now - DEDUPE_WINDOW)
        # Their payloads hold what people wrote: not kept once there is nothing to send.
        await outbox.purge_done_before(session, now - OUTBOX_KEPT)
    if purged.cases or purged.conversations:
        log.info(
            "retention: erased %d case(s), %d conversation(s)", purged.cases, purged.conversations
        )
    return purged


async def run_housekeeping(core: Core, stop: asyncio.Event, every: float = 3600.0) -> None:
    while not stop.is_set():
        try:
            await purge_expired(core)
        except Exception as error:
            log.error("housekeeping failed: %s", logs.kind(error), exc_info=error)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            continue
