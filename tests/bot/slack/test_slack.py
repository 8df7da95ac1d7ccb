"""The Slack desk end to end: real Bolt and slack_sdk against the fake Slack Web API,
with enquirers on the fake Telegram server, and signed requests to /slack/events."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from storage import db
from storage.models import Case
from tests.fakes.slack_api import (
    block_action_body,
    event_body,
    post_signed,
    view_submission_body,
)
from tests.support.clock import Clock
from tests.support.slack_desk import (
    DESK,
    ENQUIRER,
    SECRET,
    card_title,
    desk,
    reply_values,
    submitted_case,
)
from tests.support.telegram import complete_enquiry, say

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


async def test_slack_case_from_telegram_is_claimed_replied_to_and_resolved(
    database_url: str,
    transport: str,
) -> None:
    async with desk(database_url, transport=transport) as d:
        reference = await submitted_case(d)
        (card,) = d.cards()
        blob = json.dumps(card["blocks"])
        assert "Someone set up an account pretending to be the school." in blob
        assert "TikTok" in blob and "Claim" in blob

        assert await d.press("claim", reference) == 200
        await d.slack.wait_for(lambda s: any("Contact details" in e["text"] for e in s.ephemerals))
        await d.slack.wait_for(lambda s: "Claimed by <@U1>" in json.dumps(s.messages(DESK)[0]))
        await d.tg.wait_for_text(ENQUIRER, "picked up your enquiry")

        assert await d.press("reply", reference) == 200
        await d.slack.wait_for(lambda s: s.last_view is not None)
        view = d.slack.last_view
        assert view is not None and view["callback_id"] == "reply_modal"
        values = reply_values("Please send the link.")
        assert await d.submit("reply_modal", values, reference) == 200
        await d.tg.wait_for_text(ENQUIRER, "Please send the link.")
        await d.slack.wait_for(
            lambda s: any(
                "Sent to the enquirer" in m.get("text", "") for m in s.thread(DESK, card["ts"])
            )
        )

        await say(d.tg, ENQUIRER, "Here it is: https://tiktok.com/@other")
        await d.slack.wait_for(
            lambda s: any(
                "The enquirer wrote" in m.get("text", "") for m in s.thread(DESK, card["ts"])
            )
        )

        outcome = {
            "outcome": {
                "value": {"type": "static_select", "selected_option": {"value": "referred"}}
            },
            "note": {"text": {"type": "plain_text_input", "value": "Reported via TikTok contact."}},
        }
        assert await d.submit("resolve_modal", outcome, reference) == 200
        await d.tg.wait_for_text(ENQUIRER, "has now been closed")
        await d.slack.wait_for(lambda s: "Resolved by <@U1>" in json.dumps(s.messages(DESK)[0]))
        case = await d.case()
        assert case.status == "resolved"
        assert case.outcome == "Referred to platform for takedown"
        assert case.referred_to_platform is True
        assert [a for _, a in await d.events()] == ["claim", "reply", "resolve"]
        assert len(d.cards()) == 1, "updates edit the card, never post a second one"


async def test_slack_card_never_shows_contact_details(database_url: str) -> None:
    async with desk(database_url) as d:
        await say(d.tg, ENQUIRER, "/start")
        for text in (
            "police",
            "not a school",
            "london",
            "a website",
            "cyberbullying",
            "Abuse site",
            "Details here.",
            "done",
            "no links",
            "no",
            "no",
            "email",
            "officer@police.example.uk",
            "PC Jo Bloggs",
        ):
            await say(d.tg, ENQUIRER, text)
        await say(d.tg, ENQUIRER, "send")
        await d.slack.wait_for(lambda s: s.messages(DESK))
        blob = json.dumps(d.cards())
        assert "officer@police.example.uk" not in blob and "Jo Bloggs" not in blob


async def test_slack_second_claimer_is_told_who_holds_it(database_url: str, transport: str) -> None:
    async with desk(database_url, transport=transport) as d:
        reference = await submitted_case(d)
        await d.press("claim", reference, user="U1")
        await d.press("claim", reference, user="U2", name="kim")
        await d.slack.wait_for(
            lambda s: any("already claimed by <@U1>" in e["text"] for e in s.ephemerals)
        )
        await d.press("resolve", reference, user="U2", name="kim")
        await d.slack.wait_for(
            lambda s: any("only they can do that" in e["text"] for e in s.ephemerals)
        )
        assert (await d.case()).claimed_by == "<@U1>"


async def test_slack_release_puts_the_case_back(database_url: str, transport: str) -> None:
    async with desk(database_url, transport=transport) as d:
        reference = await submitted_case(d)
        await d.press("claim", reference)
        await d.slack.wait_for(lambda s: "Claimed by" in json.dumps(s.messages(DESK)[0]))
        await d.press("release", reference)
        await d.slack.wait_for(lambda s: "Waiting to be claimed" in json.dumps(s.messages(DESK)[0]))
        assert (await d.case()).claimed_by is None


async def test_slack_forged_or_stale_signatures_are_refused(database_url: str) -> None:
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        body = block_action_body(
            "claim", reference, user_id="U9", user_name="x", channel_id=DESK, message_ts="1"
        )
        assert (await post_signed(d.events_url, body, "wrong-secret")).status == 401
        old = int(asyncio.get_running_loop().time()) - 3600
        assert (await post_signed(d.events_url, body, SECRET, timestamp=old)).status == 401
        await asyncio.sleep(0.3)
        assert (await d.case()).claimed_by is None
        assert await d.events() == []


async def test_slack_event_retry_is_acted_on_once(database_url: str, transport: str) -> None:
    async with desk(database_url, transport=transport) as d:
        await submitted_case(d)
        card_ts = d.cards()[0]["ts"]
        event = {
            "type": "message",
            "user": "U1",
            "text": "Internal note: called the school.",
            "channel": DESK,
            "ts": "1800000000.000001",
            "thread_ts": card_ts,
        }
        body = event_body(event, event_id="Ev123")
        assert (await d.deliver(body))[0] == 200
        assert (await d.deliver(body, retry=1))[0] == 200
        for _ in range(200):  # both deliveries are handled after their acks
            if await d.events():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a second note, were the retry acted on, would be there
        assert await d.events() == [("<@U1>", "note")]
        # Internal notes never reach the enquirer.
        assert not any("Internal note" in t for t in d.tg.sent_texts(ENQUIRER))


async def test_slack_outage_delays_cards_but_loses_none_and_keeps_order(database_url: str) -> None:
    async with desk(database_url) as d:
        d.slack.go_down()
        references = []
        for chat in (101, 102, 103):
            texts = await complete_enquiry(d.tg, chat)
            references.append(
                next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
            )
        await asyncio.sleep(0.5)
        assert d.slack.messages(DESK) == []
        assert d.slack.refused, "the worker kept trying while Slack was down"
        d.slack.come_back()
        await d.slack.wait_for(lambda s: len(s.messages(DESK)) == 3, timeout=15)
        await asyncio.sleep(0.3)
        posted = [next(r for r in references if r in card_title(m)) for m in d.slack.messages(DESK)]
        assert posted == references


async def test_slack_429_retry_after_is_honoured(database_url: str) -> None:
    async with desk(database_url) as d:
        d.slack.fail_next("chat.postMessage", status=429, retry_after=1)
        await submitted_case(d)
        statuses = [c.status for c in d.slack.calls_of("chat.postMessage")]
        assert statuses[0] == 429 and len(d.cards()) == 1


async def test_slack_server_errors_are_retried(database_url: str) -> None:
    async with desk(database_url) as d:
        d.slack.fail_next("chat.postMessage", status=500, times=2)
        await submitted_case(d)
        assert len(d.cards()) == 1


async def test_slack_out_of_hours_cards_are_silent_and_the_morning_digest_lists_them(
    database_url: str,
) -> None:
    london = ZoneInfo("Europe/London")
    clock = Clock(datetime(2026, 11, 28, 21, 0, tzinfo=london))  # Saturday night
    async with desk(database_url, clock) as d:
        texts = await complete_enquiry(d.tg, ENQUIRER)
        assert any("closed just now" in t for t in texts)
        await d.slack.wait_for(lambda s: s.messages(DESK))
        assert "<!here>" not in d.cards()[0]["text"]
        clock.at = datetime(2026, 11, 30, 10, 0, tzinfo=london)  # Monday opening
        await d.slack.wait_for(
            lambda s: any(
                "Since the helpline closed" in m.get("text", "") for m in s.messages(DESK)
            )
        )
        digest = next(
            m for m in d.slack.messages(DESK) if "Since the helpline closed" in m.get("text", "")
        )
        assert "1 enquiry arrived" in digest["text"]
        assert f"/archives/{DESK}/p" in digest["text"]


async def test_slack_in_hours_card_pings_the_duty_team(database_url: str) -> None:
    clock = Clock(datetime(2026, 11, 30, 11, 0, tzinfo=ZoneInfo("Europe/London")))
    async with desk(database_url, clock) as d:
        await submitted_case(d)
        assert d.cards()[0]["text"].startswith("<!here>")


async def test_slack_urgent_out_of_hours_case_pages_on_call(database_url: str) -> None:
    clock = Clock(datetime(2026, 11, 28, 23, 0, tzinfo=ZoneInfo("Europe/London")))
    async with desk(database_url, clock) as d:
        await say(d.tg, ENQUIRER, "/start")
        for text in (
            "police",
            "not a school",
            "london",
            "a website",
            "grooming",
            "Man messaging pupils",
            "He is asking a year 7 pupil to meet tonight.",
            "done",
            "no links",
            "no",
            "yes",
            "this chat",
            "skip",
            "send",
        ):
            await say(d.tg, ENQUIRER, text)
        await d.slack.wait_for(
            lambda s: any("<!subteam^S0ONCALL>" in m.get("text", "") for m in s.messages(DESK))
        )


async def test_slack_reply_that_cannot_be_delivered_is_marked_in_the_thread(
    database_url: str,
) -> None:
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        card_ts = d.cards()[0]["ts"]
        d.tg.fail_next("sendMessage", status=403, times=5)  # the enquirer blocked the bot
        values = reply_values("Are you still there?")
        assert await d.submit("reply_modal", values, reference) == 200
        await d.slack.wait_for(
            lambda s: any("Could not deliver" in m.get("text", "") for m in s.thread(DESK, card_ts))
        )
        note = next(
            m["text"]
            for m in d.slack.thread(DESK, card_ts)
            if "Could not deliver" in m.get("text", "")
        )
        assert "blocked the bot" in note and "Are you still there?" in note


async def test_slack_empty_reply_is_refused_in_the_form(database_url: str, transport: str) -> None:
    async with desk(database_url, transport=transport) as d:
        reference = await submitted_case(d)
        meta = json.dumps({"reference": reference, "channel": DESK})
        body = view_submission_body(
            "reply_modal",
            reply_values("  "),
            meta,
            user_id="U1",
            user_name="sam",
        )
        status, answer = await d.deliver(body)
        assert status == 200 and '"response_action":"errors"' in answer.replace(" ", "")


async def test_slack_card_deleted_in_slack_is_posted_again(database_url: str) -> None:
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        engine = db.create_engine(d.settings.database_url)
        async with db.session_factory(engine)() as session, session.begin():
            case = (await session.execute(select(Case))).scalar_one()
            case.slack_ts = "1699999999.000001"  # a card that no longer exists
        await engine.dispose()
        await d.press("claim", reference)
        await d.slack.wait_for(lambda s: len(s.messages(DESK)) == 2, timeout=10)
        assert "Claimed by <@U1>" in json.dumps(d.slack.messages(DESK)[-1])


async def test_slack_request_slack_can_never_accept_does_not_block_the_rest(
    database_url: str,
) -> None:
    async with desk(database_url) as d:
        d.slack.fail_next("chat.postMessage", status=200, error="invalid_blocks")
        first = await complete_enquiry(d.tg, 201)
        await complete_enquiry(d.tg, 202)
        await d.slack.wait_for(lambda s: len(s.messages(DESK)) >= 1, timeout=10)
        first_ref = next(t for t in first if "reference is" in t).split("reference is ")[1][:9]
        await say(d.tg, 201, "One more detail.")
        await d.slack.wait_for(
            lambda s: any(m.get("text", "").startswith(f"{first_ref}: ") for m in s.messages(DESK)),
            timeout=10,
        )
