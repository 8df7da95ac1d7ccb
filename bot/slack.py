"""The Slack practitioner desk: Bolt listeners (thin) and the outbox senders for cards.

Listeners acknowledge at once (Slack allows 3 seconds), then call the desk service.
Cards and thread notes are never posted from a listener: they go through the outbox,
so a Slack outage delays them but loses nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot import logs
from bot.desk import DeskService
from bot.outbox import GiveUp, Result, Retry, Sent
from bot.slack_cards import case_card, details_modal, reply_modal, resolve_modal
from flows.copy import Copy
from storage import conversations as convo_store
from storage import desk as desk_store
from storage.models import Case, OutboxMessage

log = logging.getLogger(__name__)
Body = dict[str, Any]


def actor_of(body: Body) -> str:
    """Practitioners are recorded by Slack user id, written so Slack shows their name."""
    return f"<@{body['user']['id']}>"


class SlackDesk:
    """Registers the desk's listeners on a Bolt app."""

    def __init__(
        self,
        *,
        desk: DeskService,
        sessions: async_sessionmaker[AsyncSession],
        copy: Copy,
        clock: Callable[[], datetime],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.desk = desk
        self.sessions = sessions
        self.copy = copy
        self.clock = clock
        self.on_change = on_change

    def register(self, app: AsyncApp) -> None:
        app.action("claim")(self.on_claim)
        app.action("release")(self.on_release)
        app.action("reply")(self.on_reply_button)
        app.action("resolve")(self.on_resolve_button)
        app.action("details")(self.on_details)
        app.view("reply_modal")(self.on_reply_submitted)
        app.view("resolve_modal")(self.on_resolve_submitted)
        app.event("message")(self.on_message)
        app.error(self.on_error)

    # Buttons on the card -------------------------------------------------------------

    async def on_claim(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference, actor = body["actions"][0]["value"], actor_of(body)
        result = await self.desk.claim(reference, actor)
        self.on_change()
        text = await self.desk.contact_details(reference) if result.ok else result.message
        await self._ephemeral(client, body, text)

    async def on_release(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        result = await self.desk.release(body["actions"][0]["value"], actor_of(body))
        self.on_change()
        await self._ephemeral(client, body, result.message)

    async def on_reply_button(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference = body["actions"][0]["value"]
        refusal = await self.desk.check(reference, actor_of(body))
        if refusal:
            return await self._ephemeral(client, body, refusal)
        view = reply_modal(self.copy, reference, self._channel(body))
        await self._quietly(client.views_open(trigger_id=body["trigger_id"], view=view))

    async def on_resolve_button(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference = body["actions"][0]["value"]
        refusal = await self.desk.check(reference, actor_of(body))
        if refusal:
            return await self._ephemeral(client, body, refusal)
        view = resolve_modal(self.copy, reference, self._channel(body), self.desk.outcomes)
        await self._quietly(client.views_open(trigger_id=body["trigger_id"], view=view))

    async def on_details(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference, actor = body["actions"][0]["value"], actor_of(body)
        async with self.sessions() as session:
            case = await _case_by_reference(session, reference)
        if case is None:
            return
        contact = await self.desk.contact_details(reference) if case.claimed_by == actor else None
        view = details_modal(self.copy, case, contact)
        await self._quietly(client.views_open(trigger_id=body["trigger_id"], view=view))

    # Modal submissions ---------------------------------------------------------------

    async def on_reply_submitted(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        values = body["view"]["state"]["values"]
        text = (values.get("reply", {}).get("text", {}).get("value") or "").strip()
        if not text:
            await ack(response_action="errors", errors={"reply": self.copy("desk.empty_reply")})
            return
        await ack()
        meta = _metadata(body)
        result = await self.desk.reply(meta.get("reference", ""), actor_of(body), text)
        self.on_change()
        if not result.ok:
            await self._ephemeral(client, body, result.message, channel=meta.get("channel"))

    async def on_resolve_submitted(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        values = body["view"]["state"]["values"]
        selected = values.get("outcome", {}).get("value", {}).get("selected_option") or {}
        note = values.get("note", {}).get("text", {}).get("value")
        await ack()
        meta = _metadata(body)
        result = await self.desk.resolve(
            meta.get("reference", ""), actor_of(body), selected.get("value", ""), note
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
        now = self.clock()
        async with self.sessions() as session, session.begin():
            if not await convo_store.first_time(
                session, "slack:events", str(body.get("event_id")), now
            ):
                log.info("slack event redelivery ignored")
                return
            case = (
                await session.execute(select(Case).where(Case.slack_ts == thread_ts))
            ).scalar_one_or_none()
            if case is not None:
                desk_store.record(
                    session,
                    case.id,
                    actor=f"<@{event['user']}>",
                    action="note",
                    at=now,
                    detail=str(event.get("text", ""))[:3000],
                )

    async def on_error(self, error: Exception, body: Body) -> None:
        log.error("slack listener failed: %s", logs.kind(error), exc_info=error)

    # Plumbing ------------------------------------------------------------------------

    @staticmethod
    def _channel(body: Body) -> str:
        return str(
            (body.get("channel") or body.get("container") or {}).get("id")
            or body.get("container", {}).get("channel_id", "")
        )

    async def _ephemeral(
        self, client: AsyncWebClient, body: Body, text: str, channel: str | None = None
    ) -> None:
        channel = channel or self._channel(body)
        user = body["user"]["id"]
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


def _metadata(body: Body) -> dict[str, str]:
    try:
        data = json.loads(body["view"].get("private_metadata") or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


async def _case_by_reference(session: AsyncSession, reference: str) -> Case | None:
    query = select(Case).where(Case.reference == reference).options(selectinload(Case.categories))
    return (await session.execute(query)).scalar_one_or_none()


# Outbox senders ---------------------------------------------------------------------------


# Slack errors that no retry can fix: the row is given up (and logged) so the stream moves on.
PERMANENT = frozenset(
    {
        "invalid_blocks",
        "invalid_arguments",
        "msg_too_long",
        "no_text",
        "thread_not_found",
        "cant_update_message",
        "is_archived",
    }
)


def slack_failure(error: Exception) -> Retry | GiveUp:
    """429 waits its Retry-After; a request Slack can never accept is given up; else back off."""
    if isinstance(error, SlackApiError):
        response = error.response
        code = str(response.get("error", "") or "") if isinstance(response.data, dict) else ""
        if response.status_code == 429:
            after = response.headers.get("Retry-After") or response.headers.get("retry-after")
            try:
                return Retry("slack 429", after=float(after) if after else None)
            except ValueError:
                return Retry("slack 429")
        if code in PERMANENT:
            return GiveUp(f"slack {code}")
        return Retry(f"slack {response.status_code} {code}".strip())
    return Retry(logs.kind(error))


class SlackCards:
    """Posts a case's card (or updates it, once its ts is known) and its thread notes."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        channel_id: str,
        sessions: async_sessionmaker[AsyncSession],
        copy: Copy,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        oncall: str | None = None,
    ) -> None:
        self.client = client
        self.channel_id = channel_id
        self.oncall = oncall
        self.sessions = sessions
        self.copy = copy
        self.zone = zone
        self.clock = clock

    async def send_card(self, row: OutboxMessage) -> Result:
        async with self.sessions() as session:
            case = await session.get(Case, row.case_id, options=[selectinload(Case.categories)])
        if case is None:
            return Sent()
        blocks, text = case_card(case, self.copy, self.zone, self.clock())
        try:
            if case.slack_ts and case.slack_channel:
                try:
                    await self.client.chat_update(
                        channel=case.slack_channel, ts=case.slack_ts, blocks=blocks, text=text
                    )
                except SlackApiError as error:
                    if error.response.get("error") != "message_not_found":
                        raise
                    await self._forget_card(case.id)  # deleted in Slack: post it afresh
                    return Retry("card deleted in Slack", after=0)
                return Sent()
            # In hours the duty team is pinged; out of hours the card arrives silently
            # and waits for the morning digest.
            if case.in_hours:
                text = self.copy("timers.new_case_ping") + text
            response = await self.client.chat_postMessage(
                channel=self.channel_id, blocks=blocks, text=text
            )
        except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as error:
            return slack_failure(error)
        channel, ts = str(response["channel"]), str(response["ts"])

        async def remember(session: AsyncSession) -> None:
            stored = await session.get(Case, case.id)
            if stored is not None:
                stored.slack_channel, stored.slack_ts = channel, ts

        return Sent(then=remember)

    async def _forget_card(self, case_id: int) -> None:
        async with self.sessions() as session, session.begin():
            stored = await session.get(Case, case_id)
            if stored is not None:
                stored.slack_channel = stored.slack_ts = None

    async def send_thread(self, row: OutboxMessage) -> Result:
        async with self.sessions() as session:
            case = await session.get(Case, row.case_id)
        if case is None:
            return Sent()
        text = str((row.payload or {}).get("text", ""))[:3900]
        if not case.slack_ts:
            # The card came first in the stream and was given up: post in the channel,
            # named, rather than holding every later message back.
            text = f"{case.reference}: {text}"
        try:
            await self.client.chat_postMessage(
                channel=case.slack_channel or self.channel_id, thread_ts=case.slack_ts, text=text
            )
        except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as error:
            return slack_failure(error)
        return Sent()

    async def send_post(self, row: OutboxMessage) -> Result:
        """A plain message to the desk channel, or to the on-call group or channel."""
        payload = row.payload or {}
        text = str(payload.get("text", ""))[:3900]
        channel = self.channel_id
        if payload.get("target") == "oncall":
            if not self.oncall:
                return Sent()  # no on-call set: the urgent card itself is the flag
            if self.oncall.startswith("S"):
                text = f"<!subteam^{self.oncall}> {text}"
            else:
                channel = self.oncall
        try:
            await self.client.chat_postMessage(channel=channel, text=text)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
            return slack_failure(error)
        return Sent()


def card_link(case: Case) -> str:
    """A link to the case's card in Slack (or its bare reference before it is posted)."""
    if not (case.slack_channel and case.slack_ts):
        return case.reference
    archive = f"https://slack.com/archives/{case.slack_channel}/p{case.slack_ts.replace('.', '')}"
    return f"<{archive}|{case.reference}>"
