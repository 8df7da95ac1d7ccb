"""The Telegram channel end to end: the real PTB Application against a fake Bot API server."""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Chat, Message, Update

from bot.telegram.processing import PerChatUpdateProcessor
from bot.telegram.rendering import button_data, inbound_from_button, outgoing, split_text
from flows.copy import default_copy
from flows.messages import Command, InboundKind, Option, Reply
from storage import db
from storage.models import (
    ConversationRecord,
    InboxUpdate,
    OutboxMessage,
    TranscriptEntry,
)
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram import (
    WEBHOOK_SECRET,
    cases_in,
    complete_enquiry,
    local,
    next_handled,
    replies_settle,
    running,
    say,
    settings_for,
    tap,
    webhook_settings,
)

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"

CHAT = 4242
SECRET = WEBHOOK_SECRET


async def count(database_url: str, model: type) -> int:
    engine = db.create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())
    finally:
        await engine.dispose()


async def test_telegram_full_enquiry_becomes_a_stored_case(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        confirmation = await complete_enquiry(tg, CHAT)
    assert any("Your reference is HL-" in text for text in confirmation)
    (case,) = await cases_in(database_url)
    assert case.channel == "telegram"
    assert case.platform == "TikTok"
    assert case.region == "South East"
    assert case.description == "Someone set up an account pretending to be the school."
    assert case.reply_via == "chat"
    assert tg.calls_of("setMyCommands")
    assert not tg.calls_of("getFile")


async def test_telegram_child_is_signposted(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        texts = await tap(tg, CHAT, "under 18")
    assert any("0800 1111" in t for t in texts)
    (case,) = await cases_in(database_url)
    assert case.status == "signposted"
    assert await count(database_url, TranscriptEntry) == 0


@pytest.mark.parametrize("kind", ["photo", "video", "document", "voice", "sticker", "video_note"])
async def test_telegram_media_is_deleted_refused_and_never_downloaded(
    database_url: str, kind: str
) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
        tg.push_media(CHAT, kind, caption="look at this")
        texts = await replies_settle(tg, CHAT, before, handled)
    assert any("don't send photos" in t for t in texts)
    assert tg.deleted and tg.deleted[0][0] == CHAT
    assert not tg.calls_of("getFile")
    engine = db.create_engine(database_url)
    async with db.session_factory(engine)() as session:
        turns = (await session.execute(select(TranscriptEntry))).scalars().all()
    await engine.dispose()
    refused = [t for t in turns if t.kind == "attachment_refused"]
    assert len(refused) == 1 and refused[0].text == ""
    assert not any("look at this" in t.text for t in turns)


async def test_telegram_album_is_all_deleted_and_refused_once(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        before = len(tg.sent_texts(CHAT))
        for _ in range(4):
            tg.push_media(CHAT, "photo", media_group_id="album-1")
        await tg.wait_for(lambda t: len(t.deleted) == 4 and not t.queued, timeout=10)
        await asyncio.sleep(0.3)
        texts = tg.sent_texts(CHAT)[before:]
    assert sum("don't send photos" in t for t in texts) == 1
    assert not tg.calls_of("getFile")


async def test_telegram_restart_in_the_middle_continues_at_the_same_step(
    database_url: str,
) -> None:
    async with FakeTelegram() as tg:
        settings = settings_for(tg, database_url)
        async with running(settings, tg):
            await say(tg, CHAT, "/start")
            await tap(tg, CHAT, "School or college staff")
            await tap(tg, CHAT, "DSL")
        async with running(settings, tg):
            texts = await say(tg, CHAT, "primary school")
        assert any("Where are you based" in t for t in texts)


async def test_telegram_redelivered_update_is_processed_once(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        await tap(tg, CHAT, "Police")
        before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
        tg.push_message(CHAT, "secondary", update_id=900)
        await replies_settle(tg, CHAT, before, handled)
        after_first, handled = len(tg.sent_texts(CHAT)), next_handled(tg, updates=2)
        tg.push_message(CHAT, "secondary", update_id=900)
        tg.push_message(CHAT, "london")
        await replies_settle(tg, CHAT, after_first, handled)
        texts = tg.sent_texts(CHAT)[after_first:]
    # The repeat was skipped: "london" answered the region, not a re-asked setting.
    assert any("Where is the content" in t for t in texts)
    assert not any("didn't catch" in t for t in texts)


async def test_telegram_429_is_waited_out_and_retried(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        tg.fail_next("sendMessage", status=429, retry_after=1)
        texts = await say(tg, CHAT, "/start")
        assert any("who are you contacting us as" in t for t in texts)
        assert next(c.status for c in tg.calls_of("sendMessage")) == 429


async def test_telegram_reply_survives_server_errors_and_many_429s(database_url: str) -> None:
    """The turn is saved before its reply goes out: the reply must not be dropped."""
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        tg.fail_next("sendMessage", status=500, times=1)
        tg.fail_next("sendMessage", status=429, retry_after=0.1, times=8)  # > the limiter's 5
        texts = await say(tg, CHAT, "/start")
        assert any("who are you contacting us as" in t for t in texts)
        statuses = [c.status for c in tg.calls_of("sendMessage")]
    assert statuses.count(500) == 1 and statuses.count(429) == 8


async def test_telegram_replies_that_cannot_go_now_go_through_the_outbox(
    database_url: str,
) -> None:
    async with FakeTelegram() as tg:
        settings = settings_for(tg, database_url, telegram_send_patience=0.5)
        async with running(settings, tg):
            tg.fail_next("sendMessage", status=502, times=1)  # longer than the patience allows
            tg.push_command(CHAT, "/start")
            text = await tg.wait_for_text(CHAT, "who are you contacting us as", timeout=10)
            last = tg.last_message(CHAT)
        statuses = [c.status for c in tg.calls_of("sendMessage")]
    assert statuses[0] == 502 and len(statuses) == 2
    assert text.startswith("Hello")  # the whole reply, welcome and question
    assert last is not None and last.get("reply_markup")  # buttons and all, from the outbox


async def test_telegram_one_chat_in_order_many_chats_in_parallel(database_url: str) -> None:
    chats = [5001, 5002, 5003]
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        for chat in chats:
            await say(tg, chat, "/start")
        for chat in chats:
            for text in ("school staff", "teacher", "primary", "london"):
                tg.push_message(chat, text)
        for chat in chats:
            await tg.wait_for_text(chat, "Where is the content", timeout=10)
        for chat in chats:
            asked = [t for t in tg.sent_texts(chat) if t.endswith("?")]
            assert asked[-4:] == [
                "Which of these fits best?",
                "What kind of setting is this about?",
                "Where are you based (a town or county is fine)?",
                "Where is the content or behaviour you're worried about?",
            ]


async def test_telegram_a_slow_chat_does_not_wait_for_another(database_url: str) -> None:
    slow, quick = 6001, 6002
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, slow, "/start")
        await say(tg, quick, "/start")
        release = tg.hold_sends(slow)
        tg.push_message(slow, "school staff")
        await asyncio.sleep(0.2)  # the slow chat's reply is now stuck in sendMessage
        texts = await say(tg, quick, "school staff")
        assert any("Which of these fits best" in t for t in texts)
        assert not any("Which of these fits best" in t for t in tg.sent_texts(slow))
        release.set()
        await tg.wait_for_text(slow, "Which of these fits best", timeout=10)


async def test_telegram_stale_button_says_the_question_moved_on(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        first_question = copy.deepcopy(tg.last_message(CHAT))
        assert first_question is not None
        await tap(tg, CHAT, "Police")
        stale = next(b for b in first_question["reply_markup"]["inline_keyboard"][0])
        before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
        tg.push_callback(CHAT, stale["callback_data"], message_id=first_question["message_id"])
        texts = await replies_settle(tg, CHAT, before, handled)
    assert any("moved on" in t for t in texts)
    assert any("setting" in t for t in texts)


async def test_telegram_old_back_button_does_not_step_back_from_here(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        await tap(tg, CHAT, "School or college staff")
        old = copy.deepcopy(tg.last_message(CHAT))  # "which role", with its Back button
        assert old is not None
        await tap(tg, CHAT, "Teacher")
        await tap(tg, CHAT, "Secondary")
        back = next(
            b for row in old["reply_markup"]["inline_keyboard"] for b in row if "Back" in b["text"]
        )
        before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
        tg.push_callback(CHAT, back["callback_data"], message_id=old["message_id"])
        texts = await replies_settle(tg, CHAT, before, handled)
    assert any("moved on" in t for t in texts)
    assert any("Where are you based" in t for t in texts)


async def test_telegram_forged_button_data_is_handled_kindly(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
        tg.push_callback(CHAT, "x" * 64)
        texts = await replies_settle(tg, CHAT, before, handled)
    assert any("moved on" in t for t in texts)


async def test_telegram_group_chat_is_told_private_only_and_nothing_is_stored(
    database_url: str,
) -> None:
    group = -100123
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        tg.push_message(group, "hello bot", chat_type="group", user_id=77)
        await tg.wait_for_text(group, "private chats", timeout=10)
    assert await count(database_url, ConversationRecord) == 0
    assert await count(database_url, TranscriptEntry) == 0


async def test_telegram_status_and_privacy_commands(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        none_yet = await say(tg, CHAT, "/status")
        privacy = await say(tg, CHAT, "/privacy")
        await complete_enquiry(tg, CHAT)
        status = await say(tg, CHAT, "/status")
    assert "haven't sent an enquiry" in none_yet[0]
    assert "365 days" in privacy[0]
    assert "waiting for a practitioner" in status[0]


async def test_telegram_message_after_submitting_is_added_to_the_case(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await complete_enquiry(tg, CHAT)
        texts = await say(tg, CHAT, "A second account appeared this morning.")
    assert any("added that to your enquiry" in t for t in texts)


async def test_telegram_webhook_mode_full_enquiry_and_redelivery(database_url: str) -> None:
    async with FakeTelegram() as tg:
        settings = webhook_settings(tg, database_url, "https://helpline.example.org")  # no path
        async with running(settings, tg):
            assert tg.webhook is not None
            assert tg.webhook["url"] == "https://helpline.example.org/telegram/webhook"
            tg.push_to_webhook(local(settings))
            confirmation = await complete_enquiry(tg, CHAT)
            assert any("Your reference is HL-" in text for text in confirmation)
            before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
            update_id = tg.push_message(CHAT, "One more thing.")
            await replies_settle(tg, CHAT, before, handled)
            after = len(tg.sent_texts(CHAT))
            tg.push_message(CHAT, "One more thing.", update_id=update_id)  # redelivered
            await tg.wait_for(lambda t: not t.queued, timeout=10)
            await asyncio.sleep(0.2)
            assert len(tg.sent_texts(CHAT)) == after
        assert set(tg.webhook_statuses) == {200}
        assert not tg.calls_of("getUpdates")
    assert len(await cases_in(database_url)) == 1


async def test_telegram_webhook_answers_once_the_update_is_stored(database_url: str) -> None:
    """200 tells Telegram never to resend: it comes once the update is in the inbox, and
    not only after its reply went out (a chat's queue must not hold Telegram's connection)."""
    async with FakeTelegram() as tg:
        settings = webhook_settings(tg, database_url)
        async with running(settings, tg):
            url = local(settings)
            release = tg.hold_sends(CHAT)
            update_id = tg.push_command(CHAT, "/start")
            assert await tg.deliver_webhook(url, update_id, SECRET) == 200
            assert not tg.sent_texts(CHAT)  # answered while its reply is still held
            release.set()
            await tg.wait_for_text(CHAT, "who are you contacting us as", timeout=10)
            assert await count(database_url, InboxUpdate) == 0  # removed with the turn


async def test_telegram_update_whose_handling_failed_is_handled_again(database_url: str) -> None:
    """The database failing mid-update leaves it in the inbox; it is handled once it can be."""
    async with FakeTelegram() as tg:
        settings = webhook_settings(tg, database_url, outbox_backoff_seconds=0.05)
        async with running(settings, tg):
            engine = db.create_engine(database_url)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text("ALTER TABLE transcript RENAME TO transcript_away"))
                update_id = tg.push_command(CHAT, "/start")
                assert await tg.deliver_webhook(local(settings), update_id, SECRET) == 200
                await wait_for_attempts(engine, 1)
                assert not tg.sent_texts(CHAT)
                async with engine.begin() as conn:
                    await conn.execute(text("ALTER TABLE transcript_away RENAME TO transcript"))
                await tg.wait_for_text(CHAT, "who are you contacting us as", timeout=10)
            finally:
                await engine.dispose()
        assert await count(database_url, InboxUpdate) == 0
        assert len(tg.sent_texts(CHAT)) == 1


async def wait_for_attempts(engine: AsyncEngine, attempts: int) -> None:
    """Until the inbox row records ``attempts`` failed attempts."""
    for _ in range(500):
        async with engine.connect() as conn:
            tried = (await conn.execute(select(InboxUpdate.attempts))).scalars().all()
        if tried and tried[0] >= attempts:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the update was not tried {attempts} time(s)")


async def test_telegram_reply_refused_with_400_still_arrives(database_url: str) -> None:
    """A refused reply is not dropped: the outbox tries it again (without buttons if need be)."""
    async with FakeTelegram() as tg:
        settings = webhook_settings(tg, database_url)
        async with running(settings, tg):
            tg.fail_next("sendMessage", status=400)
            update_id = tg.push_command(CHAT, "/start")
            assert await tg.deliver_webhook(local(settings), update_id, SECRET) == 200
            await tg.wait_for_text(CHAT, "who are you contacting us as", timeout=10)
        assert [c.status for c in tg.calls_of("sendMessage")] == [400, 200]


async def test_telegram_stopping_finishes_the_webhook_update_in_hand(database_url: str) -> None:
    async with FakeTelegram() as tg:
        settings = webhook_settings(tg, database_url)
        release = tg.hold_sends(CHAT)
        async with running(settings, tg):
            url = local(settings)
            update_id = tg.push_command(CHAT, "/start")
            post = asyncio.create_task(tg.deliver_webhook(url, update_id, SECRET))
            await asyncio.sleep(0.3)
            asyncio.get_running_loop().call_later(0.3, release.set)
        # Leaving the block stopped the service, which finished the update first.
        assert await asyncio.wait_for(post, 5) == 200
        assert any("who are you contacting us as" in t for t in tg.sent_texts(CHAT))


async def test_telegram_webhook_checks_the_secret(database_url: str) -> None:
    async with FakeTelegram() as tg:
        settings = webhook_settings(tg, database_url, "https://helpline.example.org/telegram/hook")
        async with running(settings, tg):
            url = local(settings, "/telegram/hook")
            assert tg.webhook is not None and tg.webhook["secret_token"] == SECRET
            update = {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": CHAT, "type": "private"},
                    "from": {"id": CHAT, "is_bot": False, "first_name": "A"},
                    "text": "hi",
                },
            }
            assert await tg.deliver_webhook(url, update, secret_token="wrong") == 403
            assert await tg.deliver_webhook(url, update) == 403
            assert await tg.deliver_webhook(url, update, secret_token=SECRET) == 200
            await tg.wait_for_text(CHAT, "who are you contacting us as", timeout=10)
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    url,
                    data=b"{not json",
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                ) as resp:
                    assert resp.status == 400
                async with http.get(f"http://127.0.0.1:{settings.http_port}/healthz") as resp:
                    assert resp.status == 200
        assert not tg.calls_of("getUpdates")


async def test_telegram_logs_carry_no_token_text_or_personal_data(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from bot import logs

    logs.configure("DEBUG")
    root = logging.getLogger()
    caplog.handler.addFilter(logs.RedactingFilter())
    root.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    for name in logs.QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG)  # the worst case: everything on
    try:
        token = "987654321:AAHsecretTOKENvalue_abcdefghijkl"
        async with FakeTelegram(token=token) as tg, running(settings_for(tg, database_url), tg):
            await complete_enquiry(tg, CHAT)
            await say(tg, CHAT, "My email is teacher@example.school and I'm Sam Smith")
    finally:
        root.removeHandler(caplog.handler)
        logs.configure("WARNING")
    output = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert output, "nothing was logged: the test would prove nothing"
    for secret in (
        "AAHsecretTOKENvalue",
        "pretending to be the school",
        "teacher@example.school",
        "Sam Smith",
        "Fake account using our logo",
        "not_our_school",
    ):
        assert secret not in output


def test_button_data_round_trips_and_fits_telegram() -> None:
    data = button_data("categories", "t", "reputation")
    assert len(data.encode()) <= 64
    inbound = inbound_from_button(data)
    assert inbound.kind is InboundKind.TOGGLE and inbound.option_ids == ("reputation",)
    assert inbound_from_button(button_data("setting", "nav", "back")).command is Command.BACK
    assert inbound_from_button("garbage").question == "?"


def test_split_text_keeps_every_message_under_the_limit() -> None:
    text = ("A paragraph of words. " * 60 + "\n\n") * 10
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p) <= 4096 for p in parts)
    assert "".join(p.replace(" ", "").replace("\n", "") for p in parts) == text.replace(
        " ", ""
    ).replace("\n", "")


async def test_telegram_back_button_goes_back(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        await tap(tg, CHAT, "School or college staff")
        texts = await tap(tg, CHAT, "Back")
    assert any("who are you contacting us as" in t for t in texts)


async def test_telegram_edited_message_changes_nothing(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
        tg.push_edit(CHAT, 99, "police")
        texts = await replies_settle(tg, CHAT, before, handled)
        assert any("can't take changes" in t for t in texts)
        texts = await say(tg, CHAT, "school staff")
        assert any("Which of these fits best" in t for t in texts)


async def test_telegram_edited_command_is_not_run_again(database_url: str) -> None:
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await say(tg, CHAT, "/start")
        await tap(tg, CHAT, "School or college staff")
        before, handled = len(tg.sent_texts(CHAT)), next_handled(tg)
        restart = {"type": "bot_command", "offset": 0, "length": len("/restart")}
        tg.push_edit(CHAT, 98, "/restart", entities=[restart])
        texts = await replies_settle(tg, CHAT, before, handled)
        assert any("can't take changes" in t for t in texts)
        texts = await say(tg, CHAT, "teacher")  # still at the question after "school staff"
        assert not any("who are you contacting us as" in t for t in texts)
        assert any("setting" in t.lower() for t in texts), texts


async def test_telegram_keeps_to_one_message_a_second_per_chat(database_url: str) -> None:
    async with FakeTelegram() as tg:
        settings = settings_for(tg, database_url, telegram_chat_rate=2.0, telegram_chat_burst=1)
        async with running(settings, tg):
            tg.enforce_per_chat_rate(0.4)
            await say(tg, CHAT, "/start")  # then straight away a second message to the same chat
            await say(tg, CHAT, "help")
    assert tg.rate_limited == 0, "messages were spaced out, so Telegram never had to refuse one"


def test_merge_replies_folds_text_into_the_next_question() -> None:
    from bot.telegram.rendering import merge_replies
    from flows.messages import Option, Reply

    question = Reply("Which?", (Option("a", "A"),), question="q")
    merged = merge_replies([Reply("Call 999 first."), Reply("Hello."), question, Reply("Bye.")])
    assert [r.text for r in merged] == ["Call 999 first.\n\nHello.\n\nWhich?", "Bye."]
    assert merged[0].options == question.options and merged[0].question == "q"
    long = [Reply("x" * 3000), Reply("y" * 3000, (Option("a", "A"),))]
    assert [len(r.text) for r in merge_replies(long)] == [3000, 3000]
    free_text_question = Reply("Give it a title.", question="subject")  # only a Back button
    merged = merge_replies([Reply("Alongside…"), free_text_question])
    assert len(merged) == 1 and merged[0].question == "subject"


async def test_one_busy_chat_does_not_hold_up_the_others() -> None:
    """Updates queued behind their own chat must not use up the processor's slots."""
    processor = PerChatUpdateProcessor(max_concurrent_updates=2)
    release_busy = asyncio.Event()
    done: list[str] = []

    def update(update_id: int, chat_id: int) -> Update:
        chat = Chat(chat_id, Chat.PRIVATE)
        return Update(update_id, message=Message(update_id, datetime.now(UTC), chat, text="hi"))

    async def busy() -> None:
        await release_busy.wait()
        done.append("busy")

    async def quick() -> None:
        done.append("other chat")

    flood = [asyncio.create_task(processor.process_update(update(n, 1), busy())) for n in range(6)]
    await asyncio.sleep(0.05)
    await asyncio.wait_for(processor.process_update(update(99, 2), quick()), timeout=2)
    assert done == ["other chat"]
    release_busy.set()
    await asyncio.gather(*flood)
    assert done == ["other chat"] + ["busy"] * 6


def test_a_long_reply_is_split_with_its_buttons_on_the_last_part() -> None:
    reply = Reply("word " * 2000, options=(Option("a", "Yes"),), question="danger")
    messages = outgoing([reply], default_copy())
    assert len(messages) == 3
    assert all(len(text) <= 4096 for text, _ in messages)
    assert [markup is not None for _, markup in messages] == [False, False, True]
    assert " ".join(text for text, _ in messages).split() == reply.text.split()


async def test_telegram_replies_wait_behind_an_earlier_one_still_owed(database_url: str) -> None:
    """A reply handed to the outbox keeps its place: the next turn's replies go after it,
    and every row is closed once sent."""
    async with FakeTelegram() as tg:
        settings = settings_for(
            tg, database_url, telegram_send_patience=0.1, outbox_backoff_seconds=0.5
        )
        async with running(settings, tg):
            tg.fail_next("sendMessage", status=502, times=2)  # the fast path gives up at once
            tg.push_command(CHAT, "/start")
            # The outbox has tried it too and waits to try again: now the next turn comes.
            await tg.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2, timeout=10)
            tg.push_message(CHAT, "police")
            await tg.wait_for_text(CHAT, "What kind of setting", timeout=10)
            texts = tg.sent_texts(CHAT)
            assert "who are you contacting us as" in texts[0]
            assert "What kind of setting" in texts[1]
            engine = db.create_engine(database_url)
            try:
                for _ in range(500):
                    async with engine.connect() as conn:
                        pending = select(func.count()).where(OutboxMessage.sent_at.is_(None))
                        left = (await conn.execute(pending)).scalar_one()
                    if left == 0:
                        break
                    await asyncio.sleep(0.02)
            finally:
                await engine.dispose()
        assert left == 0, "every reply row was closed once sent"
    assert len(texts) == 2


async def test_telegram_replies_sent_at_once_leave_no_outbox_rows(database_url: str) -> None:
    """Each turn's replies are written with it; sent straight away, their rows are deleted."""
    async with FakeTelegram() as tg, running(settings_for(tg, database_url), tg):
        await complete_enquiry(tg, CHAT)
        engine = db.create_engine(database_url)
        try:
            for _ in range(500):
                async with engine.connect() as conn:
                    kinds = (await conn.execute(select(OutboxMessage.kind))).scalars().all()
                if "enquirer.reply" not in kinds:
                    break
                await asyncio.sleep(0.02)
        finally:
            await engine.dispose()
    assert "enquirer.reply" not in kinds
