"""The service running with its Slack desk on the fake Slack and enquirers on the fake
Telegram: what a practitioner does (press a button, submit a modal) as signed requests."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.settings import Settings
from storage import db
from storage.models import Case, CaseEvent
from tests.fakes.slack_api import (
    FakeSlack,
    block_action_body,
    post_signed,
    view_submission_body,
)
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram import complete_enquiry, running, settings_for

SECRET = "slack-signing-secret"
DESK = "C0DESK"
ENQUIRER = 31337


def card_title(card: dict[str, Any]) -> str:
    """A card's header (its own case; other cases can be named further down)."""
    return str(card["blocks"][0]["text"]["text"])


def submission(callback: str, values: dict[str, Any], reference: str, user: str = "U1") -> str:
    """A practitioner submitting a case's form (``callback``), as Slack posts it."""
    meta = json.dumps({"reference": reference, "channel": DESK})
    return view_submission_body(callback, values, meta, user_id=user, user_name="sam")


def reply_values(text: str) -> dict[str, Any]:
    """The reply form filled in with ``text``, in Slack's ``view.state.values`` shape."""
    return {"reply": {"text": {"type": "plain_text_input", "value": text}}}


@dataclass
class Desk:
    """The running desk: the fakes, the settings, and how Slack reaches the service."""

    tg: FakeTelegram
    slack: FakeSlack
    settings: Settings
    transport: str = "http"

    async def deliver(self, body: str, *, retry: int = 0) -> tuple[int, str]:
        """Slack sending a request as built by the fake's body builders: over HTTP (status,
        body), or as a Socket Mode envelope (200 once acknowledged, the ack's payload)."""
        if self.transport == "http":
            response = await post_signed(self.events_url, body, SECRET, retry_num=retry or None)
            return response.status, response.text
        if body.startswith("payload="):
            payload = json.loads(urllib.parse.parse_qs(body)["payload"][0])
            envelope = await self.slack.send_envelope(
                "interactive", payload, accepts_response_payload=True
            )
        else:
            envelope = await self.slack.send_envelope(
                "events_api", json.loads(body), retry_attempt=retry
            )
        ack = await self.slack.wait_for_ack(envelope)
        return 200, json.dumps(ack.get("payload") or {})

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}/slack/events"

    def cards(self) -> list[dict[str, Any]]:
        return self.slack.messages(DESK)

    async def press(self, action: str, reference: str, user: str = "U1", name: str = "sam") -> int:
        card = next(c for c in self.cards() if reference in card_title(c))
        body = block_action_body(
            action, reference, user_id=user, user_name=name, channel_id=DESK, message_ts=card["ts"]
        )
        return (await self.deliver(body))[0]

    async def submit(
        self, callback: str, values: dict[str, Any], reference: str, user: str = "U1"
    ) -> int:
        return (await self.deliver(submission(callback, values, reference, user)))[0]

    async def card_remembered(self, reference: str, timeout: float = 10.0) -> None:
        """Until the service has stored where the case's card is: Slack has answered the
        post, so a button pressed on the card now finds its case."""
        engine = db.create_engine(self.settings.database_url)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                async with db.session_factory(engine)() as session:
                    ts = await session.scalar(
                        select(Case.slack_ts).where(Case.reference == reference)
                    )
                if ts:
                    return
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"the card of {reference} was never stored")
                await asyncio.sleep(0.02)  # the database announces nothing: look again
        finally:
            await engine.dispose()

    async def case(self) -> Case:
        engine = db.create_engine(self.settings.database_url)
        async with db.session_factory(engine)() as session:
            case = (await session.execute(select(Case))).scalars().one()
        await engine.dispose()
        return case

    async def events(self) -> list[tuple[str, str]]:
        engine = db.create_engine(self.settings.database_url)
        async with db.session_factory(engine)() as session:
            rows = (await session.execute(select(CaseEvent).order_by(CaseEvent.id))).scalars().all()
        await engine.dispose()
        return [(e.actor, e.action) for e in rows]


@asynccontextmanager
async def desk(
    database_url: str,
    clock: Callable[[], datetime] | None = None,
    *,
    transport: str = "http",
    **changes: Any,
) -> AsyncIterator[Desk]:
    """The service with its desk on the fakes; ``transport`` "socket" for Socket Mode."""
    async with FakeTelegram() as tg, FakeSlack() as slack:
        if transport == "socket":
            changes["slack_app_token"] = slack.app_token
        settings = settings_for(
            tg,
            database_url,
            slack_bot_token=slack.token,
            slack_signing_secret=SECRET,
            slack_channel_id=DESK,
            slack_api_url=slack.base_url,
            outbox_poll_seconds=0.05,
            outbox_backoff_seconds=0.05,
            timer_seconds=0.05,
            slack_oncall="S0ONCALL",
            **changes,
        )
        async with running(settings, tg, clock):
            if transport == "socket":
                await slack.wait_for(lambda s: bool(s.sockets), timeout=10, description="a socket")
            yield Desk(tg, slack, settings, transport)


async def submitted_case(d: Desk) -> str:
    texts = await complete_enquiry(d.tg, ENQUIRER)
    reference = next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
    await d.slack.wait_for(lambda s: any(reference in json.dumps(c) for c in s.messages(DESK)))
    await d.card_remembered(reference)
    return reference
