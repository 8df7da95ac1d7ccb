"""The desk's App Home queue end to end: real Bolt over signed HTTP, views.publish to the
fake Slack, kept current as cases arrive, are claimed and fall overdue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.fakes.slack_api import app_home_opened_event, event_body, home_action_body, post_signed
from tests.support.clock import Clock
from tests.support.slack_desk import DESK, ENQUIRER, SECRET, Desk, desk
from tests.support.telegram import complete_enquiry

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


def home_text(d: Desk, user: str) -> str:
    return json.dumps(d.slack.homes.get(user, {}).get("blocks", []), ensure_ascii=False)


async def open_home(d: Desk, user: str, event_id: str) -> int:
    body = event_body(app_home_opened_event(user), event_id=event_id)
    return (await post_signed(d.events_url, body, SECRET)).status


async def test_slack_home_shows_the_queue_and_follows_the_cases(database_url: str) -> None:
    start = datetime(2026, 11, 30, 11, 0, tzinfo=ZoneInfo("Europe/London"))  # Monday, open
    clock = Clock(start)
    async with desk(database_url, clock) as d:
        assert await open_home(d, "U1", "Ev1") == 200
        await d.slack.wait_for(lambda s: "U1" in s.homes)
        assert "Nothing is waiting to be claimed." in home_text(d, "U1")
        assert "You hold no open cases." in home_text(d, "U1")

        texts = await complete_enquiry(d.tg, ENQUIRER)
        reference = next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
        await d.slack.wait_for(lambda s: reference in home_text(d, "U1"), timeout=10)
        card = d.cards()[0]
        shown = d.slack.homes["U1"]["blocks"]
        actions = next(b for b in shown if b["type"] == "actions")
        claim, opened = actions["elements"]
        assert claim["action_id"] == "claim" and claim["value"] == reference
        assert opened["url"] == f"https://slack.com/archives/{DESK}/p{card['ts'].replace('.', '')}"
        assert "Waiting to be claimed* (1)" in home_text(d, "U1")
        assert "Waiting 0 min" in home_text(d, "U1")

        # A second practitioner opens it too; the event redelivered changes nothing.
        assert await open_home(d, "U2", "Ev2") == 200
        await d.slack.wait_for(lambda s: reference in home_text(d, "U2"))
        published = len(d.slack.calls_of("views.publish"))
        assert await open_home(d, "U2", "Ev2") == 200

        # Claimed from the Home: the card changes, and both queues follow.
        clock.at = start + timedelta(minutes=50)
        view_id = d.slack.homes["U1"]["id"]
        body = home_action_body("claim", reference, user_id="U1", user_name="sam", view_id=view_id)
        assert (await post_signed(d.events_url, body, SECRET)).status == 200
        await d.slack.wait_for(lambda s: "Your cases* (1)" in home_text(d, "U1"), timeout=10)
        assert "Waiting to be claimed* (0)" in home_text(d, "U1")
        assert "Held by <@U1>" in home_text(d, "U1")
        await d.slack.wait_for(lambda s: "Waiting to be claimed* (0)" in home_text(d, "U2"))
        assert "You hold no open cases." in home_text(d, "U2")
        await d.slack.wait_for(
            lambda s: any("Contact details" in m.get("text", "") for m in s.messages("U1"))
        )
        assert len(d.slack.calls_of("views.publish")) > published

        # Past its reply time, it is listed as overdue (the timers update the card).
        clock.at = start + timedelta(hours=3, minutes=10)
        await d.slack.wait_for(lambda s: "Overdue* (1)" in home_text(d, "U2"), timeout=10)
        assert reference in home_text(d, "U2").split("Overdue")[1]

    pushed_twice = [c for c in d.slack.calls_of("views.publish") if c.params.get("user_id") == "U2"]
    assert len(pushed_twice) >= 2


async def test_slack_home_only_the_home_tab_gets_the_queue(database_url: str) -> None:
    async with desk(database_url) as d:
        body = event_body(app_home_opened_event("U3", tab="messages"), event_id="Ev9")
        assert (await post_signed(d.events_url, body, SECRET)).status == 200
        await complete_enquiry(d.tg, ENQUIRER)
        await d.slack.wait_for(lambda s: s.messages(DESK))
        assert await open_home(d, "U4", "Ev10") == 200
        await d.slack.wait_for(lambda s: "U4" in s.homes)
        assert "U3" not in d.slack.homes  # the Messages tab is not the queue
