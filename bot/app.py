"""`helpline run`: the long-running service (Telegram intake, Slack desk, outbox, HTTP).

Starts everything the settings ask for, then waits for SIGTERM/SIGINT and shuts down in
order: stop taking updates, finish the ones in hand, stop the workers and the HTTP
server, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from telegram import Update

from bot import logs
from bot.services.delivery import ChatSender, EnquirerDelivery, RepliesDelivery
from bot.services.housekeeping import run_housekeeping
from bot.http.server import HealthCheck, TelegramWebhook, build_http_app, http_server, liveness_route
from bot.services.intake import Clock, utcnow
from bot.services.outbox import OutboxWorker, Sender
from bot.core import Core, open_core
from bot.settings import Settings
from bot.slack.listeners import SlackCards, SlackDesk
from bot.slack.endpoint import SlackEndpoint
from bot.telegram.handlers import TelegramChannel, build_application, chat_sender, replies_sender
from bot.services.timers import Timers
from storage import db
from storage import outbox as outbox_store

log = logging.getLogger(__name__)


def _given(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def missing_settings(settings: Settings) -> list[str]:
    """Settings without which the service cannot start, by their environment names."""
    missing = []
    if not _given(settings.telegram_bot_token):
        missing.append("TELEGRAM_BOT_TOKEN")
    if settings.telegram_webhook_url and not _given(settings.telegram_webhook_secret):
        missing.append("TELEGRAM_WEBHOOK_SECRET")
    socket_mode = _given(settings.slack_app_token)
    if settings.slack_enabled and not socket_mode and not _given(settings.slack_signing_secret):
        missing.append("SLACK_SIGNING_SECRET")
    return missing


def slack_app(settings: Settings, core: Core) -> tuple[AsyncApp, AsyncWebClient]:
    """The Bolt app and its Web API client (pointed at SLACK_API_URL)."""
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=10,  # keeps an outbox pass well inside its lease (bot/outbox.py)
    )
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    app = AsyncApp(client=client, signing_secret=secret or None, process_before_response=False)
    SlackDesk(
        desk=core.desk,
        sessions=core.sessions,
        copy=core.flow.copy,
        clock=core.clock,
        on_change=core.wakeup.set,
    ).register(app)
    return app, client


DEFAULT_WEBHOOK_PATH = "/telegram/webhook"


def webhook_address(url: str) -> tuple[str, str]:
    """The URL to give Telegram and the path we serve it on: always the same path.

    A URL with no path (``https://helpline.example.org``) gets ``/telegram/webhook``
    added, so Telegram posts where we listen rather than to ``/``.
    """
    parts = urlsplit(url)
    if parts.path.strip("/"):
        return url, parts.path
    return urlunsplit(parts._replace(path=DEFAULT_WEBHOOK_PATH)), DEFAULT_WEBHOOK_PATH


@asynccontextmanager
async def telegram_running(
    settings: Settings, core: Core, routes: list[BaseRoute]
) -> AsyncIterator[tuple[Any, TelegramChannel]]:
    """PTB started (polling, or webhook route added); stopped in order on exit."""
    assert settings.telegram_bot_token is not None
    webhook_url = settings.telegram_webhook_url
    channel = TelegramChannel(
        intake=core.intake,
        copy=core.flow.copy,
        retention_days=settings.retention_days,
        send_patience=settings.telegram_send_patience,
        ledger=core.replies,
        inbox=bool(webhook_url),
    )
    webhook: TelegramWebhook | None = None
    app = build_application(
        token=settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        channel=channel,
        polling=not webhook_url,
        per_chat_rate=settings.telegram_chat_rate,
        per_chat_burst=settings.telegram_chat_burst,
    )
    if webhook_url:
        assert settings.telegram_webhook_secret is not None
        secret = settings.telegram_webhook_secret.get_secret_value()
        webhook_url, path = webhook_address(webhook_url)
        webhook = TelegramWebhook(
            app,
            secret,
            sessions=core.sessions,
            clock=core.clock,
            leases=core.leases,
            backoff_base=settings.outbox_backoff_seconds,
            backoff_cap=settings.outbox_backoff_cap_seconds,
            poll_interval=settings.outbox_poll_seconds,
        )
        routes.append(webhook.route(path))
    await app.initialize()
    try:
        await channel.set_commands(app)
    except Exception as error:  # the menu is a nicety; intake must still start
        log.warning("could not set the command menu: %s", logs.kind(error))
    # Started before Telegram is told where to send updates, so none meets a 503.
    await app.start()
    if webhook is not None:
        webhook.start()  # and what an earlier run left in the inbox is handled now
        # Each connection Telegram opens only waits for its update to be stored; a few
        # dozen keep up with any load while leaving the database pool to the handlers.
        await app.bot.set_webhook(
            webhook_url,
            secret_token=secret,
            allowed_updates=Update.ALL_TYPES,
            max_connections=settings.telegram_webhook_connections,
        )
    else:
        assert app.updater is not None
        await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=25)
    try:
        yield app, channel
    finally:
        if webhook is not None:
            await webhook.close()  # updates in hand are finished while PTB still runs
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        await app.stop()
        await app.shutdown()


def outbox_worker(settings: Settings, core: Core, senders: dict[str, Sender]) -> OutboxWorker:
    """The outbox worker as the service runs it (``senders`` may still be added to)."""
    return OutboxWorker(
        sessions=core.sessions,
        senders=senders,
        clock=core.clock,
        leases=core.leases,
        poll_interval=settings.outbox_poll_seconds,
        backoff_base=settings.outbox_backoff_seconds,
        backoff_cap=settings.outbox_backoff_cap_seconds,
        stuck_after=settings.outbox_stuck_seconds,
        wakeup=core.wakeup,
    )


def enquirer_senders(core: Core, bot: Any, channel: TelegramChannel) -> dict[str, Sender]:
    """What the worker sends to enquirers with: desk messages, and replies the fast path
    handed over."""
    chats: dict[str, ChatSender] = {"telegram": chat_sender(bot)}
    return {
        outbox_store.ENQUIRER_MESSAGE: EnquirerDelivery(
            channels=chats, copy=core.flow.copy, clock=core.clock
        ),
        outbox_store.ENQUIRER_REPLY: RepliesDelivery(
            channels={"telegram": replies_sender(bot, channel)}
        ),
    }


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


async def serve(
    settings: Settings, *, stop: asyncio.Event | None = None, clock: Clock = utcnow
) -> None:
    """Run until ``stop`` is set (or a SIGTERM/SIGINT arrives)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    async with open_core(settings, clock=clock) as core, AsyncExitStack() as stack:
        if db.single_process(core.engine):
            # Nobody else can be sending what a killed run left leased: take it back now
            # rather than when the leases run out.
            await core.leases.free_all()
        # The HTTP server is up before Telegram is told about the webhook; routes for
        # the webhook and Slack are added to it as those channels start.
        health = HealthCheck(
            engine=core.engine,
            sessions=core.sessions,
            clock=core.clock,
            stuck_after=settings.outbox_stuck_seconds,
            timeout=settings.health_timeout_seconds,
        )
        http_app = build_http_app([health.route(), liveness_route()])
        routes = http_app.router.routes
        await stack.enter_async_context(http_serving(http_app, settings))
        # Left last (the stack unwinds backwards): leases are renewed and sent replies
        # acknowledged until the channels have finished what they had in hand.
        await stack.enter_async_context(background(core.leases.run))
        await stack.enter_async_context(background(core.replies.run))
        senders: dict[str, Sender] = {}
        worker = outbox_worker(settings, core, senders)
        telegram, channel = await stack.enter_async_context(
            telegram_running(settings, core, routes)
        )
        senders |= enquirer_senders(core, telegram.bot, channel)
        if settings.slack_enabled:
            app, client = slack_app(settings, core)
            cards = SlackCards(
                client=client,
                channel_id=str(settings.slack_channel_id),
                sessions=core.sessions,
                copy=core.flow.copy,
                zone=core.calendar.zone,
                clock=core.clock,
                oncall=settings.slack_oncall,
            )
            senders[outbox_store.SLACK_CARD] = cards.send_card
            senders[outbox_store.SLACK_THREAD] = cards.send_thread
            senders[outbox_store.SLACK_POST] = cards.send_post
            await stack.enter_async_context(slack_connected(settings, core, app, routes))
        timers = Timers(
            sessions=core.sessions, calendar=core.calendar, copy=core.flow.copy, clock=core.clock
        )
        tasks = [
            asyncio.create_task(worker.run(stop)),
            asyncio.create_task(run_housekeeping(core, stop)),
            asyncio.create_task(timers.run(stop, settings.timer_seconds)),
        ]
        log.info(
            "helpline service running (telegram %s, slack %s, http on %s:%d)",
            "webhook" if settings.telegram_webhook_url else "polling",
            "on" if settings.slack_enabled else "off",
            settings.http_host,
            settings.http_port,
        )
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def http_serving(app: Starlette, settings: Settings) -> AsyncIterator[None]:
    """The HTTP server, listening before this returns and stopped on exit."""
    server = http_server(app, settings.http_host, settings.http_port)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():  # e.g. the port is taken: say so instead of hanging
            task.result()
            raise RuntimeError(
                f"HTTP server could not start on {settings.http_host}:{settings.http_port}"
            )
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def slack_connected(
    settings: Settings, core: Core, app: AsyncApp, routes: list[BaseRoute]
) -> AsyncIterator[None]:
    """Socket Mode when an app token is set; otherwise POST /slack/events on our server."""
    if _given(settings.slack_app_token):
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        assert settings.slack_app_token is not None
        handler = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
        await handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            yield
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
        return
    assert settings.slack_signing_secret is not None
    endpoint = SlackEndpoint(
        app=app,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        sessions=core.sessions,
        clock=core.clock,
    )
    routes.append(endpoint.route())
    yield
