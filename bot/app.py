"""The composition root: the whole service built from one ``Settings``, then run.

:func:`build` makes every part and wires it (the core services, the channels, the
outbox worker with all its senders, the HTTP routes, the timers and housekeeping) and
returns it finished: nothing is added or rewired afterwards. :func:`running` starts the
parts in order and stops them in reverse; :func:`serve` is ``helpline run``: build, run,
wait for SIGTERM/SIGINT.

Start order, and why: the database first (schema up to date); the HTTP server (health
checks answer, and the webhook route exists before Telegram is told about it); lease
renewal and reply acknowledgement (they must outlive the channels, which finish what
they hold on the way out); Telegram, then Slack; last the outbox worker, timers and
housekeeping, which are the first to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from telegram.ext import BaseUpdateProcessor

from bot.clock import Clock, utcnow
from bot.core import Core, build_core
from bot.email import CHANNEL as email_channel
from bot.email import EmailChannel, build_email
from bot.http.health import HealthCheck, liveness_route
from bot.http.server import build_http_app, serving
from bot.services.delivery import EnquirerDelivery, RepliesDelivery, RowSender
from bot.services.housekeeping import Housekeeping
from bot.services.leader import Leadership
from bot.services.outbox import OutboxWorker, Sender
from bot.services.timers import Timers
from bot.settings import Settings
from bot.slack.app import SlackDeskApp, build_slack
from bot.telegram.app import TelegramApp, build_telegram
from bot.web.app import WebApp, build_web
from storage import db
from storage import outbox as outbox_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Helpline:
    """The service, every part built and wired (see the module docstring)."""

    settings: Settings
    core: Core
    telegram: TelegramApp | None
    """None when no ``TELEGRAM_BOT_TOKEN`` is set (the web chat and email run without it)."""
    slack: SlackDeskApp | None
    """None when Slack is not configured (cases wait in the database)."""
    worker: OutboxWorker
    leadership: Leadership
    """Whether this replica runs the timers and housekeeping (a PostgreSQL advisory lock)."""
    timers: Timers
    housekeeping: Housekeeping
    http: Starlette
    email: EmailChannel | None = None
    """None when no mailbox is configured (``HELPLINE_IMAP_URL``)."""
    web: WebApp | None = None
    """None when the web chat is turned off (``HELPLINE_WEB_CHAT``)."""


def build(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    update_processor: BaseUpdateProcessor | None = None,
    rate_limited: bool = True,
) -> Helpline:
    """Everything ``helpline run`` runs, from ``settings``; call it inside the event loop.

    ``update_processor`` and ``rate_limited`` are for benchmarks (see
    :func:`bot.telegram.app.build_application`); ``clock`` for tests.
    """
    core = build_core(settings, clock=clock)
    _ = core.flow.understander  # the lexicons, read now: a bad one stops the start here
    telegram = (
        build_telegram(settings, core, processor=update_processor, rate_limited=rate_limited)
        if settings.telegram_enabled
        else None
    )
    slack = build_slack(settings, core) if settings.slack_enabled else None
    email = build_email(settings, core) if settings.email_enabled else None
    web = build_web(settings, core) if settings.web_chat else None
    chats, replies = telegram.chat_senders() if telegram else ({}, {})
    by_row: dict[str, RowSender] = {email_channel: email.sender} if email and email.sender else {}
    if web is not None:
        core.metrics.count_web_chats(lambda: web.hub.open_chats)
        web_rows, web_replies = web.senders()
        by_row, replies = {**by_row, **web_rows}, {**replies, **web_replies}
    senders: dict[str, Sender] = {
        outbox_store.ENQUIRER_MESSAGE: EnquirerDelivery(
            channels=chats, clock=core.clock, row_channels=by_row
        ),
        outbox_store.ENQUIRER_REPLY: RepliesDelivery(channels=replies),
        **(slack.senders if slack else {}),
    }
    worker = OutboxWorker(
        sessions=core.sessions,
        senders=senders,
        clock=core.clock,
        leases=core.leases,
        poll_interval=settings.outbox_poll_seconds,
        backoff_base=settings.outbox_backoff_seconds,
        backoff_cap=settings.outbox_backoff_cap_seconds,
        stuck_after=settings.outbox_stuck_seconds,
        wakeup=core.wakeup,
        on_failure=core.metrics.send_failed,
    )
    health = HealthCheck(
        engine=core.engine,
        sessions=core.readers,
        clock=core.clock,
        stuck_after=settings.outbox_stuck_seconds,
        timeout=settings.health_timeout_seconds,
        sent=worker.kinds,
    )
    leadership = Leadership(engine=core.engine)
    routes = [
        health.route(),
        liveness_route(),
        core.metrics.route(
            sessions=core.readers,
            clock=core.clock,
            timeout=settings.health_timeout_seconds,
            sent=worker.kinds,
        ),
        *(telegram.routes if telegram else ()),
        *(slack.routes if slack else ()),
        *(web.routes if web else ()),
    ]
    return Helpline(
        settings=settings,
        core=core,
        telegram=telegram,
        slack=slack,
        worker=worker,
        leadership=leadership,
        timers=Timers(
            sessions=core.sessions,
            calendar=core.calendar,
            copy=core.flow.copy,
            clock=core.clock,
            every=settings.timer_seconds,
            leads=leadership.leads,
        ),
        housekeeping=Housekeeping(
            sessions=core.sessions,
            clock=core.clock,
            retention_days=settings.retention_days,
            leads=leadership.leads,
        ),
        http=build_http_app(routes),
        email=email,
        web=web,
    )


@asynccontextmanager
async def background(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    """``run(stop)`` as a task for the length of the block, stopped (and awaited) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def started(part: TelegramApp | SlackDeskApp) -> AsyncIterator[None]:
    """A channel started for the length of the block, stopped on exit."""
    await part.start()
    try:
        yield
    finally:
        await part.stop()


@asynccontextmanager
async def running(helpline: Helpline) -> AsyncIterator[None]:
    """The service running for the length of the block (order: the module docstring)."""
    core, settings = helpline.core, helpline.settings
    async with AsyncExitStack() as stack:
        stack.push_async_callback(core.close)
        stack.push_async_callback(helpline.leadership.close)  # before the engine goes
        await core.open()
        if db.single_process(core.engine):
            # Nobody else can be sending what a killed run left leased: take it back now
            # rather than when the leases run out.
            await core.leases.free_all()
        await stack.enter_async_context(
            serving(helpline.http, settings.http_host, settings.http_port)
        )
        await stack.enter_async_context(background(core.leases.run))
        await stack.enter_async_context(background(core.replies.run))
        if helpline.web is not None:
            await stack.enter_async_context(background(helpline.web.run))
        if helpline.telegram is not None:
            await stack.enter_async_context(started(helpline.telegram))
        if helpline.slack is not None:
            await stack.enter_async_context(started(helpline.slack))
        for job in (helpline.worker.run, helpline.timers.run, helpline.housekeeping.run):
            await stack.enter_async_context(background(job))
        if helpline.email is not None:
            await stack.enter_async_context(background(helpline.email.poller.run))
        log.info(
            "helpline service running (telegram %s, slack %s, email %s, http on %s:%d)",
            _telegram_mode(helpline.telegram),
            "on" if helpline.slack else "off",
            "on" if helpline.email else "off",
            settings.http_host,
            settings.http_port,
        )
        if helpline.web is not None:
            log.info("web chat at http://%s:%d/chat", settings.http_host, settings.http_port)
        yield
        log.info("shutting down")


def _telegram_mode(telegram: TelegramApp | None) -> str:
    if telegram is None:
        return "off (no TELEGRAM_BOT_TOKEN)"
    return "webhook" if telegram.webhook else "polling"


async def serve(
    settings: Settings, *, stop: asyncio.Event | None = None, clock: Clock = utcnow
) -> None:
    """``helpline run``: until ``stop`` is set (or a SIGTERM/SIGINT arrives)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    async with running(build(settings, clock=clock)):
        await stop.wait()
