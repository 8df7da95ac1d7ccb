"""Sending to the desk from the outbox: case cards, thread notes, posts and the digest.

Cards and notes are never posted from a listener: they go through the outbox, so a
Slack outage delays them but loses nothing. Each row is sent here once it is due, and
:func:`slack_failure` says what a failed Web API call means for the row.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import logs
from bot.clock import Clock
from bot.services.outbox import GiveUp, Result, Retry, Sender, Sent
from bot.slack.blocks import (
    LINKED_ON_CARD,
    card_link,
    case_card,
    cut,
    digest,
    erased_card,
    note_text,
)
from bot.slack.home import LISTED, home_view
from flows.copy import Copy
from flows.hours import WorkingCalendar
from storage import cases as case_store
from storage import home as home_store
from storage import links as link_store
from storage import outbox, outbox_status
from storage.models import Case, OutboxMessage

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 3900  # well inside Slack's 4,000 characters for a message's text

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
        calendar: WorkingCalendar,
        clock: Clock,
        oncall: str | None = None,
    ) -> None:
        """``oncall``: a user group (``S…``) to mention, or a channel to post urgent
        out-of-hours alerts in; None sends none (the urgent card is the flag)."""
        self.client = client
        self.channel_id = channel_id
        self.oncall = oncall
        self.sessions = sessions
        self.copy = copy
        self.calendar = calendar
        self.clock = clock

    @property
    def senders(self) -> dict[str, Sender]:
        """What the outbox worker sends each kind of desk row with."""
        return {
            outbox.SLACK_CARD: self.send_card,
            outbox.SLACK_THREAD: self.send_thread,
            outbox.SLACK_POST: self.send_post,
            outbox.SLACK_DIGEST: self.send_digest,
            outbox.SLACK_HOME: self.send_home,
            outbox.SLACK_ERASED: self.send_erased,
        }

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
        """Post the case's card, or bring the posted one up to date."""
        case = await self._case(row)
        if case is None:
            return Sent()  # erased meanwhile: nothing left to show
        if case.erased_at is not None:
            if not (case.slack_ts and case.slack_channel):
                return Sent()  # never shown: an erased case is not posted now
            blocks, text = erased_card(case, self.copy, self.calendar, self._why("retention"))
        else:
            async with self.sessions() as session:
                linked = await link_store.linked(session, case.id, limit=LINKED_ON_CARD + 50)
            blocks, text = case_card(case, self.copy, self.calendar, self.clock(), linked)
        if case.slack_ts and case.slack_channel:
            try:  # an update is the same however often it is made
                await self.client.chat_update(
                    channel=case.slack_channel, ts=case.slack_ts, blocks=blocks, text=text
                )
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    return slack_failure(error)
                async with self.sessions() as session, session.begin():
                    await case_store.forget_card(session, case.id)  # deleted: post it afresh
                return Retry("card deleted in Slack", after=0)
            except SLACK_ERRORS as error:
                return slack_failure(error)
            return Sent(then=self._refresh_home)
        # In hours the duty team is pinged; out of hours the card arrives silently
        # and waits for the morning digest.
        if case.in_hours:
            text = self.copy("timers.new_case_ping") + text
        posted = await self._post(row, self.channel_id, blocks=blocks, text=text)
        if not isinstance(posted, tuple):
            return posted
        channel, ts = posted

        async def remember(session: AsyncSession) -> None:
            await case_store.remember_card(session, case.id, channel, ts)
            await self._refresh_home(session)

        return Sent(then=remember)

    async def _refresh_home(self, session: AsyncSession) -> None:
        """A case changed (its card did): the App Home queues follow."""
        await home_store.refresh(session, self.clock())

    async def send_home(self, row: OutboxMessage) -> Result:
        """Publish the App Home queue for one practitioner, or for everyone who opened it
        (worded from the database now, so one refresh covers every change before it)."""
        user = (row.payload or {}).get("user")
        async with self.sessions() as session:
            if not await outbox_status.still_pending(session, row.id):
                return Sent()
            users = [str(user)] if isinstance(user, str) else await home_store.viewers(session)
        for viewer in users:
            now = self.clock()
            async with self.sessions() as session:
                queue = await home_store.queue(session, now, f"<@{viewer}>", LISTED)
            view = home_view(queue, self.copy, self.calendar, now)
            try:
                await self.client.views_publish(user_id=viewer, view=view)
            except SlackApiError as error:
                if error.response.get("error") in ("user_not_found", "not_allowed_token_type"):
                    continue  # gone from the workspace: the others still get theirs
                return slack_failure(error)
            except SLACK_ERRORS as error:
                return slack_failure(error)
        return Sent()

    async def _case(self, row: OutboxMessage) -> Case | None:
        if row.case_id is None:
            return None
        async with self.sessions() as session:
            return await case_store.case_by_id(session, row.case_id)

    def _why(self, by: object) -> str:
        key = {"request": "why_request", "enquirer": "why_enquirer"}.get(str(by), "why_retention")
        return self.copy(f"data_protection.{key}")

    async def send_erased(self, row: OutboxMessage) -> Result:
        """The case was erased: its card says so, and so does every post the bot made in its
        thread (practitioners' own messages are theirs to delete: Slack lets no app edit them).

        Every call here is an update, the same however often it is made, so a retry after
        a failure half-way simply does it all again.
        """
        case = await self._case(row)
        if case is None or not (case.slack_ts and case.slack_channel):
            return Sent()  # never posted: nothing in Slack to change
        why = self._why((row.payload or {}).get("by"))
        blocks, text = erased_card(case, self.copy, self.calendar, why)
        erased_post = self.copy("data_protection.erased_post")
        channel, ts = case.slack_channel, case.slack_ts
        try:
            await self.client.chat_update(channel=channel, ts=ts, blocks=blocks, text=text)
            cursor: str | None = None
            while True:
                page = await self.client.conversations_replies(
                    channel=channel, ts=ts, include_all_metadata=True, limit=200, cursor=cursor
                )
                for message in page.get("messages") or []:
                    ours = (message.get("metadata") or {}).get("event_type") == MARKER
                    if ours and message.get("ts") != ts and message.get("text") != erased_post:
                        await self.client.chat_update(
                            channel=channel, ts=str(message["ts"]), text=erased_post
                        )
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return Sent()
        except SlackApiError as error:
            if error.response.get("error") in ("message_not_found", "thread_not_found"):
                return Sent()  # the card was deleted in Slack: nothing left to say it on
            return slack_failure(error)
        except SLACK_ERRORS as error:
            return slack_failure(error)

    async def send_thread(self, row: OutboxMessage) -> Result:
        """A desk note in the case's thread (a claim, a reply sent, a reminder...)."""
        case = await self._case(row)
        if case is None:
            return Sent()
        cards = await self._cards(row.payload or {})
        text = cut(note_text(row.payload or {}, self.copy, cards), MESSAGE_LIMIT)
        if not case.slack_ts:
            # The card came first in the stream and was given up: post in the channel,
            # named, rather than holding every later message back.
            text = f"{case.reference}: {text}"
        channel = case.slack_channel or self.channel_id
        return await self._posted(row, channel, case.slack_ts, text=text)

    async def _cards(self, payload: dict[str, Any]) -> dict[str, str]:
        """Links to the cards a note names (``{"case": id}``), looked up as it is sent,
        when those cards are posted."""
        named = payload.get("cases")
        if not isinstance(named, dict):
            return {}
        ids = {str(k): v for k, v in named.items() if isinstance(v, int)}
        async with self.sessions() as session:
            found = {c.id: c for c in await case_store.cases_by_ids(session, list(ids.values()))}
        return {name: card_link(found[i]) if i in found else "?" for name, i in ids.items()}

    async def send_post(self, row: OutboxMessage) -> Result:
        """A plain message to the desk channel, or to the on-call group or channel."""
        payload = row.payload or {}
        text = cut(note_text(payload, self.copy), MESSAGE_LIMIT)
        channel = self.channel_id
        if payload.get("target") == "oncall":
            if not self.oncall:
                return Sent()  # no on-call set: the urgent card itself is the flag
            if self.oncall.startswith("S"):
                text = f"<!subteam^{self.oncall}> {text}"
            else:
                channel = self.oncall
        return await self._posted(row, channel, text=text)

    async def send_digest(self, row: OutboxMessage) -> Result:
        """The morning digest of what arrived out of hours, worded as it is sent."""
        ids = [int(i) for i in (row.payload or {}).get("cases", []) if isinstance(i, int)]
        async with self.sessions() as session:
            cases = await case_store.cases_by_ids(session, ids)
        if not cases:
            return Sent()  # all erased meanwhile
        text = cut(digest(cases, self.copy, self.calendar), MESSAGE_LIMIT)
        return await self._posted(row, self.channel_id, text=text)

    async def _posted(
        self, row: OutboxMessage, channel: str, thread_ts: str | None = None, **content: Any
    ) -> Result:
        posted = await self._post(row, channel, thread_ts, **content)
        return posted if not isinstance(posted, tuple) else Sent()
