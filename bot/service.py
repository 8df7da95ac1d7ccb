"""The composition root: the one place that builds the engine, the flow and the services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.desk import DeskService
from bot.intake import Clock, IntakeService, utcnow
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


@asynccontextmanager
async def open_core(settings: Settings, *, clock: Clock = utcnow) -> AsyncIterator[Core]:
    """Connect to the database (bringing its schema up to date) and build the services."""
    engine = db.create_engine(settings.database_url)
    try:
        await db.upgrade(engine)
        sessions = db.session_factory(engine)
        flow = IntakeFlow()
        calendar = settings.calendar()
        intake = IntakeService(
            engine=engine,
            flow=flow,
            clock=clock,
            calendar=calendar,
            target=settings.response_target,
        )
        desk = DeskService(
            sessions=sessions,
            copy=flow.copy,
            taxonomy=flow.taxonomy,
            clock=clock,
            timezone=settings.timezone,
        )
        yield Core(settings, engine, sessions, flow, intake, desk, calendar, clock)
    finally:
        await engine.dispose()
