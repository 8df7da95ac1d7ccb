"""The Slack practitioner desk's Bolt listeners: thin, one per button, modal and event.

Listeners acknowledge at once (Slack allows 3 seconds), then call the desk service.
Nothing is posted to the channel from here: the desk service writes cards and thread
notes to the outbox (sent by :mod:`bot.slack.senders`); a listener only answers the
practitioner who acted (an ephemeral message, a modal).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import logs
from bot.services.desk import DeskService
from bot.slack.blocks import Block, details_modal, reply_modal, resolve_modal
from bot.text import for_slack, normalise
from flows.copy import Copy
from flows.privacy import AuditChannel

log = logging.getLogger(__name__)
Body = dict[str, Any]


def actor_of(body: Body) -> str:
    """Practitioners are recorded by Slack user id, written so Slack shows their name."""
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    return f"<@{user_id}>" if isinstance(user_id, str) else "<@unknown>"


class SlackDesk:
    """Registers the desk's listeners on a Bolt app."""

    def __init__(
        self,
        *,
        desk: DeskService,
        copy: Copy,
        on_change: Callable[[], None] = lambda: None,
        may_act: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """``on_change``: the desk wrote to the outbox (the worker looks at once);
        ``may_act``: whether a Slack user id is a practitioner (None: everyone is)."""
        self.desk = desk
        self.copy = copy
        self.on_change = on_change
        self.may_act = may_act

    def register(self, app: AsyncApp) -> None:
        """Attach every desk listener to ``app``, in one place, so nothing registers at import."""
        app.action("claim")(self.on_claim)
        app.action("release")(self.on_release)
        app.action("reply")(self.on_reply_button)
        app.action("resolve")(self.on_resolve_button)
        app.action("details")(self.on_details)
        app.view("reply_modal")(self.on_reply_submitted)
        app.view("resolve_modal")(self.on_resolve_submitted)
        app.event("message")(self.on_message)
        app.event("app_home_opened")(self.on_home_opened)
        app.action("open_case")(self.on_open_case)
        app.error(self.on_error)

    # Buttons on the card -------------------------------------------------------------

    async def on_claim(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """A practitioner pressed Claim on a card: take the case and show them, alone, the contact
        details (or why they cannot have it).
        """
        await ack()
        reference, actor = button_value(body), actor_of(body)
        if reference is None or await self._refused(client, body, reference):
            return
        result = await self.desk.claim(reference, actor)
        self.on_change()
        if result.ok:
            contact = await self.desk.contact_details(reference, escape=for_slack, actor=actor)
            text = f"{result.message}\n{contact}" if result.repeated else contact
        else:
            text = result.message
        await self._ephemeral(client, body, text)

    async def on_release(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """A practitioner pressed Release on a card: give the case back to the queue."""
        await ack()
        reference = button_value(body)
        if reference is None or await self._refused(client, body, reference):
            return
        result = await self.desk.release(reference, actor_of(body))
        self.on_change()
        await self._ephemeral(client, body, result.message)

    async def on_reply_button(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """Reply: the claimer writes to the enquirer in a modal."""
        await ack()
        await self._modal_for_claimer(
            body, client, lambda reference: reply_modal(self.copy, reference, self._channel(body))
        )

    async def on_resolve_button(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """Resolve: the claimer picks an outcome in a modal."""
        await ack()
        await self._modal_for_claimer(
            body,
            client,
            lambda reference: resolve_modal(
                self.copy, reference, self._channel(body), self.desk.outcomes
            ),
        )

    async def _modal_for_claimer(
        self, body: Body, client: AsyncWebClient, view_for: Callable[[str], Block]
    ) -> None:
        """Open ``view_for(reference)``, or say why this practitioner may not act on it."""
        reference = button_value(body)
        if reference is None or await self._refused(client, body, reference):
            return
        refusal = await self.desk.check(reference, actor_of(body))
        if refusal:
            return await self._ephemeral(client, body, refusal)
        await self._quietly(
            client.views_open(trigger_id=str(body.get("trigger_id")), view=view_for(reference))
        )

    async def on_details(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """A practitioner pressed Details: show the case; contact details only to its holder."""
        await ack()
        reference, actor = button_value(body), actor_of(body)
        if reference is None or await self._refused(client, body, reference):
            return
        case = await self.desk.case(reference, actor)
        if case is None:
            return
        contact = None
        if case.claimed_by == actor:
            contact = await self.desk.contact_details(reference, escape=for_slack, actor=actor)
        view = details_modal(self.copy, case, contact)
        await self._quietly(client.views_open(trigger_id=str(body.get("trigger_id")), view=view))

    # Modal submissions ---------------------------------------------------------------

    async def on_reply_submitted(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """A practitioner sent the reply modal: an empty reply stays open with an error; otherwise
        the reply goes to the enquirer, and a refusal is shown to the practitioner alone.
        """
        values = view_values(body)
        text = normalise(str(_input(values, "reply", "text", "value") or "")).strip()
        if not text:
            await ack(response_action="errors", errors={"reply": self.copy("desk.empty_reply")})
            return
        await ack()
        meta = _metadata(body)
        if await self._refused(client, body, meta.get("reference"), meta.get("channel")):
            return
        result = await self.desk.reply(meta.get("reference", ""), actor_of(body), text)
        self.on_change()
        if not result.ok:
            await self._ephemeral(client, body, result.message, channel=meta.get("channel"))

    async def on_resolve_submitted(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """A practitioner sent the resolve modal: close the case with the outcome chosen."""
        values = view_values(body)
        selected = _input(values, "outcome", "value", "selected_option")
        outcome = str(selected.get("value") or "") if isinstance(selected, dict) else ""
        note = _input(values, "note", "text", "value")
        await ack()
        meta = _metadata(body)
        if await self._refused(client, body, meta.get("reference"), meta.get("channel")):
            return
        result = await self.desk.resolve(
            meta.get("reference", ""),
            actor_of(body),
            outcome,
            normalise(note) if isinstance(note, str) else None,
        )
        self.on_change()
        if not result.ok:
            await self._ephemeral(client, body, result.message, channel=meta.get("channel"))

    # Events --------------------------------------------------------------------------

    async def on_message(self, body: Body, event: Body) -> None:
        """A practitioner's message in a case thread: an internal note, recorded once."""
        thread_ts = event.get("thread_ts")
        if not thread_ts or event.get("bot_id") or event.get("subtype") or not event.get("user"):
            return
        # A message with no text (a file, say) carries no note: nothing to record.
        text = normalise(str(event.get("text") or "")).strip()
        recorded = await self.desk.note(
            card=str(thread_ts),
            actor=f"<@{event['user']}>",
            text=text,
            dedupe=("slack:events", str(body.get("event_id"))),
        )
        if recorded is None:
            log.info("slack event redelivery ignored")

    async def on_home_opened(self, body: Body, event: Body) -> None:
        """A practitioner opened the App Home tab: their queue is published (by the outbox)."""
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str) or not user:
            return
        dedupe = ("slack:events", str(body.get("event_id")))
        if await self.desk.home_opened(user, dedupe=dedupe):
            self.on_change()

    async def on_open_case(self, ack: AsyncAck) -> None:
        """The Open button on the App Home is a link: Slack opens the card; nothing to do."""
        await ack()

    async def on_error(self, error: Exception, body: Body) -> None:
        """A listener failed: log the kind of error only, never the payload (it holds what
        people wrote).
        """
        log.error("slack listener failed: %s", logs.kind(error), exc_info=error)

    # Plumbing ------------------------------------------------------------------------

    async def _refused(
        self,
        client: AsyncWebClient,
        body: Body,
        reference: str | None,
        channel: str | None = None,
    ) -> bool:
        """Whoever pressed is not a practitioner: audited, answered kindly, nothing done."""
        if self.may_act is None:
            return False
        user = body.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
        if await self.may_act(str(user_id or "")):
            return False
        message = await self.desk.refused(reference, actor_of(body), AuditChannel.SLACK)
        await self._ephemeral(client, body, message, channel=channel)
        return True

    @staticmethod
    def _channel(body: Body) -> str:
        channel, container = body.get("channel"), body.get("container")
        channel = channel if isinstance(channel, dict) else {}
        container = container if isinstance(container, dict) else {}
        return str(channel.get("id") or container.get("id") or container.get("channel_id") or "")

    async def _ephemeral(
        self, client: AsyncWebClient, body: Body, text: str, channel: str | None = None
    ) -> None:
        channel = channel or self._channel(body)
        user = str((body.get("user") or {}).get("id") or "")
        if not user:
            return
        if channel:
            await self._quietly(client.chat_postEphemeral(channel=channel, user=user, text=text))
        else:
            await self._quietly(client.chat_postMessage(channel=user, text=text))

    @staticmethod
    async def _quietly(call: Awaitable[Any]) -> None:
        try:
            await call
        except (TimeoutError, SlackApiError, aiohttp.ClientError) as error:
            log.warning("slack call failed: %s", logs.kind(error))


def button_value(body: Body) -> str | None:
    """The value of the pressed button (a case reference), or None if there is none."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    value = first.get("value") if isinstance(first, dict) else None
    return value if isinstance(value, str) and value else None


def view_values(body: Body) -> dict[str, Any]:
    """A submitted modal's ``state.values`` (empty if the payload has none)."""
    view = body.get("view")
    state = view.get("state") if isinstance(view, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    return values if isinstance(values, dict) else {}


def _input(values: dict[str, Any], block: str, action: str, key: str) -> Any:
    element = values.get(block)
    element = element.get(action) if isinstance(element, dict) else None
    return element.get(key) if isinstance(element, dict) else None


def _metadata(body: Body) -> dict[str, str]:
    view = body.get("view")
    raw = view.get("private_metadata") if isinstance(view, dict) else None
    try:
        data = json.loads(raw or "{}") if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
