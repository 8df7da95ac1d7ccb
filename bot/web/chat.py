"""The web chat's translator: frames from the browser to neutral Inbound, answers to
numbered messages in the database (what the socket then sends).

No flow logic lives here. A frame becomes an :class:`~flows.messages.Inbound`, goes
through the intake service like every channel's (same lock, same transaction, dedupe on
the browser's message id), and what the chat shows of the turn (the enquirer's message,
the replies, and what a cancel blanks) is stored as the chat's next numbered messages in
that same transaction: storing them is delivering them, so a crash keeps the turn and
its messages together or neither, and the browser's resend is taken then. Desk messages
come through the outbox, numbered by their row, so a row sent again stores nothing twice.

Erasure on request ("Delete what I told you", or ``/delete`` typed) is answered here, not
by the flow, as Telegram's ``/delete`` is: a confirmation, then on Yes the erasure, the
blanked chat and the answer in one transaction, under the chat's lock like a turn.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar
from uuid import uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.services.delivery import RepliesSender, RowSender
from bot.services.intake import IntakeService
from bot.services.outbox import GiveUp, Result, Retry, Sent
from bot.text import normalise
from bot.web.hub import Hub
from bot.web.rendering import (
    bot_message,
    erase_question,
    option_label,
    own_message,
    practitioner_message,
)
from flows.copy import Copy
from flows.messages import Command, Inbound, InboundKind, Reply
from flows.privacy import ERASE, ERASE_YES, erase_confirmation, erased_text
from storage import conversations as convo_store
from storage import prepared
from storage import web as web_store
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
CHANNEL = "web"
MAX_TEXT = 4_000  # characters in one message (about a page)
COMMANDS = {c.value: c for c in Command}
Message = tuple[str, dict[str, Any]]  # (origin, payload)
DELETE = "delete"  # the command frame, or "/delete" typed, that asks to erase the chat
T = TypeVar("T")


class EraseChat(Protocol):
    """:meth:`~bot.services.privacy.PrivacyService.erase_chat`: the references erased."""

    async def __call__(
        self, channel: str, chat_id: str, *, within: AsyncSession | None = None
    ) -> list[str]:
        """Erase the chat and its cases' personal data (in ``within``'s transaction)."""
        ...


WEB_NOTES = {"reply_via": "web.reply_via_note"}
"""Questions the web chat adds a line to (their wording key): see ``WebChat._for_the_web``."""


@dataclass(frozen=True, slots=True)
class Taken:
    """What became of a message from the browser."""

    duplicate: bool
    """It had been taken already (a resend): nothing changed."""
    erased: bool = False
    """The chat and its cases were erased: the cards' "erased" wait in the outbox."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """A frame about erasing the chat: a request (``answer`` None), or the answer to the
    confirmation asking ``question``."""

    echo: str | None = None
    """What the request reads as in the enquirer's chat (the button's name, or as typed)."""
    answer: str | None = None
    question: str = ""


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
        erase_chat: EraseChat,
    ) -> None:
        """``erase_chat``: the privacy service's, for the enquirer's own erasure request."""
        self._erase_chat = erase_chat
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
                (f"{tag}:{i}", bot_message(self._for_the_web(r), update=update))
                for i, r in enumerate(replies)
            ]
            now = self._clock()
            async with prepared.session_in(connection) as session:
                await web_store.append(session, chat_id, messages, now)
                if forgot:  # after: the message that deleted it is blanked too
                    deleted = self.copy("web.deleted")
                    await web_store.forget(session, [chat_id], deleted, now, everything=False)

        handled = await self._intake.handle(
            CHANNEL, chat_id, inbound, dedupe=(f"web:{chat_id}", client_id[:100]), with_turn=shown
        )
        if handled.duplicate:
            return Taken(duplicate=True)
        self._hub.notify(chat_id)
        return Taken(duplicate=False)

    def erasure(self, frame: dict[str, Any]) -> Erasure | None:
        """The erasure a frame asks for or answers; None: the frame is for the flow."""
        kind, question, text = frame.get("type"), frame.get("question"), frame.get("text")
        match kind:
            case "command" if frame.get("command") == DELETE:
                return Erasure(echo=self.copy("commands.delete"))
            case "say" if isinstance(text, str) and text.strip().casefold() == f"/{DELETE}":
                return Erasure(echo=text.strip())
            case "choose" if isinstance(question, str) and erase_question(question[:64]):
                option = frame.get("option")
                return Erasure(answer=str(option)[:64], question=question[:64])
        return None

    async def erase(self, chat_id: str, erasure: Erasure, client_id: str) -> Taken:
        """Ask to confirm; on Yes to the confirmation the chat shows last, erase the chat and
        its cases (the cards say so) and blank what it showed. Anything else erases nothing:
        No, a confirmation that has passed, one this chat was never asked, a resent frame."""
        async with self._intake.chat_lock(CHANNEL, chat_id):  # never amid one of its turns
            taken = await self._write(
                chat_id, lambda s: self._erasing(s, chat_id, erasure, client_id)
            )
        if taken.erased:
            self._intake.on_enqueued()  # the cards' "erased" are waiting in the outbox
        return taken

    async def _erasing(
        self, session: AsyncSession, chat_id: str, erasure: Erasure, client_id: str
    ) -> tuple[list[Message], Taken]:
        """One erasure frame, in the transaction that stores what the chat says of it."""
        if not await convo_store.first_time(
            session, f"web:{chat_id}", client_id[:100], self._clock()
        ):
            return [], Taken(duplicate=True)
        tag = f"r:{client_id}"  # unique in the chat: the id was taken once, just now
        if erasure.answer is None:
            confirm = erase_confirmation(self.copy, f"{ERASE}:{secrets.token_hex(4)}")
            echo = [(f"in:{client_id}", own_message(erasure.echo or "", client_id))]
            return [*echo, (f"{tag}:0", bot_message(confirm))], Taken(duplicate=False)
        shown = await web_store.from_bot(session, chat_id)
        if not shown or shown[0].payload.get("question") != erasure.question:
            stale = bot_message(Reply(self.copy("web.erase_stale")))
            return [(f"{tag}:0", stale)], Taken(duplicate=False)
        label = option_label(shown[0].payload, erasure.answer) or ""
        echo = [(f"in:{client_id}", own_message(label, client_id))] if label else []
        if erasure.answer != ERASE_YES:
            kept = [bot_message(Reply(self.copy("data_protection.delete_kept")))]
            # The question the confirmation covered is asked again, with its buttons.
            earlier = next(
                (m for m in shown[1:] if not erase_question(m.payload.get("question"))), None
            )
            if earlier is not None and (
                earlier.payload.get("options") or earlier.payload.get("question")
            ):
                kept.append({k: v for k, v in earlier.payload.items() if k != "update"})
            said = [(f"{tag}:{i}", m) for i, m in enumerate(kept)]
            return [*echo, *said], Taken(duplicate=False)
        references = await self._erase_chat(CHANNEL, chat_id, within=session)
        log.info("an enquirer erased their web chat and %d case(s)", len(references))
        done = bot_message(Reply(erased_text(self.copy, references, "web.erased")))
        return [*echo, (f"{tag}:0", done)], Taken(duplicate=False, erased=True)

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
        messages = [
            (f"o:{tag}:{i}", bot_message(self._for_the_web(r)))
            for i, r in enumerate(replies[done:])
        ]
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

    def _for_the_web(self, reply: Reply) -> Reply:
        """A question whose answer means less on the web than elsewhere, with a line
        saying so (a reply "here" reaches a web chat only while the browser keeps it)."""
        note = WEB_NOTES.get(reply.question or "")
        return replace(reply, text=f"{reply.text}\n{self.copy(note)}") if note else reply

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

        async def work(session: AsyncSession) -> tuple[list[Message], None]:
            return messages, None

        await self._write(chat_id, work)

    async def _write(
        self, chat_id: str, work: Callable[[AsyncSession], Awaitable[tuple[list[Message], T]]]
    ) -> T:
        """Run ``work`` and number and store the messages it returns in one transaction,
        then wake the chat's sockets; what ``work`` returned beside its messages."""
        for attempt in range(5):
            try:
                async with self._sessions() as session, session.begin():
                    messages, outcome = await work(session)
                    await web_store.append(session, chat_id, messages, self._clock())
                break
            except IntegrityError:  # another writer numbered the chat first: again
                log.info("web chat numbering collided, retrying (attempt %d)", attempt + 1)
        else:
            raise RuntimeError("web chat messages could not be numbered")
        self._hub.notify(chat_id)
        return outcome
