"""The services every command and channel shares, built from one ``Settings``.

:func:`build_core` makes them (nothing connects yet); :func:`open_core` is the same for
a command-line job: the schema brought up to date first, the engine closed after.
The running service builds its core the same way, inside :func:`bot.app.build`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock, utcnow
from bot.http.metrics import Metrics
from bot.locks import KeyedLocks
from bot.services.desk import DeskService
from bot.services.intake import IntakeService
from bot.services.leases import Leases
from bot.services.privacy import PrivacyService
from bot.services.replies import ReplyLedger
from bot.settings import Settings
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
from storage import db
from storage import outbox as outbox_store


@dataclass(frozen=True, slots=True)
class Core:
    """What every command and channel shares."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    readers: async_sessionmaker[AsyncSession]
    """Sessions that only read (``storage.db.reader_factory``): listings, reports, health."""
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
    metrics: Metrics
    """This process's figures (``GET /metrics``), fed by the intake and the outbox worker."""
    privacy: PrivacyService
    """Subject access, erasure, holds and the requests register."""
    chats: KeyedLocks
    """A chat's turns, and its erasure, one at a time in this process (``(channel, chat id)``)."""

    async def open(self) -> None:
        """Bring the schema up to date (what every job does first)."""
        await db.upgrade(self.engine)

    async def close(self) -> None:
        """Close the database connections."""
        await self.engine.dispose()


def outbox_kinds(settings: Settings) -> frozenset[str]:
    """The outbox kinds ``helpline run`` sends with these settings (its worker's ``kinds``),
    for a command beside it: rows of the others (the desk's, with Slack not configured)
    wait for it and are sent once it is, so ``helpline outbox`` counts them as parked."""
    enquirers = frozenset({outbox_store.ENQUIRER_MESSAGE, outbox_store.ENQUIRER_REPLY})
    return enquirers | outbox_store.DESK_KINDS if settings.slack_enabled else enquirers


def build_core(settings: Settings, *, clock: Clock = utcnow) -> Core:
    """The shared services, wired; raises ValueError if the working hours are not valid."""
    calendar = settings.calendar()
    engine = db.create_engine(settings.database_url, data_key=settings.data_key_text)
    sessions = db.session_factory(engine)
    readers = db.reader_factory(engine)
    flow = IntakeFlow()
    wakeup = asyncio.Event()
    metrics = Metrics()
    chats = KeyedLocks()  # a chat's turns, and its erasure, one at a time in this process
    leases = Leases(sessions=sessions, clock=clock, seconds=settings.lease_seconds)
    intake = IntakeService(
        engine=engine,
        sessions=sessions,
        flow=flow,
        clock=clock,
        calendar=calendar,
        target=settings.response_target,
        leases=leases,
        on_enqueued=wakeup.set,
        on_handled=metrics.handled,
        retention=timedelta(days=settings.retention_days),
        email_from=settings.email_outgoing,
        chats=chats,
    )
    replies = ReplyLedger(
        engine=engine, sessions=sessions, clock=clock, leases=leases, on_handed_off=wakeup.set
    )
    desk = DeskService(
        sessions=sessions,
        copy=flow.copy,
        taxonomy=flow.taxonomy,
        clock=clock,
        timezone=settings.timezone,
    )
    privacy = PrivacyService(
        sessions=sessions,
        keys=lambda: db.data_keys(engine),
        copy=flow.copy,
        clock=clock,
        timezone=settings.timezone,
        working_day=calendar.is_working_day,
        chats=chats,
    )
    return Core(
        privacy=privacy,
        chats=chats,
        settings=settings,
        engine=engine,
        sessions=sessions,
        readers=readers,
        flow=flow,
        intake=intake,
        desk=desk,
        calendar=calendar,
        clock=clock,
        leases=leases,
        replies=replies,
        wakeup=wakeup,
        metrics=metrics,
    )


@asynccontextmanager
async def open_core(settings: Settings, *, clock: Clock = utcnow) -> AsyncIterator[Core]:
    """The core for one command: schema up to date on entry, connections closed on exit."""
    core = build_core(settings, clock=clock)
    try:
        await core.open()
        yield core
    finally:
        await core.close()
