"""The web chat's translator: frames from the browser to neutral Inbound, answers to
numbered messages in the database (what the socket then sends).

No flow logic lives here. A frame becomes an :class:`~flows.messages.Inbound`, goes
through the intake service like every channel's (same lock, same transaction, dedupe on
the browser's message id), and what the chat shows of the turn (the enquirer's message,
the replies, and what a cancel blanks) is stored as the chat's next numbered messages in
that same transaction: storing them is delivering them, so a crash keeps the turn and
its messages together or neither, and the browser's resend is taken then. Desk messages
come through the outbox, numbered by their row, so a row sent again stores nothing twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.services.delivery import RepliesSender, RowSender
from bot.services.intake import IntakeService
from bot.services.outbox import GiveUp, Result, Retry, Sent
from bot.text import normalise
from bot.web.hub import Hub
from bot.web.rendering import bot_message, option_label, own_message, practitioner_message
from flows.copy import Copy
from flows.messages import Command, Inbound, InboundKind, Reply
from storage import web as web_store
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
CHANNEL = "web"
MAX_TEXT = 4_000  # characters in one message (about a page)
COMMANDS = {c.value: c for c in Command}
Message = tuple[str, dict[str, Any]]  # (origin, payload)


@dataclass(frozen=True, slots=True)
class Taken:
    """What became of a message from the browser."""

    duplicate: bool
    """It had been taken already (a resend): nothing changed."""
    forgot: bool = False
    """The conversation was deleted: the browser blanks what the enquirer wrote."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A chat opened by ``hello``: its id, and a token when a new session was made."""

    chat_id: str
    token: str | None


class WebChat:
    """Sessions, turns and the desk's messages for web chats."""

    def __init__(
        self,
        *,
        intake: IntakeService,
        sessions: async_sessionmaker[AsyncSession],
        hub: Hub,
        copy: Copy,
        clock: Clock,
        retention_days: int,
    ) -> None:
        self._intake = intake
        self._sessions = sessions
        self._hub = hub
        self.copy = copy
        self._clock = clock
        self._retention = timedelta(days=retention_days)

    # Sessions ------------------------------------------------------------------------

    async def open(self, token: str | None) -> Opened | None:
        """The chat for ``token``; a new session (and its first question) when there is
        none. None: the token is not (or no longer) valid, and nothing was made."""
        now = self._clock()
        if token:
            async with self._sessions() as session:
                chat_id = await web_store.chat_for(session, token, now)
            return Opened(chat_id, None) if chat_id else None
        token, chat_id = secrets.token_urlsafe(32), "w" + secrets.token_hex(12)
        async with self._sessions() as session, session.begin():
            await web_store.open_session(
                session, token=token, chat_id=chat_id, now=now, expires_at=now + self._retention
            )
        await self.turn(chat_id, Inbound.commanded(Command.START), client_id="start", echo=None)
        return Opened(chat_id, token)

    async def end(self, token: str) -> bool:
        """Quick exit: forget the session and what was shown in it. False: no such session."""
        async with self._sessions() as session, session.begin():
            chat_id = await web_store.chat_for(session, token, self._clock())
            if chat_id is None:
                return False
            await web_store.end_session(session, chat_id)
        log.info("web chat session ended by the enquirer")
        return True

    async def after(self, chat_id: str, seq: int) -> list[web_store.Numbered]:
        """What the chat shows after message ``seq``."""
        async with self._sessions() as session:
            return await web_store.after(session, chat_id, seq)

    # Frames --------------------------------------------------------------------------

    def inbound(self, frame: dict[str, Any]) -> Inbound | str:
        """The Inbound a frame means, or the copy key of why it is refused."""
        kind, question = frame.get("type"), frame.get("question")
        question = str(question)[:64] if isinstance(question, str) else None
        option = frame.get("option")
        match kind:
            case "say":
                text = frame.get("text")
                if not isinstance(text, str):
                    return "web.not_understood"
                if len(text) > MAX_TEXT:
                    return "web.too_long"
                text = normalise(text)
                return Inbound.typed(text) if text else "web.empty"
            case "choose" if isinstance(option, str):
                return Inbound.chose(option[:64], question=question or "?")
            case "toggle" if isinstance(option, str):
                return Inbound.toggled(option[:64], question=question or "?")
            case "done":
                return Inbound.chose(question=question or "?")
            case "command" if frame.get("command") in COMMANDS:
                return Inbound.commanded(COMMANDS[str(frame["command"])], question=question)
            case "attachment":
                return "web.attachment_refused"
        return "web.not_understood"

    async def take(self, chat_id: str, inbound: Inbound, client_id: str) -> Taken:
        """Handle one message from the browser."""
        echo = await self._echo(chat_id, inbound)
        return await self.turn(chat_id, inbound, client_id=client_id, echo=echo)

    async def turn(
        self, chat_id: str, inbound: Inbound, *, client_id: str, echo: str | None
    ) -> Taken:
        """Run the turn through intake, storing what the chat shows of it in the turn's
        transaction (see the module docstring)."""

        async def shown(
            connection: AsyncConnection, replies: tuple[Reply, ...], forgot: bool
        ) -> None:
            messages: list[Message] = []
            if echo is not None:
                messages.append((f"in:{client_id}", own_message(echo, client_id)))
            tag = f"r:{client_id}"  # unique in the chat: intake takes this id once
            update = self._is_tick(inbound, replies)
            messages += [
                (f"{tag}:{i}", bot_message(r, update=update)) for i, r in enumerate(replies)
            ]
            async with AsyncSession(bind=connection) as session:
                if forgot:
                    await web_store.redact_own(session, chat_id, self.copy("web.deleted"))
                await web_store.append(session, chat_id, messages, self._clock())

        handled = await self._intake.handle(
            CHANNEL, chat_id, inbound, dedupe=(f"web:{chat_id}", client_id[:100]), with_turn=shown
        )
        if handled.duplicate:
            return Taken(duplicate=True)
        self._hub.notify(chat_id)
        return Taken(duplicate=False, forgot=handled.forgot)

    async def say_directly(self, chat_id: str, replies: Sequence[Reply]) -> None:
        """Replies that belong to no turn (/status, /privacy)."""
        tag = uuid4().hex
        messages = [(f"d:{tag}:{i}", bot_message(r)) for i, r in enumerate(replies)]
        await self._store(chat_id, messages)

    async def status(self, chat_id: str) -> None:
        """The enquirer asked where their enquiry is: answered at once, not as a turn."""
        await self.say_directly(chat_id, await self._intake.status(CHANNEL, chat_id))

    # The outbox's senders ------------------------------------------------------------

    def senders(self) -> tuple[dict[str, RowSender], dict[str, RepliesSender]]:
        """For the outbox worker: a desk message to a web chat (by its row, whose id
        numbers it once), and a turn's replies (rows written by a version that stored a
        web turn's replies apart from the turn, met after an upgrade)."""
        return {CHANNEL: self._send_row}, {CHANNEL: self._send_replies}

    async def _send_row(self, row: OutboxMessage) -> Result:
        payload = row.payload or {}
        chat_id, text = str(payload.get("chat_id")), str(payload.get("text", ""))
        return await self._send(chat_id, [(f"m:{row.id}", practitioner_message(text))])

    async def _send_replies(self, chat_id: str, replies: Sequence[Reply], done: int) -> Result:
        tag = uuid4().hex
        messages = [(f"o:{tag}:{i}", bot_message(r)) for i, r in enumerate(replies[done:])]
        return await self._send(chat_id, messages)

    async def _send(self, chat_id: str, messages: list[Message]) -> Result:
        """Stored for the browser, if the chat is still there (it was closed: never)."""
        try:
            async with self._sessions() as session:
                live = await web_store.is_open(session, chat_id, self._clock())
            if not live:
                return GiveUp("the web chat was closed or has expired")
            await self._store(chat_id, messages)
        except Exception as error:
            return Retry(f"web chat store failed: {type(error).__name__}")
        return Sent()

    # Plumbing ------------------------------------------------------------------------

    async def _echo(self, chat_id: str, inbound: Inbound) -> str | None:
        """What the enquirer's message reads as in their own chat (a button: its label)."""
        if inbound.kind is InboundKind.TEXT:
            return inbound.text
        if inbound.kind is InboundKind.COMMAND and inbound.command is not None:
            return self.copy(f"web.command_{inbound.command.value}")
        if inbound.kind is not InboundKind.CHOOSE or not inbound.question:
            return None
        async with self._sessions() as session:
            asked = await web_store.latest_with_question(session, chat_id, inbound.question)
        if not inbound.option_ids:
            return self.copy("web.done") if asked else None
        return option_label(asked, inbound.option_ids[0])

    @staticmethod
    def _is_tick(inbound: Inbound, replies: tuple[Reply, ...]) -> bool:
        """A tick answered by the same question redrawn (as Telegram edits it in place)."""
        return (
            inbound.kind is InboundKind.TOGGLE
            and len(replies) == 1
            and replies[0].multiple
            and replies[0].question == inbound.question
        )

    async def _store(self, chat_id: str, messages: list[Message]) -> None:
        """Number and store messages that belong to no turn, then wake the chat's sockets."""
        for attempt in range(5):
            try:
                async with self._sessions() as session, session.begin():
                    await web_store.append(session, chat_id, messages, self._clock())
                break
            except IntegrityError:  # another writer numbered the chat first: again
                log.info("web chat numbering collided, retrying (attempt %d)", attempt + 1)
        else:
            raise RuntimeError("web chat messages could not be numbered")
        self._hub.notify(chat_id)
