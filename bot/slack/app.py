"""The Slack side of the service, built whole: the Bolt app and its Web API client, the
desk's listeners, the outbox senders for the desk, and how Slack reaches us.

Slack reaches us over Socket Mode when an app token is set (no public URL needed), or
else at ``POST /slack/events`` on our HTTP server (:mod:`bot.slack.endpoint`). Either
way :meth:`SlackDeskApp.start` and :meth:`SlackDeskApp.stop` are all the service calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.routing import BaseRoute

from bot.core import Core
from bot.services.outbox import Sender
from bot.settings import Settings, given
from bot.slack.endpoint import SlackEndpoint
from bot.slack.listeners import SlackDesk
from bot.slack.practitioners import Practitioners
from bot.slack.senders import SlackCards

API_TIMEOUT = 10  # seconds: keeps an outbox pass well inside its lease


@dataclass(frozen=True)
class SlackDeskApp:
    """The desk in Slack: what the service routes, sends with, starts and stops."""

    bolt: AsyncApp
    client: AsyncWebClient
    cards: SlackCards
    socket: AsyncSocketModeHandler | None
    """Socket Mode's connection; None when Slack posts to our endpoint instead."""
    routes: tuple[BaseRoute, ...]

    @property
    def senders(self) -> dict[str, Sender]:
        """The outbox senders for desk rows (cards, threads, posts, the digest)."""
        return self.cards.senders

    async def start(self) -> None:
        """Connect to Socket Mode (nothing to do when Slack posts to our endpoint)."""
        if self.socket is not None:
            await self.socket.connect_async()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        """Close the Socket Mode connection, if there is one."""
        if self.socket is not None:
            await self.socket.close_async()  # type: ignore[no-untyped-call]


def build_slack(settings: Settings, core: Core) -> SlackDeskApp:
    """The desk's Slack app, from settings (``settings.slack_enabled`` must be true).

    Called inside the event loop: Socket Mode's client starts its reader when it is made.
    """
    assert settings.slack_bot_token is not None and settings.slack_channel_id is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=API_TIMEOUT,
    )
    secret = settings.slack_signing_secret
    signing_secret = secret.get_secret_value() if given(secret) and secret else None
    bolt = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)
    practitioners = (
        Practitioners(client=client, group=settings.slack_practitioners)
        if settings.slack_practitioners
        else None
    )
    SlackDesk(
        desk=core.desk, copy=core.flow.copy, on_change=core.wakeup.set, may_act=practitioners
    ).register(bolt)
    cards = SlackCards(
        client=client,
        channel_id=settings.slack_channel_id,
        sessions=core.sessions,
        copy=core.flow.copy,
        calendar=core.calendar,
        clock=core.clock,
        oncall=settings.slack_oncall,
    )
    app_token = settings.slack_app_token
    routes: tuple[BaseRoute, ...] = ()
    socket = None
    if app_token is not None and given(app_token):
        socket = AsyncSocketModeHandler(bolt, app_token.get_secret_value())
    else:
        assert signing_secret is not None  # Settings.missing_for_run() said so before
        endpoint = SlackEndpoint(
            app=bolt, signing_secret=signing_secret, sessions=core.sessions, clock=core.clock
        )
        routes = (endpoint.route(),)
    return SlackDeskApp(
        bolt=bolt,
        client=client,
        cards=cards,
        socket=socket,
        routes=routes,
    )
