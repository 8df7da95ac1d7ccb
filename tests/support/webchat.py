"""The service with its web chat, and a chat client speaking the socket protocol
(bot/web/PROTOCOL.md) with the real ``websockets`` library over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect

from bot.app import Helpline, build
from bot.app import running as service_running
from bot.settings import Settings
from storage import db
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram import settings_for

DESK = "C0DESK"
Frame = dict[str, Any]


@dataclass
class WebService:
    """A running service: where its chat is, and the parts a test looks into."""

    helpline: Helpline
    settings: Settings
    slack: FakeSlack | None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.http_port}/chat/socket"


def web_settings(tg: FakeTelegram, database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "outbox_poll_seconds": 0.05,
        "outbox_backoff_seconds": 0.05,
        "web_poll_seconds": 0.05,
    }
    values.update(changes)
    return settings_for(tg, database_url, **values)


@asynccontextmanager
async def web_service(
    database_url: str, *, slack: bool = False, **changes: Any
) -> AsyncIterator[WebService]:
    """The whole service (fake Telegram, and the fake Slack desk when ``slack``)."""
    async with FakeTelegram() as tg:
        if not slack:
            settings = web_settings(tg, database_url, **changes)
            async with serving(settings) as service:
                yield service
            return
        async with FakeSlack() as fake_slack:
            settings = web_settings(
                tg,
                database_url,
                slack_bot_token=fake_slack.token,
                slack_signing_secret="slack-signing-secret",
                slack_channel_id=DESK,
                slack_api_url=fake_slack.base_url,
                **changes,
            )
            async with serving(settings, fake_slack) as service:
                yield service


@asynccontextmanager
async def serving(settings: Settings, slack: FakeSlack | None = None) -> AsyncIterator[WebService]:
    """One service on ``settings`` until the block ends (a replica, or after a restart)."""
    helpline = build(settings)
    async with service_running(helpline):
        yield WebService(helpline, settings, slack)


NUMBERED = ("message", "forgotten")
"""The frames numbered in the chat's order (``seq``), counted in a reconnect's ``after``."""


@dataclass
class ChatClient:
    """A browser's side of the protocol: hello, frames with ids, numbered messages."""

    url: str
    origin: str
    token: str | None = None
    last: int = 0
    messages: list[Frame] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self, *, after: int | None = None) -> Frame:
        mark = len(self.frames)
        self.ws = await connect(self.url, origin=self.origin)  # type: ignore[arg-type]
        await self.send(
            {"type": "hello", "token": self.token, "after": self.last if after is None else after}
        )
        self._reader = asyncio.create_task(self._read(self.ws))
        welcome = await self.until(lambda f: f["type"] == "welcome", start=mark)
        self.token = welcome.get("token", self.token)
        return welcome

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self.ws = self._reader = None

    async def send(self, frame: Frame) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def turn(self, frame: Frame, *, client_id: str | None = None) -> Frame:
        """Send a frame with an id and wait for its ack (or the notice that refused it)."""
        frame = {**frame, "id": client_id or uuid4().hex}
        await self.send(frame)
        return await self.until(
            lambda f: f.get("id") == frame["id"] and f["type"] in ("ack", "notice"),
            start=len(self.frames),
        )

    async def say(self, text: str) -> Frame:
        return await self.turn({"type": "say", "text": text})

    async def tap(self, label: str) -> Frame:
        """Press the button labelled ``label`` (or containing it) under the latest question."""
        asked = self.question()
        options = asked.get("options", [])
        found = [o for o in options if o["label"].lower() == label.lower()] or [
            o for o in options if label.lower() in o["label"].lower()
        ]
        if label.lower() == "done" and asked.get("multiple"):
            return await self.turn({"type": "done", "question": asked["question"]})
        if not found:
            raise AssertionError(f"no option like {label!r}: {[o['label'] for o in options]}")
        kind = "toggle" if asked.get("multiple") else "choose"
        return await self.turn(
            {"type": kind, "option": found[0]["id"], "question": asked.get("question")}
        )

    async def first_question(self) -> Frame:
        """The bot's first question, waiting for it (a new chat opens with one)."""
        return await self.until(lambda f: f["type"] == "message" and bool(f.get("question")))

    async def tap_after_question(self, label: str) -> Frame:
        """Wait for the first question, then press ``label``."""
        await self.first_question()
        return await self.tap(label)

    def question(self) -> Frame:
        """The newest bot message with buttons (ticks redrawn included)."""
        for message in reversed(self.messages):
            if message.get("from") == "bot" and (message.get("options") or message.get("question")):
                return message
        raise AssertionError("no question asked yet")

    def texts(self, start: int = 0) -> list[str]:
        return [m["text"] for m in self.messages[start:]]

    async def until(
        self, predicate: Callable[[Frame], bool], *, start: int = 0, timeout: float = 10
    ) -> Frame:
        """The first frame received (from ``start`` on) that matches, waiting for it."""

        async def found() -> Frame:
            seen = start
            while True:
                for frame in self.frames[seen:]:
                    if predicate(frame):
                        return frame
                seen = len(self.frames)
                self._news.clear()
                await self._news.wait()

        return await asyncio.wait_for(found(), timeout)

    async def message_like(self, words: str, *, start: int = 0, timeout: float = 10) -> Frame:
        return await self.until(
            lambda f: f["type"] == "message" and words.lower() in f.get("text", "").lower(),
            start=start,
            timeout=timeout,
        )

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                if frame["type"] in NUMBERED:
                    assert frame["seq"] == self.last + 1 or frame["seq"] <= self.last, (
                        f"gap: {self.last} then {frame['seq']}"
                    )
                    if frame["seq"] > self.last:
                        self.last = frame["seq"]
                        if frame["type"] == "message":
                            self.messages.append(frame)
                self._news.set()
        except Exception:
            self._news.set()


# The database itself refusing the enquirer's own messages in a web chat (what the
# browser is shown of what they sent), as a failing disk or a dropped connection would:
# a real fault in the real database, so nothing of the service is stood in for.
_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_echo BEFORE INSERT ON web_messages"
        " WHEN NEW.origin LIKE 'in:%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_echo() RETURNS trigger AS"
        " $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_echo BEFORE INSERT ON web_messages FOR EACH ROW"
        " WHEN (NEW.origin LIKE 'in:%') EXECUTE FUNCTION refuse_echo()",
    ],
}
_ALLOW = {
    "sqlite": ["DROP TRIGGER refuse_echo"],
    "postgresql": ["DROP TRIGGER refuse_echo ON web_messages", "DROP FUNCTION refuse_echo()"],
}


@asynccontextmanager
async def echoes_refused(database_url: str) -> AsyncIterator[None]:
    """While the block runs, storing what an enquirer sent in a web chat fails."""
    engine = db.create_engine(database_url)
    dialect = engine.dialect.name
    try:
        async with engine.begin() as connection:
            for statement in _REFUSE[dialect]:
                await connection.execute(text(statement))
        yield
    finally:
        async with engine.begin() as connection:
            for statement in _ALLOW[dialect]:
                await connection.execute(text(statement))
        await engine.dispose()


def client_for(service: WebService, **kwargs: Any) -> ChatClient:
    return ChatClient(service.socket_url, origin=service.base, **kwargs)


async def chat_at_first_question(service: WebService, **kwargs: Any) -> ChatClient:
    """A new enquirer's chat, opened and showing the bot's first question."""
    client = client_for(service, **kwargs)
    await client.open()
    await client.first_question()
    return client


async def page_on_chat(service: WebService, client: ChatClient) -> ChatClient:
    """A page opened afresh on ``client``'s chat (same token: another tab, or the chat
    reopened), caught up with everything it shows."""
    tab = client_for(service, token=client.token)
    await tab.open(after=0)
    await tab.until(lambda f: f["type"] in NUMBERED and f["seq"] == client.last)
    return tab


async def complete_enquiry(client: ChatClient) -> list[str]:
    """A teacher's whole enquiry by buttons and text, up to the confirmation (as on
    Telegram, see tests/support/telegram.py); the texts from the bot after the last step."""
    await client.first_question()
    for step in (
        "School or college staff",
        "Teacher",
        "Secondary",
        ":south east",
        "social network",
        "TikTok",
        "Online Reputation",
        "Done",
        ":Fake account using our logo",
        ":Someone set up an account pretending to be the school.",
        "Done",
        ":https://www.tiktok.com/@not_our_school",
        "not yet",
        "No",
        "this chat",
        ":skip",
    ):
        ack = await (client.say(step[1:]) if step.startswith(":") else client.tap(step))
        assert ack["type"] == "ack" and not ack["duplicate"], ack
    before = len(client.messages)
    await client.tap("Send my enquiry")
    return client.texts(before)


def reference_in(texts: list[str]) -> str:
    return next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
