"""The fake Telegram server, proven against the real python-telegram-bot over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, InvalidToken, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_api import FakeTelegram

# PTB 22.2+ warns inside RetryAfter itself while retry_after is still an int; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

MEDIA_KINDS = ["photo", "video", "document", "voice", "sticker", "animation", "video_note", "audio"]


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token="123:ABC") as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.base_url) as plain_bot:
        yield plain_bot


@asynccontextmanager
async def polling(app: Application[Any, Any, Any, Any, Any, Any]) -> AsyncIterator[None]:
    """Run an Application with default long polling against the fake, then stop it cleanly."""
    await app.initialize()
    try:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()
    finally:
        await app.shutdown()


def build_app(tg: FakeTelegram) -> Application[Any, Any, Any, Any, Any, Any]:
    return ApplicationBuilder().token(tg.token).base_url(tg.base_url).build()


async def test_polling_application_echoes_messages(tg: FakeTelegram) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    app = build_app(tg)
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with polling(app):
        assert app.bot.username == tg.bot_username  # from getMe
        tg.push_message(42, "hello")
        tg.push_message(42, "again")
        assert await tg.wait_for_text(42, "again") == "echo: again"

    assert tg.sent_texts(42) == ["echo: hello", "echo: again"]
    assert tg.calls_of("deleteWebhook"), "polling bootstraps by deleting the webhook"
    sent = tg.calls_of("sendMessage")[0].params
    assert sent["chat_id"] == 42 and isinstance(sent["chat_id"], int)
    # user messages 1 and 3, bot replies 2 and 4: one message_id counter per chat
    assert [m["message_id"] for m in [tg.message(42, 2), tg.last_message(42)] if m] == [2, 4]
    # the shutdown getUpdates(timeout=0) confirmed everything, so nothing is redelivered
    last_poll = tg.calls_of("getUpdates")[-1].params
    assert last_poll["timeout"] == 0 and last_poll["offset"] == 3


async def test_callback_query_is_answered_and_keyboard_removed(tg: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = [[InlineKeyboardButton("Yes", callback_data="consent:yes")]]
        await update.effective_message.reply_text(
            "Do you consent?", reply_markup=InlineKeyboardMarkup(keyboard)
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer("Thanks")
        await query.edit_message_reply_markup(None)

    app = build_app(tg)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    async with polling(app):
        tg.push_command(7, "/start")
        await tg.wait_for_text(7, "consent")
        markup = tg.calls_of("sendMessage")[0].params["reply_markup"]
        assert markup["inline_keyboard"][0][0]["callback_data"] == "consent:yes"  # parsed JSON
        asked = tg.last_message(7)
        assert asked is not None and "reply_markup" in asked

        tg.push_callback(7, "consent:yes")
        await tg.wait_for(lambda t: "edit_date" in (t.last_message(7) or {}), description="edit")

    assert tg.calls_of("answerCallbackQuery")[0].params["text"] == "Thanks"
    edited = tg.last_message(7)
    assert edited is not None and edited["message_id"] == asked["message_id"]
    assert edited["text"] == "Do you consent?"
    assert "reply_markup" not in edited, "no reply_markup removes the keyboard"
    assert tg.sent_texts(7) == ["Do you consent?"]


async def test_injected_429_raises_retry_after(tg: FakeTelegram, bot: Bot) -> None:
    tg.fail_next("sendMessage", status=429, retry_after=3)
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(1, "hi")
    assert err.value._retry_after.total_seconds() == 3
    await bot.send_message(1, "hi")  # only the next call failed
    assert [c.status for c in tg.calls_of("sendMessage")] == [429, 200]
    assert tg.sent_texts(1) == ["hi"]


async def test_unsupported_methods_are_recorded_as_errors(tg: FakeTelegram, bot: Bot) -> None:
    """The fake has only what the bot calls: anything else fails loudly, and is recorded."""
    with pytest.raises(BadRequest, match="not supported"):
        await bot.get_file("FILE-1")
    with pytest.raises(BadRequest, match="not supported"):
        await bot.edit_message_text("x", chat_id=1, message_id=1)
    (call,) = tg.calls_of("getFile")
    assert call.status == 400 and call.params["file_id"] == "FILE-1"
    assert call.error is not None and "getFile" in call.error


async def test_pushed_counts_every_update_pushed_taken_or_not(tg: FakeTelegram, bot: Bot) -> None:
    assert tg.pushed == 0
    first = tg.push_message(1, "a")
    tg.push_command(1, "/start")
    tg.push_media(1, "photo")
    assert (tg.pushed, tg.queued) == (3, 3)
    await bot.get_updates(timeout=0)
    await bot.get_updates(offset=first + 3, timeout=0)
    assert (tg.pushed, tg.queued) == (3, 0)
    tg.push_message(1, "again", update_id=first)  # a redelivery is pushed again
    assert tg.pushed == 4


async def test_wait_for_wakes_when_the_fake_changes(tg: FakeTelegram, bot: Bot) -> None:
    waiting = asyncio.create_task(tg.wait_for(lambda t: t.pushed == 1, timeout=30))
    await asyncio.sleep(0)  # the waiter is now asleep
    assert not waiting.done()
    tg.push_message(1, "wake up")
    await waiting
    sending = asyncio.create_task(tg.wait_for(lambda t: t.sent_texts(1) == ["hi"], timeout=30))
    await bot.send_message(1, "hi")
    await sending


async def test_wrong_token_is_rejected(tg: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        await Bot("999:WRONG", base_url=tg.base_url).get_me()
    assert tg.calls == []


async def test_webhook_delivery_reports_status_and_sends_secret(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook("https://example.invalid/hook", secret_token="s3cret")
    assert tg.webhook is not None and tg.webhook["secret_token"] == "s3cret"
    received: list[Update] = []

    async def hook(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != "s3cret":
            return web.Response(status=403)
        received.append(Update.de_json(await request.json(), bot))
        return web.Response()

    server = web.Application()
    server.router.add_post("/hook", hook)
    runner = web.AppRunner(server)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        assert await tg.deliver_webhook(url, tg.push_message(5, "via hook"), "s3cret") == 200
        assert await tg.deliver_webhook(url, {"update_id": 99}, secret_token="wrong") == 403
    finally:
        await runner.cleanup()
    assert received[0].effective_message is not None
    assert received[0].effective_message.text == "via hook"


async def test_media_updates_parse_in_ptb(tg: FakeTelegram, bot: Bot) -> None:
    for kind in MEDIA_KINDS:
        tg.push_media(3, kind, caption=kind)
    updates = await bot.get_updates(timeout=0)
    assert len(updates) == len(MEDIA_KINDS)
    for kind, update in zip(MEDIA_KINDS, updates, strict=True):
        message = update.effective_message
        assert message is not None and message.caption == kind
        media = getattr(message, kind)
        assert (media[-1] if kind == "photo" else media).file_id


async def test_offsets_confirm_and_repeated_update_id_is_redelivered(
    tg: FakeTelegram, bot: Bot
) -> None:
    first = tg.push_message(9, "once")
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [first]
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [first], "not confirmed"
    assert await bot.get_updates(offset=first + 1, timeout=0) == ()
    tg.push_message(9, "once", update_id=first)  # Telegram retrying the same update
    (again,) = await bot.get_updates(offset=first + 1, timeout=0)
    assert again.update_id == first


async def test_long_poll_waits_but_returns_when_an_update_arrives(
    tg: FakeTelegram, bot: Bot
) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=dt.timedelta(seconds=0.3)) == ()
    assert time.monotonic() - started >= 0.3
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    tg.push_message(1, "wake up")
    assert len(await poll) == 1 and time.monotonic() - started < 0.5


async def test_per_chat_rate_limit_is_retried_by_aioratelimiter(tg: FakeTelegram) -> None:
    tg.enforce_per_chat_rate(0.3)
    limiter = AIORateLimiter(max_retries=3)
    async with ExtBot(tg.token, base_url=tg.base_url, rate_limiter=limiter) as limited:
        await asyncio.gather(*(limited.send_message(4, f"m{i}") for i in range(3)))
    assert sorted(tg.sent_texts(4)) == ["m0", "m1", "m2"]
    assert tg.rate_limited >= 1 and any(c.status == 429 for c in tg.calls_of("sendMessage"))


async def test_edit_errors_match_telegram(tg: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(2, "same")
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(chat_id=2, message_id=message.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await bot.edit_message_reply_markup(chat_id=2, message_id=99)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(
            2,
            "x",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("b", callback_data="x" * 65)]]
            ),
        )
    assert await bot.delete_message(2, message.message_id)
    assert tg.deleted == [(2, message.message_id)] and tg.last_message(2) is None


async def test_wait_for_times_out_with_a_description(tg: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(8, "something else")
    with pytest.raises(AssertionError, match="something else"):
        await tg.wait_for_text(8, "never sent", timeout=0.1)


async def test_json_bodies_are_accepted_and_text_stays_text(tg: FakeTelegram) -> None:
    markup = '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}'
    body = {"chat_id": "6", "text": "42", "reply_markup": markup}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{tg.base_url}{tg.token}/sendMessage", json=body) as resp,
    ):
        result = (await resp.json())["result"]
    assert resp.status == 200 and result["chat"]["id"] == 6 and result["text"] == "42"
    assert tg.calls[0].params["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"
    assert tg.sent_texts(6) == ["42"]
