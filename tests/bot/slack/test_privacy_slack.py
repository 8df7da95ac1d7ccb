"""Data protection on the desk, end to end: real Bolt, slack_sdk and PTB against the fake
Slack and Telegram servers. Erasure reaches the card and the bot's thread posts; an
enquirer can erase their own chat with /delete; only practitioners may act; overdue
requests are flagged in the desk channel."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from bot.core import open_core
from bot.telegram.rendering import button_data
from flows.machine import SEND_COPY
from flows.privacy import Identity
from storage import audit, db
from storage import cases as case_store
from storage.models import Case
from tests.support.slack_desk import DESK, ENQUIRER, Desk, desk, submitted_case
from tests.support.telegram import replies_settle, say, tap

ERASED_POST = "🗑️ Erased: this case's personal data is gone."
DESCRIPTION = "Someone set up an account pretending to be the school."


async def trail(d: Desk, reference: str | None = None) -> list[tuple[str, str, str]]:
    engine = db.create_engine(d.settings.database_url)
    async with db.session_factory(engine)() as session:
        entries = await audit.entries(session, case_reference=reference)
        found = [(e.actor, e.action, e.channel) for e in entries]
    await engine.dispose()
    return found


async def stored_case(d: Desk, reference: str) -> Case | None:
    engine = db.create_engine(d.settings.database_url)
    async with db.session_factory(engine)() as session:
        case = await case_store.get_case(session, reference)
    await engine.dispose()
    return case


def bot_posts(d: Desk, card: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for m in d.slack.thread(DESK, card["ts"]) if m.get("bot_id")]


async def test_erasure_updates_the_card_and_the_bots_thread_posts(database_url: str) -> None:
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        assert await d.press("claim", reference) == 200
        (card,) = d.cards()
        await d.slack.wait_for(lambda s: any("Claimed by" in t for t in bot_posts(d, card)))

        async with open_core(d.settings) as core:
            erased = await core.privacy.erase(Identity.REFERENCE, reference, actor="dpo")
        assert erased.done
        await d.slack.wait_for(lambda s: "erased" in json.dumps(s.messages(DESK)[0]))
        await d.slack.wait_for(
            lambda s: bot_posts(d, card) == [ERASED_POST] * len(bot_posts(d, card))
        )
        (card,) = d.cards()
        shown = json.dumps(card)
        assert DESCRIPTION not in shown and "not_our_school" not in shown
        assert "on request" in shown and "Claim" not in shown
        assert all(DESCRIPTION not in json.dumps(m) for m in d.slack.thread(DESK, card["ts"]))
    actions = [a for _, a, _ in await trail(d, reference)]
    assert actions[-1] == "erased" and "claim" in actions and "contact_shown" in actions


async def test_an_enquirer_deletes_what_they_told_us_with_a_confirmation(
    database_url: str,
) -> None:
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        # The button is on the confirmation, above the "while you wait" message.
        offered = [
            (b["text"], b["callback_data"])
            for m in d.tg.bot_messages(ENQUIRER)
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
        ]
        assert ("Send me a copy", button_data(None, "c", SEND_COPY)) in offered
        before = len(d.tg.sent_texts(ENQUIRER))
        d.tg.push_callback(ENQUIRER, button_data(None, "c", SEND_COPY))
        copy = await replies_settle(d.tg, ENQUIRER, before)
        assert reference in copy[-1] and DESCRIPTION in copy[-1]
        asked = await say(d.tg, ENQUIRER, "/delete")
        assert "can't be undone" in asked[-1]
        kept = await tap(d.tg, ENQUIRER, "No, keep it")
        assert kept == ["OK, nothing has been deleted."]
        assert (await stored_case(d, reference)).description == DESCRIPTION  # type: ignore[union-attr]

        await say(d.tg, ENQUIRER, "/delete")
        done = await tap(d.tg, ENQUIRER, "Yes, delete it")
        assert "I've deleted what you told me" in done[-1] and reference in done[-1]
        await d.slack.wait_for(
            lambda s: "the enquirer asked for it in the chat" in json.dumps(s.messages(DESK)[0])
        )
        case = await stored_case(d, reference)
        assert case is not None and case.description is None and case.subject is None
        assert case.platform == "TikTok"
        status = await say(d.tg, ENQUIRER, "/status")  # the chat is forgotten too
        assert "haven't sent an enquiry" in status[-1]
    assert ("enquirer", "erased_by_enquirer", "telegram") in await trail(d, reference)


async def test_only_practitioners_may_act_and_refusals_are_audited(database_url: str) -> None:
    async with desk(database_url, slack_practitioners="S0PRAC") as d:
        d.slack.usergroups["S0PRAC"] = ["U1"]
        reference = await submitted_case(d)
        assert await d.press("claim", reference, user="U2", name="visitor") == 200
        await d.slack.wait_for(
            lambda s: any("only the helpline's practitioners" in e["text"] for e in s.ephemerals)
        )
        assert (await stored_case(d, reference)).claimed_by is None  # type: ignore[union-attr]
        assert ("<@U2>", "refused", "slack") in await trail(d, reference)

        assert await d.press("claim", reference, user="U1") == 200
        await d.slack.wait_for(lambda s: any("Contact details" in e["text"] for e in s.ephemerals))
        assert await d.press("details", reference, user="U1") == 200
        await d.slack.wait_for(lambda s: s.last_view is not None)
    entries = await trail(d, reference)
    assert ("<@U1>", "claim", "slack") in entries
    assert ("<@U1>", "card_details_opened", "slack") in entries
    assert entries.count(("<@U1>", "contact_shown", "slack")) == 2  # on claim, in the details


async def test_overdue_data_protection_requests_are_flagged_on_the_desk_once(
    database_url: str, tmp_path: Path
) -> None:
    async with desk(database_url) as d:
        async with open_core(d.settings) as core:
            exported = await core.privacy.export(
                Identity.EMAIL,
                "someone@example.org",
                actor="dpo",
                out=tmp_path,
                received=date(2026, 1, 31),
            )
        assert exported.due_on == date(2026, 3, 2)  # 28 Feb 2026 is a Saturday
        await d.slack.wait_for(
            lambda s: any(exported.request in m.get("text", "") for m in s.messages(DESK))
        )
        flagged = [m for m in d.slack.messages(DESK) if exported.request in m.get("text", "")]
        assert len(flagged) == 1 and "was due 2026-03-02" in flagged[0]["text"]
