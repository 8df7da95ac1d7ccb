"""The Telegram side of the service, built whole: the PTB Application, our handlers, the
reply sender, the outbox senders for Telegram chats, and (in webhook mode) the route.

The only place PTB is configured. :meth:`TelegramApp.start` and :meth:`TelegramApp.stop`
run it in the order that loses nothing: PTB is started before Telegram is told where to
send updates, and on the way out the updates in hand are finished while PTB still runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute
from telegram import Bot, Update
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor

from bot import logs
from bot.core import Core
from bot.services.delivery import ChatSender, RepliesSender
from bot.settings import Settings
from bot.telegram.handlers import TelegramChannel
from bot.telegram.limits import ChatRateLimiter
from bot.telegram.processing import PerChatUpdateProcessor
from bot.telegram.sending import CHANNEL, ReplySender, chat_sender, replies_sender
from bot.telegram.transport import AiohttpRequest
from bot.telegram.webhook import TelegramWebhook, webhook_address

log = logging.getLogger(__name__)
PTBApplication = Application[Any, Any, Any, Any, Any, Any]
POLL_TIMEOUT = 25  # seconds a getUpdates call waits for news


def build_application(
    *,
    token: str,
    base_url: str,
    channel: TelegramChannel,
    polling: bool,
    processor: BaseUpdateProcessor | None = None,
    max_retries: int = 5,
    rate_limited: bool = True,
    per_chat_rate: float = 1.0,
    per_chat_burst: int = 3,
) -> PTBApplication:
    """The PTB Application, wired to our channel.

    ``processor`` runs updates (by default :class:`PerChatUpdateProcessor`: one at a time
    per chat); a benchmark passes one that times them. ``rate_limited`` keeps to
    Telegram's limits (30 messages/s, 1/s per chat, 429s waited out and retried); only a
    benchmark against a local fake turns it off.
    """
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_url.replace("/bot", "/file/bot"))
        .concurrent_updates(processor or PerChatUpdateProcessor(256))
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(connection_pool_size=1, read_timeout=30.0))
    )
    if rate_limited:
        limiter = ChatRateLimiter(
            per_chat_rate=per_chat_rate, per_chat_burst=per_chat_burst, max_retries=max_retries
        )
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]
    if not polling:
        builder = builder.updater(None)
    app = builder.build()
    channel.register(app)
    return app


@dataclass(frozen=True)
class Webhook:
    """Where Telegram is told to post, and what checks the posts."""

    url: str
    secret: str
    connections: int
    handler: TelegramWebhook


@dataclass(frozen=True)
class TelegramApp:
    """Telegram, as the service runs it: started, stopped, routed and sent with."""

    application: PTBApplication
    channel: TelegramChannel
    webhook: Webhook | None
    """None: updates are polled."""

    @property
    def bot(self) -> Bot:
        """The Bot API client the handlers and the outbox senders share."""
        bot: Bot = self.application.bot
        return bot

    @property
    def routes(self) -> tuple[BaseRoute, ...]:
        """The webhook's route (none when polling)."""
        if self.webhook is None:
            return ()
        return (self.webhook.handler.route(webhook_address(self.webhook.url)[1]),)

    def chat_senders(self) -> tuple[dict[str, ChatSender], dict[str, RepliesSender]]:
        """The outbox's senders for Telegram chats: desk messages, and turns' replies."""
        copy = self.channel.copy
        return {CHANNEL: chat_sender(self.bot)}, {CHANNEL: replies_sender(self.bot, copy)}

    async def start(self) -> None:
        """PTB up, then updates asked for (webhook set, or polling started)."""
        app = self.application
        await app.initialize()
        try:
            await self.channel.set_commands(app)
        except Exception as error:  # the menu is a nicety; intake must still start
            log.warning("could not set the command menu: %s", logs.kind(error))
        await app.start()
        if self.webhook is None:
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=POLL_TIMEOUT)
            return
        self.webhook.handler.start()  # and what an earlier run left in the inbox is handled
        # Each connection Telegram opens only waits for its update to be stored; a few
        # dozen keep up with any load while leaving the database pool to the handlers.
        await app.bot.set_webhook(
            webhook_address(self.webhook.url)[0],
            secret_token=self.webhook.secret,
            allowed_updates=Update.ALL_TYPES,
            max_connections=self.webhook.connections,
        )

    async def stop(self) -> None:
        """Finish the updates in hand, then stop polling and PTB."""
        app = self.application
        if self.webhook is not None:
            await self.webhook.handler.close()  # in hand: finished while PTB still runs
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()


def build_telegram(
    settings: Settings,
    core: Core,
    *,
    processor: BaseUpdateProcessor | None = None,
    rate_limited: bool = True,
) -> TelegramApp:
    """Telegram from settings (a bot token must be set). See :func:`build_application`
    for ``processor`` and ``rate_limited``."""
    assert settings.telegram_bot_token is not None
    webhook_url = settings.telegram_webhook_url
    sender = ReplySender(
        copy=core.flow.copy, ledger=core.replies, patience=settings.telegram_send_patience
    )
    channel = TelegramChannel(
        intake=core.intake,
        copy=core.flow.copy,
        sender=sender,
        retention_days=settings.retention_days,
        inbox=bool(webhook_url),
        erase_chat=core.privacy.erase_chat,
    )
    application = build_application(
        token=settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        channel=channel,
        polling=not webhook_url,
        processor=processor,
        rate_limited=rate_limited,
        per_chat_rate=settings.telegram_chat_rate,
        per_chat_burst=settings.telegram_chat_burst,
    )
    webhook = None
    if webhook_url:
        assert settings.telegram_webhook_secret is not None
        secret = settings.telegram_webhook_secret.get_secret_value()
        handler = TelegramWebhook(
            application,
            secret,
            sessions=core.sessions,
            clock=core.clock,
            leases=core.leases,
            backoff_base=settings.outbox_backoff_seconds,
            backoff_cap=settings.outbox_backoff_cap_seconds,
            poll_interval=settings.outbox_poll_seconds,
        )
        webhook = Webhook(webhook_url, secret, settings.telegram_webhook_connections, handler)
    return TelegramApp(application, channel, webhook)
