"""Telegram enquirers who write in their own words (issue 10), through the real PTB bot."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage import db
from storage.models import TranscriptEntry
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram import buttons, cases_in, press, running, say, settings_for, tap

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"

CHAT = 7310
OPENING = (
    "Hi, I'm the DSL at a secondary in York, a fake Snapchat account is posting our staff's "
    "photos with vile captions, we reported it and nothing happened"
)


async def transcript_rows(database_url: str) -> int:
    engine = db.create_engine(database_url)
    try:
        async with db.session_factory(engine)() as session:
            return len((await session.execute(select(TranscriptEntry))).scalars().all())
    finally:
        await engine.dispose()


async def test_telegram_child_in_their_own_words_is_signposted_at_once(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        texts = await say(tg, CHAT, "hi im 14 and someone at school is sharing a pic of me")
    assert any("0800 1111" in t for t in texts)
    (case,) = await cases_in(database_url)
    assert case.status == "signposted" and case.enquirer_type == "Child (12-18)"
    assert case.subject is None and case.description is None
    assert await transcript_rows(database_url) == 0


async def test_telegram_first_message_is_taken_in_and_a_case_follows_in_eight_answers(
    database_url: str,
) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        shown = await say(tg, CHAT, OPENING)  # 1
        assert any("Yorkshire and the Humber" in t for t in shown)
        assert [b["text"] for b in buttons(tg, CHAT)][:2] == ["That's right", "Change something"]
        await tap(tg, CHAT, "That's right")  # 2
        await say(tg, CHAT, "Fake Snapchat account")  # 3
        await tap(tg, CHAT, "No links")  # 4
        await tap(tg, CHAT, "No")  # 5
        await tap(tg, CHAT, "this chat")  # 6
        await say(tg, CHAT, "no thanks")  # 7
        confirmation = await tap(tg, CHAT, "Send my enquiry")  # 8
    assert any("Your reference is HL-" in t for t in confirmation)
    (case,) = await cases_in(database_url)
    assert (case.enquirer_type, case.setting, case.region) == (
        "DSL",
        "Secondary",
        "Yorkshire and the Humber",
    )
    assert case.platform == "Snapchat" and case.already_reported is True
    assert case.description == OPENING and case.contact_name is None


async def test_telegram_risk_brings_crisis_lines_then_the_same_question_with_its_buttons(
    database_url: str,
) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        await tap(tg, CHAT, "School or college staff")
        await tap(tg, CHAT, "Teacher")
        texts = await say(tg, CHAT, "she wants to take her own life")
        labels = [b["text"] for b in buttons(tg, CHAT)]
    joined = "\n".join(texts)
    assert "116 123" in joined and "didn't catch" not in joined
    assert joined.index("116 123") < joined.index("What kind of setting")
    assert "Secondary school" in labels


async def test_telegram_one_at_a_one_button_step_presses_it(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        for label in ("Police", "Not a school", "London", "A website"):
            await tap(tg, CHAT, label)
        press(tg, CHAT, "Online Reputation")  # a tick edits the menu in place
        await tg.wait_for(lambda t: "✅" in buttons(t, CHAT)[0]["text"], timeout=5)
        await tap(tg, CHAT, "Done")
        await say(tg, CHAT, "A blog about an officer")
        await say(tg, CHAT, "It names the officer and their children.")
        texts = await say(tg, CHAT, "1")
    assert any("Send any links" in t for t in texts)
