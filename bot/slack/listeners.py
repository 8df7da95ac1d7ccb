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
from bot.services.desk import DeskService
from bot.services.outbox import GiveUp, Result, Retry, Sent
from bot.slack.blocks import case_card, details_modal, reply_modal, resolve_modal
from bot.text import for_slack, normalise
from flows.copy import Copy
from storage import conversations as convo_store
from storage import desk as desk_store
from storage.models import Case, OutboxMessage

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
        reference, actor = button_value(body), actor_of(body)
        if reference is None:
            return
        result = await self.desk.claim(reference, actor)
        self.on_change()
        if result.ok:
            contact = await self.desk.contact_details(reference, escape=for_slack)
            text = f"{result.message}\n{contact}" if result.repeated else contact
        else:
            text = result.message
        await self._ephemeral(client, body, text)

    async def on_release(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference = button_value(body)
        if reference is None:
            return
        result = await self.desk.release(reference, actor_of(body))
        self.on_change()
        await self._ephemeral(client, body, result.message)

    async def on_reply_button(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference = button_value(body)
        if reference is None:
            return
        refusal = await self.desk.check(reference, actor_of(body))
        if refusal:
            return await self._ephemeral(client, body, refusal)
        view = reply_modal(self.copy, reference, self._channel(body))
        await self._quietly(client.views_open(trigger_id=str(body.get("trigger_id")), view=view))

    async def on_resolve_button(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference = button_value(body)
        if reference is None:
            return
        refusal = await self.desk.check(reference, actor_of(body))
        if refusal:
            return await self._ephemeral(client, body, refusal)
        view = resolve_modal(self.copy, reference, self._channel(body), self.desk.outcomes)
        await self._quietly(client.views_open(trigger_id=str(body.get("trigger_id")), view=view))

    async def on_details(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        await ack()
        reference, actor = button_value(body), actor_of(body)
        if reference is None:
            return
        async with self.sessions() as session:
            case = await _case_by_reference(session, reference)
        if case is None:
            return
        contact = None
        if case.claimed_by == actor:
            contact = await self.desk.contact_details(reference, escape=for_slack)
        view = details_modal(self.copy, case, contact)
        await self._quietly(client.views_open(trigger_id=str(body.get("trigger_id")), view=view))

    # Modal submissions ---------------------------------------------------------------

    async def on_reply_submitted(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        values = view_values(body)
        text = normalise(str(_input(values, "reply", "text", "value") or "")).strip()
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
        values = view_values(body)
        selected = _input(values, "outcome", "value", "selected_option")
        outcome = str(selected.get("value") or "") if isinstance(selected, dict) else ""
        note = _input(values, "note", "text", "value")
        await ack()
        meta = _metadata(body)
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
        now = self.clock()
        async with self.sessions() as session, session.begin():
            if not await convo_store.first_time(
                session, "slack:events", str(body.get("event_id")), now
            ):
                log.info("slack event redelivery ignored")
                return
            # A message with no text (a file, say) carries no note: nothing to record.
            text = normalise(str(event.get("text") or "")).strip()
            case = (
                await session.execute(select(Case).where(Case.slack_ts == thread_ts))
            ).scalar_one_or_none()
            if case is not None and text:
                desk_store.record(
                    session,
                    case.id,
                    actor=f"<@{event['user']}>",
                    action="note",
                    at=now,
                    detail=text[:3000],
                )

    async def on_error(self, error: Exception, body: Body) -> None:
        log.error("slack listener failed: %s", logs.kind(error), exc_info=error)

    # Plumbing ------------------------------------------------------------------------

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
MARKER = "helpline_outbox"
"""The metadata event type on every message the outbox posts (see :meth:`SlackCards.marker`)."""
LOOKUP_PAGES = 5  # 5 x 200 of the newest messages: far more than arrive while a row waits


def slack_failure(error: Exception, *, doubt: bool = False) -> Retry | GiveUp:
    """429 waits its Retry-After; a request Slack can never accept is given up; else back off.

    ``doubt``: an earlier attempt may have posted and nothing has shown otherwise. It stays
    with the row, and so does this attempt's own doubt: a timeout, a dropped connection or
    a 5xx may have posted the message all the same.
    """
    if isinstance(error, SlackApiError):
        response = error.response
        code = str(response.get("error", "") or "") if isinstance(response.data, dict) else ""
        if response.status_code == 429:
            after = response.headers.get("Retry-After") or response.headers.get("retry-after")
            try:
                seconds = float(after) if after else None
            except ValueError:
                seconds = None
            return Retry("slack 429", after=seconds, rate_limited=True, maybe_sent=doubt)
        if code in PERMANENT:
            return GiveUp(f"slack {code}")
        uncertain = response.status_code >= 500
        return Retry(f"slack {response.status_code} {code}".strip(), maybe_sent=doubt or uncertain)
    refused = isinstance(error, aiohttp.ClientConnectorError)  # never reached Slack
    return Retry(logs.kind(error), maybe_sent=doubt or not refused)


SLACK_ERRORS = (TimeoutError, SlackApiError, aiohttp.ClientError, OSError)


class SlackCards:
    """Posts a case's card (or updates it, once its ts is known) and its thread notes.

    Every message posted carries the row's :meth:`marker` in its metadata. A row that may
    have been posted already (its last attempt timed out, or the process sending it died)
    is looked for first, so it is never posted twice.
    """

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

    @staticmethod
    def marker(row: OutboxMessage) -> dict[str, Any]:
        """Which outbox row a message came from (its id and when it was written)."""
        return {
            "event_type": MARKER,
            "event_payload": {"row": f"{row.id}@{row.created_at.isoformat()}"},
        }

    async def posted(
        self, row: OutboxMessage, channel: str, thread_ts: str | None = None
    ) -> str | None:
        """The ts of a message posted earlier for ``row`` (in the channel or the thread)."""
        wanted = self.marker(row)["event_payload"]["row"]
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            if thread_ts:
                response = await self.client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            else:
                response = await self.client.conversations_history(
                    channel=channel, include_all_metadata=True, limit=200, cursor=cursor
                )
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == MARKER and payload.get("row") == wanted:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None

    async def _post(
        self, row: OutboxMessage, channel: str, thread_ts: str | None = None, **content: Any
    ) -> tuple[str, str] | Retry | GiveUp:
        """Post once: ``(channel, ts)`` of the message (an earlier one if found), or why not."""
        doubt = row.maybe_sent
        try:
            if doubt:
                found = await self.posted(row, channel, thread_ts)
                if found:
                    log.info("outbox row %d was posted before: not posting it again", row.id)
                    return channel, found
                doubt = False  # looked, and it is not there
            response = await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, metadata=self.marker(row), **content
            )
        except SLACK_ERRORS as error:
            return slack_failure(error, doubt=doubt)
        return str(response["channel"]), str(response["ts"])

    async def send_card(self, row: OutboxMessage) -> Result:
        async with self.sessions() as session:
            case = await session.get(Case, row.case_id, options=[selectinload(Case.categories)])
        if case is None:
            return Sent()
        blocks, text = case_card(case, self.copy, self.zone, self.clock())
        if case.slack_ts and case.slack_channel:
            try:  # an update is the same however often it is made
                await self.client.chat_update(
                    channel=case.slack_channel, ts=case.slack_ts, blocks=blocks, text=text
                )
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    return slack_failure(error)
                await self._forget_card(case.id)  # deleted in Slack: post it afresh
                return Retry("card deleted in Slack", after=0)
            except SLACK_ERRORS as error:
                return slack_failure(error)
            return Sent()
        # In hours the duty team is pinged; out of hours the card arrives silently
        # and waits for the morning digest.
        if case.in_hours:
            text = self.copy("timers.new_case_ping") + text
        posted = await self._post(row, self.channel_id, blocks=blocks, text=text)
        if not isinstance(posted, tuple):
            return posted
        channel, ts = posted

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
        channel = case.slack_channel or self.channel_id
        posted = await self._post(row, channel, case.slack_ts, text=text)
        return posted if not isinstance(posted, tuple) else Sent()

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
        posted = await self._post(row, channel, text=text)
        return posted if not isinstance(posted, tuple) else Sent()


def card_link(case: Case) -> str:
    """A link to the case's card in Slack (or its bare reference before it is posted)."""
    if not (case.slack_channel and case.slack_ts):
        return case.reference
    archive = f"https://slack.com/archives/{case.slack_channel}/p{case.slack_ts.replace('.', '')}"
    return f"<{archive}|{case.reference}>"
