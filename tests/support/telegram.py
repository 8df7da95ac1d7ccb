"""Run the real service against the fake Telegram server, and talk to it like a user.

A turn is over when the service has handled the update it was sent (its per-chat
processor counts them), so the helpers wait for exactly that rather than for a quiet
moment; only a service in another process (which we cannot see into) is given a short
settling time after its first reply.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.app import build
from bot.app import running as service_running
from bot.settings import Settings
from bot.telegram.processing import PerChatUpdateProcessor
from storage import db
from storage.models import Case
from tests.fakes.telegram_api import FakeTelegram

# The processor of the service running in this process against each fake, by id(fake).
_processors: dict[int, PerChatUpdateProcessor] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(tg: FakeTelegram, database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "telegram_bot_token": tg.token,
        "telegram_api_base_url": tg.base_url,
        "http_port": free_port(),
        "telegram_webhook_url": None,
        "telegram_webhook_secret": None,
        # Tests talk fast; the per-chat limit itself is checked in its own test.
        "telegram_chat_rate": 1000.0,
        "telegram_chat_burst": 1000,
    }
    values.update(changes)
    return Settings(**values)


@asynccontextmanager
async def running(
    settings: Settings, tg: FakeTelegram, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[Settings]:
    """The service running in this event loop until the block ends."""
    helpline = build(settings, clock=clock) if clock else build(settings)
    assert helpline.telegram is not None, "these tests run the Telegram channel"
    processor = helpline.telegram.application.update_processor
    assert isinstance(processor, PerChatUpdateProcessor)
    started = "setWebhook" if settings.telegram_webhook_url else "getUpdates"
    async with service_running(helpline):
        await tg.wait_for(lambda t: bool(t.calls_of(started)), timeout=30)
        _processors[id(tg)] = processor
        try:
            yield settings
        finally:
            _processors.pop(id(tg), None)


def buttons(tg: FakeTelegram, chat_id: int) -> list[dict[str, Any]]:
    message = tg.last_message(chat_id)
    assert message is not None, "the bot has not written in this chat"
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def press_offered(tg: FakeTelegram, chat_id: int, label: str) -> int:
    """Press ``label`` on the newest message offering it: after a SIGKILL a reply the dead
    process sent but had not yet recorded as sent goes again (at least once) once its
    lease runs out, and can land after newer messages."""
    for message in tg.bot_messages(chat_id):
        markup = message.get("reply_markup") or {}
        for button in [b for row in markup.get("inline_keyboard", []) for b in row]:
            if button["text"].lower() == label.lower():
                return tg.push_callback(chat_id, button["callback_data"])
    raise AssertionError(f"no message offers {label!r}")


def press(tg: FakeTelegram, chat_id: int, label: str) -> int:
    """Press the button labelled ``label`` (or, failing that, containing it) on the latest message."""
    found = buttons(tg, chat_id)
    exact = [b for b in found if b["text"].lower() == label.lower()]
    for button in exact or [b for b in found if label.lower() in b["text"].lower()]:
        return tg.push_callback(chat_id, button["callback_data"])
    raise AssertionError(f"no button like {label!r}: {[b['text'] for b in buttons(tg, chat_id)]}")


async def replies_settle(
    tg: FakeTelegram, chat_id: int, before: int, handled: int | None = None
) -> list[str]:
    """Wait until the bot has said something new in the chat and (when the service runs
    in this process) has handled ``handled`` updates in all; return the new texts."""
    await tg.wait_for(lambda t: len(t.sent_texts(chat_id)) > before, timeout=10)
    processor = _processors.get(id(tg))
    if processor is None:  # a service in another process: let its turn finish
        await asyncio.sleep(0.05)
    elif handled is not None:
        await asyncio.wait_for(processor.wait_finished(handled), timeout=10)
    return tg.sent_texts(chat_id)[before:]


def next_handled(tg: FakeTelegram, updates: int = 1) -> int | None:
    """How many updates the in-process service will have handled once the next
    ``updates`` are (None when the service runs in another process)."""
    processor = _processors.get(id(tg))
    return None if processor is None else processor.finished + updates


async def say(tg: FakeTelegram, chat_id: int, text: str) -> list[str]:
    before, handled = len(tg.sent_texts(chat_id)), next_handled(tg)
    if text.startswith("/"):
        tg.push_command(chat_id, text)
    else:
        tg.push_message(chat_id, text)
    return await replies_settle(tg, chat_id, before, handled)


async def tap(tg: FakeTelegram, chat_id: int, label: str) -> list[str]:
    before, handled = len(tg.sent_texts(chat_id)), next_handled(tg)
    press(tg, chat_id, label)
    return await replies_settle(tg, chat_id, before, handled)


async def complete_enquiry(
    tg: FakeTelegram, chat_id: int, link: str = "https://www.tiktok.com/@not_our_school"
) -> list[str]:
    """A teacher's whole enquiry by buttons and text, up to the confirmation."""
    await say(tg, chat_id, "/start")
    await tap(tg, chat_id, "School or college staff")
    await tap(tg, chat_id, "Teacher")
    await tap(tg, chat_id, "Secondary")
    await say(tg, chat_id, "south east")
    await tap(tg, chat_id, "social network")
    await tap(tg, chat_id, "TikTok")
    # Ticks edit the same message in place; Done moves on.
    press(tg, chat_id, "Online Reputation")
    await tg.wait_for(lambda t: "✅" in buttons(t, chat_id)[0]["text"], timeout=5)
    await tap(tg, chat_id, "Done")
    await say(tg, chat_id, "Fake account using our logo")
    await say(tg, chat_id, "Someone set up an account pretending to be the school.")
    await tap(tg, chat_id, "Done")
    await say(tg, chat_id, link)
    await tap(tg, chat_id, "not yet")
    await tap(tg, chat_id, "No")
    await tap(tg, chat_id, "this chat")
    await say(tg, chat_id, "skip")
    return await tap(tg, chat_id, "Send my enquiry")


WEBHOOK_SECRET = "s3cret-value"


def webhook_settings(
    tg: FakeTelegram,
    database_url: str,
    url: str = "https://helpline.example.org/telegram/webhook",
    **changes: Any,
) -> Settings:
    """The service in webhook mode: Telegram is told ``url`` (public) and our WEBHOOK_SECRET."""
    return settings_for(
        tg,
        database_url,
        telegram_webhook_url=url,
        telegram_webhook_secret=WEBHOOK_SECRET,
        **changes,
    )


def local(settings: Settings, path: str = "/telegram/webhook") -> str:
    """Where the webhook really listens in a test (the public URL is not reachable)."""
    return f"http://127.0.0.1:{settings.http_port}{path}"


async def cases_in(database_url: str) -> list[Case]:
    """Every case in the database, read from a connection of its own (the service holds its own)."""
    engine = db.create_engine(database_url)
    try:
        async with db.session_factory(engine)() as session:
            return list((await session.execute(select(Case))).scalars().all())
    finally:
        await engine.dispose()
