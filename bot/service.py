"""The composition root: the one place that builds the engine, the flow and the services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.intake import Clock, IntakeService, utcnow
from bot.settings import Settings
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


@asynccontextmanager
async def open_core(settings: Settings, *, clock: Clock = utcnow) -> AsyncIterator[Core]:
    """Connect to the database (bringing its schema up to date) and build the services."""
    engine = db.create_engine(settings.database_url)
    try:
        await db.upgrade(engine)
        sessions = db.session_factory(engine)
        flow = IntakeFlow()
        intake = IntakeService(sessions=sessions, flow=flow, clock=clock)
        yield Core(settings, engine, sessions, flow, intake)
    finally:
        await engine.dispose()
