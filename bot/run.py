"""`helpline run`: the long-running service (Telegram intake and the HTTP server).

Starts everything the settings ask for, then waits for SIGTERM/SIGINT and shuts down in
order: stop taking updates, finish the ones in hand, stop the HTTP server, close the
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from urllib.parse import urlsplit

from pydantic import SecretStr
from telegram import Update

from bot.http import build_http_app, health_route, http_server, telegram_webhook_route
from bot.intake import Clock, utcnow
from bot.service import open_core
from bot.settings import Settings
from bot.telegram import TelegramChannel, build_application
from storage import db

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
    return missing


async def serve(
    settings: Settings, *, stop: asyncio.Event | None = None, clock: Clock = utcnow
) -> None:
    """Run until ``stop`` is set (or a SIGTERM/SIGINT arrives)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    assert settings.telegram_bot_token is not None
    async with open_core(settings, clock=clock) as core:
        channel = TelegramChannel(
            intake=core.intake, copy=core.flow.copy, retention_days=settings.retention_days
        )
        webhook_url = settings.telegram_webhook_url
        app = build_application(
            token=settings.telegram_bot_token.get_secret_value(),
            base_url=settings.telegram_api_base_url,
            channel=channel,
            polling=not webhook_url,
        )
        routes = [health_route(lambda: db.ping(core.engine))]
        if webhook_url:
            assert settings.telegram_webhook_secret is not None
            secret = settings.telegram_webhook_secret.get_secret_value()
            path = urlsplit(webhook_url).path or "/telegram/webhook"
            routes.append(telegram_webhook_route(path, app, secret))
        server = http_server(build_http_app(routes), settings.http_host, settings.http_port)

        await app.initialize()
        try:
            await channel.set_commands(app)
        except Exception as error:  # the menu is a nicety; intake must still start
            log.warning("could not set the command menu: %s", type(error).__name__)
        if webhook_url:
            await app.bot.set_webhook(
                webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES
            )
        else:
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=25)
        await app.start()
        server_task = asyncio.create_task(server.serve())
        log.info(
            "helpline service running (%s, http on %s:%d)",
            "webhook" if webhook_url else "polling",
            settings.http_host,
            settings.http_port,
        )
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            await app.stop()
            server.should_exit = True
            await server_task
            await app.shutdown()
