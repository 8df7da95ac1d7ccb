"""Follow-ups reach the right case, end to end on the fake Telegram server.

The bug this guards against: an enquirer who pressed "Start a new enquiry" and then
answered a practitioner's message about their first enquiry had the answer taken as the
new enquiry's first answer. Replies to the bot's message about a case go to that case;
a message that could be for either is asked about, with the reference.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage import db
from storage.models import Case, ConversationRecord, TranscriptEntry
from tests.fakes.telegram_api import FakeTelegram
from tests.support.cli import helpline_async
from tests.support.telegram import (
    buttons,
    complete_enquiry,
    replies_settle,
    running,
    settings_for,
    tap,
)

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"

CHAT = 4242


async def _case_turns(url: str, reference: str) -> list[tuple[str, str]]:
    engine = db.create_engine(url)
    async with db.session_factory(engine)() as session:
        case = (await session.execute(select(Case).where(Case.reference == reference))).scalar_one()
        rows = await session.execute(
            select(TranscriptEntry.sender, TranscriptEntry.text)
            .where(TranscriptEntry.case_id == case.id)
            .order_by(TranscriptEntry.at, TranscriptEntry.id)
        )
        turns = [(str(s), str(t)) for s, t in rows.all()]
    await engine.dispose()
    return turns


async def _step(url: str) -> dict[str, Any]:
    engine = db.create_engine(url)
    async with db.session_factory(engine)() as session:
        state = (await session.execute(select(ConversationRecord.state))).scalar_one()
    await engine.dispose()
    return dict(state)


async def _practitioner_writes(
    url: str, tg: FakeTelegram, reference: str, text: str, cwd: Path
) -> dict[str, Any]:
    """A practitioner's reply from the desk (the CLI), delivered by the running service;
    returns the bot's message that carried it, once it is logged on the case. Awaited: the
    service shares this event loop and must carry on while the command waits its turn."""
    result = await helpline_async(
        "cases",
        "reply",
        reference,
        text,
        "--as",
        "sam",
        cwd=cwd,
        env={"HELPLINE_DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stderr
    await tg.wait_for_text(CHAT, text, timeout=10)
    for _ in range(500):  # logged on the case once sent, just after Telegram took it
        if ("practitioner", text) in await _case_turns(url, reference):
            break
        await asyncio.sleep(0.02)
    return next(m for m in tg.bot_messages(CHAT) if text in m.get("text", ""))


async def _reply_to(tg: FakeTelegram, message: dict[str, Any] | None, text: str) -> list[str]:
    before = len(tg.sent_texts(CHAT))
    if message:
        tg.push_message(CHAT, text, reply_to_message=message)
    else:
        tg.push_message(CHAT, text)
    return await replies_settle(tg, CHAT, before)


async def test_telegram_follow_ups_reach_the_case_they_answer_during_a_new_enquiry(
    database_url: str, tmp_path: Path
) -> None:
    async with FakeTelegram() as tg:
        settings = settings_for(
            tg, database_url, outbox_poll_seconds=0.05, outbox_backoff_seconds=0.05
        )
        async with running(settings, tg):
            texts = await complete_enquiry(tg, CHAT)
            first = next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
            confirmation = next(m for m in tg.bot_messages(CHAT) if first in m.get("text", ""))
            offer = next(m for m in tg.bot_messages(CHAT) if "Start a new enquiry" in json.dumps(m))
            data = next(
                b["callback_data"]
                for row in offer["reply_markup"]["inline_keyboard"]
                for b in row
                if b["text"] == "Start a new enquiry"
            )
            before = len(tg.sent_texts(CHAT))
            tg.push_callback(CHAT, data, message_id=offer["message_id"])
            await replies_settle(tg, CHAT, before)
            assert (await _step(database_url))["step"] == "role_group"

            # 1. A Telegram reply to the practitioner's message goes to that case.
            asked = await _practitioner_writes(
                database_url, tg, first, "Could you send the link again?", tmp_path
            )
            said = await _reply_to(tg, asked, "Here it is: tiktok.com/@not_our_school")
            assert any(f"added that to your enquiry {first}" in t for t in said)
            assert (await _step(database_url))["step"] == "role_group"  # the new one is untouched
            assert "School or college staff" in json.dumps(buttons(tg, CHAT))  # asked again

            # 2. Free text after a practitioner's message: which enquiry is it for?
            await _practitioner_writes(
                database_url, tg, first, "Has the account gone yet?", tmp_path
            )
            said = await _reply_to(tg, None, "No, it is still up")
            assert said[-1].startswith(f"A practitioner wrote to you about your enquiry {first}")
            labels = [b["text"] for b in buttons(tg, CHAT)]
            assert (
                f"Yes, about {first}" in labels
                and "No, it's for the enquiry I'm filling in now" in labels
            )
            said = await tap(tg, CHAT, f"Yes, about {first}")
            assert any(f"added that to your enquiry {first}" in t for t in said)

            # ... and when it was for the new enquiry, it answers the question it was asked.
            await _practitioner_writes(
                database_url, tg, first, "Anything else we should know?", tmp_path
            )
            said = await _reply_to(tg, None, "School or college staff")
            assert "Is this message about that enquiry?" in said[-1]
            await tap(tg, CHAT, "No, it's for the enquiry I'm filling in now")
            state = await _step(database_url)
            assert state["step"] == "role" and state["answers"]["role_group"] == "school"

            # 3. A reply to the first enquiry's confirmation goes there too, and with no
            # practitioner message waiting, plain text is simply the next answer.
            said = await _reply_to(tg, confirmation, "One more thing: they made a second account")
            assert any(f"added that to your enquiry {first}" in t for t in said)
            said = await _reply_to(tg, None, "Teacher")
            assert (await _step(database_url))["step"] == "setting"

            # A reply quoting an enquirer's own message (not the bot's) names no case.
            mine = {
                "message_id": 1,
                "date": 0,
                "chat": {"id": CHAT, "type": "private"},
                "from": {"id": CHAT, "is_bot": False, "first_name": "Alex"},
                "text": first,
            }
            said = await _reply_to(tg, mine, "Secondary")
            assert (await _step(database_url))["step"] == "region"

    turns = await _case_turns(database_url, first)
    wrote = [t for s, t in turns if s == "enquirer"]
    assert "Here it is: tiktok.com/@not_our_school" in wrote
    assert "No, it is still up" in wrote
    assert "One more thing: they made a second account" in wrote
    assert "School or college staff" not in wrote and "Secondary" not in wrote
