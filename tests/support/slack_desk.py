"""The service running with its Slack desk on the fake Slack and enquirers on the fake
Telegram: what a practitioner does (press a button, submit a modal) as signed requests."""

from __future__ import annotations

import json
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


@dataclass
class Desk:
    tg: FakeTelegram
    slack: FakeSlack
    settings: Settings

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}/slack/events"

    def cards(self) -> list[dict[str, Any]]:
        return self.slack.messages(DESK)

    async def press(self, action: str, reference: str, user: str = "U1", name: str = "sam") -> int:
        card = next(c for c in self.cards() if reference in json.dumps(c.get("blocks")))
        body = block_action_body(
            action, reference, user_id=user, user_name=name, channel_id=DESK, message_ts=card["ts"]
        )
        return (await post_signed(self.events_url, body, SECRET)).status

    async def submit(
        self, callback: str, values: dict[str, Any], reference: str, user: str = "U1"
    ) -> int:
        meta = json.dumps({"reference": reference, "channel": DESK})
        body = view_submission_body(callback, values, meta, user_id=user, user_name="sam")
        return (await post_signed(self.events_url, body, SECRET)).status

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
    database_url: str, clock: Callable[[], datetime] | None = None, **changes: Any
) -> AsyncIterator[Desk]:
    async with FakeTelegram() as tg, FakeSlack() as slack:
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
            yield Desk(tg, slack, settings)


async def submitted_case(d: Desk) -> str:
    texts = await complete_enquiry(d.tg, ENQUIRER)
    reference = next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
    await d.slack.wait_for(lambda s: any(reference in json.dumps(c) for c in s.messages(DESK)))
    return reference
