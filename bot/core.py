"""The composition root: the one place that builds the engine, the flow and the services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.services.desk import DeskService
from bot.services.intake import Clock, IntakeService, utcnow
from bot.services.leases import Leases
from bot.services.replies import ReplyLedger
from bot.settings import Settings
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
from storage import db

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Core:
    """What every command and channel shares."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    flow: IntakeFlow
    intake: IntakeService
    desk: DeskService
    calendar: WorkingCalendar
    clock: Clock
    leases: Leases
    """What this process holds in the outbox and inbox (renewed by ``leases.run``)."""
    replies: ReplyLedger
    """Closes the outbox rows of replies sent straight after their turn."""
    wakeup: asyncio.Event
    """Set when something was written to the outbox: the worker looks at once."""


@asynccontextmanager
async def open_core(settings: Settings, *, clock: Clock = utcnow) -> AsyncIterator[Core]:
    """Connect to the database (bringing its schema up to date) and build the services."""
    engine = db.create_engine(settings.database_url)
    try:
        await db.upgrade(engine)
        sessions = db.session_factory(engine)
        flow = IntakeFlow()
        calendar = settings.calendar()
        wakeup = asyncio.Event()
        leases = Leases(sessions=sessions, clock=clock, seconds=settings.lease_seconds)
        intake = IntakeService(
            engine=engine,
            flow=flow,
            clock=clock,
            calendar=calendar,
            target=settings.response_target,
            leases=leases,
            on_enqueued=wakeup.set,
        )
        replies = ReplyLedger(
            sessions=sessions, clock=clock, leases=leases, on_handed_off=wakeup.set
        )
        desk = DeskService(
            sessions=sessions,
            copy=flow.copy,
            taxonomy=flow.taxonomy,
            clock=clock,
            timezone=settings.timezone,
        )
        yield Core(
            settings,
            engine,
            sessions,
            flow,
            intake,
            desk,
            calendar,
            clock,
            leases,
            replies,
            wakeup,
        )
    finally:
        await engine.dispose()
