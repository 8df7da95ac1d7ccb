"""The web chat, built whole from settings: the chat service, the hub, the socket, the
routes and the outbox's senders for web chats. :func:`build_web` is called by the
composition root (:func:`bot.app.build`), which adds :attr:`WebApp.routes` to the HTTP
server, :meth:`WebApp.senders` to the outbox worker and runs :meth:`WebApp.run`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.routing import BaseRoute

from bot.core import Core
from bot.services.delivery import RepliesSender, RowSender
from bot.settings import Settings
from bot.web.chat import WebChat
from bot.web.hub import Hub
from bot.web.limits import MinuteLimit
from bot.web.routes import web_routes
from bot.web.socket import ChatSocket, Origins


@dataclass(frozen=True)
class WebApp:
    """The web chat channel as the service runs it."""

    chat: WebChat
    hub: Hub
    routes: tuple[BaseRoute, ...]

    def senders(self) -> tuple[dict[str, RowSender], dict[str, RepliesSender]]:
        """The outbox's senders for web chats: desk messages (by row), and turns' replies."""
        return self.chat.senders()

    async def run(self, stop: asyncio.Event) -> None:
        """Look for messages other processes wrote, until ``stop``."""
        await self.hub.run(stop)


def build_web(settings: Settings, core: Core) -> WebApp:
    """The web chat from settings."""
    hub = Hub(sessions=core.readers, poll=settings.web_poll_seconds)
    chat = WebChat(
        intake=core.intake,
        sessions=core.sessions,
        hub=hub,
        copy=core.flow.copy,
        clock=core.clock,
        retention_days=settings.retention_days,
        erase_chat=core.privacy.erase_chat,
    )
    origins = Origins(settings.web_origins)
    socket = ChatSocket(
        chat=chat,
        hub=hub,
        origins=origins,
        per_session=MinuteLimit(settings.web_session_rate),
        per_address=MinuteLimit(settings.web_address_rate),
        retention_days=settings.retention_days,
    )
    routes = web_routes(chat=chat, socket=socket, origins=origins, exit_url=settings.web_exit_url)
    return WebApp(chat=chat, hub=hub, routes=tuple(routes))
