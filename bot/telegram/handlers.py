"""The Telegram channel: translate updates to Inbound, render Replies as messages and buttons.

No flow logic lives here. Each handler parses the update, calls the intake service and
renders what comes back. Media is never downloaded: the message is deleted from the
chat and the flow is told only that an attachment arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import logs
from bot.services.intake import Handled, IntakeService
from bot.locks import KeyedLocks
from bot.services.outbox import GiveUp, Result, Retry, Sent
from bot.services.replies import ReplyLedger
from bot.telegram.transport import AiohttpRequest
from bot.text import normalise
from flows.copy import Copy
from flows.messages import Command, Inbound, Reply

log = logging.getLogger(__name__)
CHANNEL = "telegram"
MAX_LIMITED_CHATS = 10_000
MAX_ALBUMS = 1_000  # media_group_ids remembered, so an album gets one refusal
PER_CHAT_ENDPOINTS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup"})
NAV = "nav"
SEP = "|"

FLOW_COMMANDS = {
    "start": Command.START,
    "help": Command.HELP,
    "back": Command.BACK,
    "restart": Command.RESTART,
    "cancel": Command.CANCEL,
}
UNLIMITED = 2**31 - 1  # PTB's own concurrency cap, set out of the way (see below)
MENU = ("start", "help", "back", "restart", "cancel", "status", "privacy")
MEDIA = (
    filters.PHOTO
    | filters.VIDEO
    | filters.Document.ALL
    | filters.VOICE
    | filters.AUDIO
    | filters.Sticker.ALL
    | filters.ANIMATION
    | filters.VIDEO_NOTE
    | filters.CONTACT
    | filters.LOCATION
    | filters.POLL
    | filters.Dice.ALL
    | filters.STORY
)


@dataclass
class UpdateOutcome:
    """How handling one update went, for whoever fed it in (the webhook's inbox)."""

    failures: list[BaseException] = field(default_factory=list)
    consumed: bool = False
    """The update reached the intake service, which removed it from the inbox."""


_OUTCOME: ContextVar[UpdateOutcome | None] = ContextVar("telegram_outcome", default=None)


@contextlib.contextmanager
def outcome_noted() -> Iterator[UpdateOutcome]:
    """Collect how the handlers of an update processed in this block did.

    PTB passes a handler's exception to the error handler rather than raising it; the
    webhook uses this to keep a failed update in its inbox, to be handled again.
    """
    noted = UpdateOutcome()
    token = _OUTCOME.set(noted)
    try:
        yield noted
    finally:
        _OUTCOME.reset(token)


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Chats run in parallel; each chat's updates run one at a time, in arrival order.

    PTB takes its concurrency slot before calling us, so an update queued behind its own
    chat would sit on a slot while it waits, and one chat sending a flood of messages could
    hold every slot and stall everyone else. So PTB's limit is left wide open and ours is
    taken after the chat's lock: only updates that can run now count against it.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(UNLIMITED)
        self._slots = asyncio.BoundedSemaphore(max_concurrent_updates)
        self._locks = KeyedLocks()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        async with self._locks.hold(chat.id if chat else None), self._slots:
            await coroutine

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


# Callback data: "<question>|<verb>|<option>" (well under Telegram's 64 bytes) ---------------


def button_data(question: str | None, verb: str, option_id: str) -> str:
    data = SEP.join((question or "", verb, option_id))
    return data if len(data.encode()) <= 64 else SEP.join(("", "c", "stale"))


def inbound_from_button(data: str) -> Inbound:
    """The Inbound a pressed button means; anything unreadable is treated as stale."""
    parts = data.split(SEP)
    if len(parts) != 3:
        return Inbound.chose("", question="?")
    question, verb, option_id = parts
    if verb == NAV and option_id in {c.value for c in Command}:
        return Inbound.commanded(Command(option_id), question=question or None)
    if verb == "t":
        return Inbound.toggled(option_id, question=question or "?")
    if verb == "d":
        return Inbound.chose(question=question or "?")
    return Inbound.chose(option_id, question=question or "?")


def keyboard(reply: Reply, copy: Copy) -> InlineKeyboardMarkup | None:
    """Options one per row; ticks and a Done button for a multiple choice; a Back button."""
    rows: list[list[InlineKeyboardButton]] = []
    for option in reply.options:
        if reply.multiple:
            tick = copy("channel.ticked" if option.id in reply.selected else "channel.unticked")
            data = button_data(reply.question, "t", option.id)
            rows.append([InlineKeyboardButton(tick + option.label, callback_data=data)])
        else:
            data = button_data(reply.question, "c", option.id)
            rows.append([InlineKeyboardButton(option.label, callback_data=data)])
    if reply.multiple:
        done = button_data(reply.question, "d", reply.done_id or "")
        rows.append([InlineKeyboardButton(copy("channel.done_button"), callback_data=done)])
    if reply.question and reply.question != "role_group":
        back = button_data(reply.question, NAV, Command.BACK.value)
        rows.append([InlineKeyboardButton(copy("channel.back_button"), callback_data=back)])
    return InlineKeyboardMarkup(rows) if rows else None


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Split long text at paragraph or line breaks so no message exceeds Telegram's limit."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(
            text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit)
        )
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text else parts


def merge_replies(replies: Sequence[Reply]) -> list[Reply]:
    """Fold plain-text replies into the next one: fewer messages, same order and words.

    Telegram allows about one message a second per chat, and one bubble reads better
    than three. A reply with buttons (options, or a question's Back button) ends a
    message, so buttons stay under their question.
    """
    merged: list[Reply] = []
    pending: list[str] = []
    for reply in replies:
        text = "\n\n".join([*pending, reply.text])
        if pending and len(text) > MessageLimit.MAX_TEXT_LENGTH:
            merged.append(Reply("\n\n".join(pending)))
            text, pending = reply.text, []
        if reply.options or reply.question:
            merged.append(replace(reply, text=text))
            pending = []
        else:
            pending = [text]
    if pending:
        merged.append(Reply(pending[0]))
    return merged


class TelegramChannel:
    """Registers the handlers on a PTB Application and renders intake replies."""

    def __init__(
        self,
        *,
        intake: IntakeService,
        copy: Copy,
        retention_days: int,
        send_patience: float,
        ledger: ReplyLedger | None = None,
        inbox: bool = False,
    ) -> None:
        """``ledger``: replies are durable with their turn (the service always passes
        one). ``inbox``: updates arrive through the webhook's inbox."""
        self._albums: OrderedDict[str, None] = OrderedDict()
        self._send_patience = send_patience
        self._ledger = ledger
        self._inbox = inbox
        self.intake = intake
        self.copy = copy
        self.retention_days = retention_days

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        private = filters.ChatType.PRIVATE
        # New messages only: an edit that still reads "/restart" must not run it again.
        new = private & filters.UpdateType.MESSAGE
        app.add_handler(TypeHandler(Update, self.on_non_private), group=-1)
        for name in FLOW_COMMANDS:
            app.add_handler(CommandHandler(name, self.on_flow_command, filters=new))
        app.add_handler(CommandHandler("status", self.on_status, filters=new))
        app.add_handler(CommandHandler("privacy", self.on_privacy, filters=new))
        app.add_handler(MessageHandler(private & filters.UpdateType.EDITED, self.on_edited))
        app.add_handler(MessageHandler(new & MEDIA, self.on_media))
        app.add_handler(MessageHandler(new & filters.TEXT, self.on_text))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(private & ~filters.StatusUpdate.ALL, self.on_other))
        app.add_error_handler(self.on_error)

    async def set_commands(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        commands = [BotCommand(name, self.copy(f"commands.{name}")) for name in MENU]
        await app.bot.set_my_commands(commands)

    # Handlers ------------------------------------------------------------------------

    async def on_non_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Groups and channels: say so once per message, store nothing, stop there."""
        chat = update.effective_chat
        if chat is None or chat.type == ChatType.PRIVATE:
            return
        if update.effective_message is not None and chat.type != ChatType.CHANNEL:
            await self._quietly(
                update.effective_message.reply_text(self.copy("channel.private_only"))
            )
        raise ApplicationHandlerStop

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        await self._handle(update, Inbound.typed(normalise(message.text)))

    async def on_flow_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        name = message.text.split()[0].lstrip("/").split("@")[0].lower()
        await self._handle(update, Inbound.commanded(FLOW_COMMANDS[name]))

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        # Never downloaded: removed from the chat so it is not kept there either.
        await self._quietly(message.delete())
        if message.media_group_id and self._seen_album(message.media_group_id):
            return  # one album, one explanation: the rest are only removed
        await self._handle(update, Inbound.attachment())

    def _seen_album(self, album: str) -> bool:
        """Whether an earlier item of this album was already answered (recent albums only)."""
        seen = album in self._albums
        self._albums[album] = None
        self._albums.move_to_end(album)
        while len(self._albums) > MAX_ALBUMS:
            self._albums.popitem(last=False)
        return seen

    async def on_edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An edit to an earlier message is not a new answer: say so, change nothing."""
        message = update.effective_message
        if message is not None:
            await self._quietly(message.reply_text(self.copy("channel.edited")))

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None:
            await self._quietly(message.reply_text(self.copy("channel.unsupported")))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        # The button's spinner stops when the press is answered: answer it while the turn
        # is processed rather than before, which saves a round trip on every press.
        answering = asyncio.ensure_future(self._quietly(query.answer()))
        try:
            await self._on_button(update, context, query)
        finally:
            await answering

    async def _on_button(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE, query: CallbackQuery
    ) -> None:
        message = query.message if isinstance(query.message, Message) else None
        chat = update.effective_chat
        if message is None or chat is None or chat.type != ChatType.PRIVATE:
            return
        inbound = inbound_from_button(query.data or "")
        handled = await self._process(update, inbound)
        if handled is None:
            return
        toggled = [r for r in handled.replies if r.multiple and r.question == inbound.question]
        if inbound.kind.value == "toggle" and len(handled.replies) == 1 and toggled:
            if handled.delivery is not None and not handled.fast:
                return  # an earlier message is waiting: the outbox sends the question anew
            # A tick changes the same question: update its buttons in place.
            try:
                await message.edit_reply_markup(keyboard(toggled[0], self.copy))
            except TelegramError as error:
                if not _unchanged(error):
                    # The outbox sends the question again, ticks and all.
                    await self._hand_off(
                        handled.delivery, message.chat_id, handled.replies, 0, error
                    )
                    return
            self._close(handled.delivery)
            return
        # The old message keeps its buttons: pressing one later is answered as stale.
        await self._deliver(context.bot, message.chat_id, handled)

    async def on_status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        replies = await self.intake.status(CHANNEL, str(chat.id))
        await self._send(context.bot, chat.id, replies)

    async def on_privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        text = self.copy("privacy.text", retention_days=self.retention_days)
        await self._send(context.bot, chat.id, [Reply(text)])

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error("telegram update failed: %s", logs.kind(error), exc_info=error)
        noted = _OUTCOME.get()
        if noted is not None and error is not None:
            noted.failures.append(error)

    # Plumbing ------------------------------------------------------------------------

    async def _handle(self, update: Update, inbound: Inbound) -> None:
        handled = await self._process(update, inbound)
        chat = update.effective_chat
        if handled is not None and chat is not None:
            await self._deliver(update.get_bot(), chat.id, handled)

    async def _process(self, update: Update, inbound: Inbound) -> Handled | None:
        chat = update.effective_chat
        if chat is None:
            return None
        bot_id = str(update.get_bot().id)
        dedupe = (f"telegram:{bot_id}", str(update.update_id))
        handled = await self.intake.handle(
            CHANNEL,
            str(chat.id),
            inbound,
            dedupe=dedupe,
            inbox=self._inbox,
            deliver=self._ledger is not None,
        )
        noted = _OUTCOME.get()
        if noted is not None:
            noted.consumed = self._inbox
        if handled.duplicate:
            log.info("duplicate telegram update ignored")
            return None
        return handled

    async def _deliver(self, bot: Bot, chat_id: int, handled: Handled) -> None:
        """Send a turn's replies now, unless the outbox has them (see :attr:`Handled.fast`)."""
        if handled.delivery is not None and not handled.fast:
            return
        await self._send(bot, chat_id, handled.replies, handled.delivery)

    async def _send(
        self, bot: Bot, chat_id: int, replies: Sequence[Reply], row: int | None = None
    ) -> None:
        """Send replies; whatever cannot go now is handed to the outbox, which keeps trying.

        ``row`` is the outbox row that already holds them (written with the turn): it is
        closed once they are out, or handed over with how far sending got.
        """
        messages = self._outgoing(replies)
        for sent, (text, markup) in enumerate(messages):
            try:
                await self._send_patiently(bot, chat_id, text, markup)
            except TelegramError as error:
                await self._hand_off(row, chat_id, replies, sent, error)
                return
        self._close(row)

    def _close(self, row: int | None) -> None:
        if row is not None and self._ledger is not None:
            self._ledger.sent(row)

    async def _hand_off(
        self,
        row: int | None,
        chat_id: int,
        replies: Sequence[Reply],
        done: int,
        error: TelegramError,
    ) -> None:
        """The outbox takes over from message ``done`` on (after a 429's wait, if any)."""
        if self._ledger is None:
            raise error
        log.warning("telegram replies handed to the outbox: %s", logs.kind(error))
        after = _seconds(error) if isinstance(error, RetryAfter) else None
        if row is None:
            await self._ledger.later(CHANNEL, str(chat_id), replies, done=done)
            return
        await self._ledger.hand_off(
            row,
            done=done,
            after=after,
            error=logs.kind(error),
            rate_limited=isinstance(error, RetryAfter),
        )

    def _outgoing(self, replies: Sequence[Reply]) -> list[tuple[str, InlineKeyboardMarkup | None]]:
        """The messages to send: long texts split, each reply's buttons on its last part."""
        messages: list[tuple[str, InlineKeyboardMarkup | None]] = []
        for reply in merge_replies(replies):
            chunks = split_text(reply.text)
            markup = keyboard(reply, self.copy)
            last = len(chunks) - 1
            messages += [(c, markup if i == last else None) for i, c in enumerate(chunks)]
        return messages

    async def _send_patiently(
        self, bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        """Send one message, waiting out 429s and riding out network trouble.

        Telegram refusing the message itself (400, 403) goes straight to the outbox (which
        tries once more without buttons, then records it); anything else is retried with
        backoff for up to ``send_patience`` seconds, after which :meth:`_send` hands what
        is left to the outbox. (A timed-out send may have arrived: a repeated question is
        better than a missing one.)
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._send_patience
        backoff = 1.0
        while True:
            try:
                await bot.send_message(chat_id, text, reply_markup=markup)
                return
            except (BadRequest, Forbidden):
                raise
            except RetryAfter as error:
                wait = _seconds(error)
                failure: TelegramError = error
            except NetworkError as error:  # incl. TimedOut and Telegram's 5xx
                wait, backoff = backoff, min(backoff * 2, 30.0)
                failure = error
            if loop.time() + wait > give_up_at:
                raise failure
            log.warning("telegram reply will be retried in %.0f s: %s", wait, logs.kind(failure))
            await asyncio.sleep(wait)

    @staticmethod
    async def _quietly(action: Awaitable[Any]) -> None:
        """Best-effort calls (delete, answer a button, edit): failure must not lose a turn."""
        try:
            await action
        except (BadRequest, Forbidden) as error:
            log.info("telegram call skipped: %s", logs.kind(error))
        except TelegramError as error:
            log.warning("telegram call failed: %s", logs.kind(error))


def chat_sender(bot: Bot) -> Callable[[str, str], Awaitable[Result]]:
    """Sends outbox messages to a Telegram chat, mapping errors to retry or give up."""

    async def send(chat_id: str, text: str) -> Result:
        try:
            for chunk in split_text(text):
                await bot.send_message(int(chat_id), chunk)
        except TelegramError as error:
            return _failure(error)
        return Sent()

    return send


def replies_sender(
    bot: Bot, channel: TelegramChannel
) -> Callable[[str, Sequence[Reply], int], Awaitable[Result]]:
    """Sends a turn's replies from the outbox, buttons and all, from message ``done`` on.

    A message Telegram refuses (400) is tried once more without its buttons (the enquirer
    can type the answer), so one bad keyboard never costs the question itself.
    """

    async def send(chat_id: str, replies: Sequence[Reply], done: int) -> Result:
        messages = channel._outgoing(replies)
        for index in range(done, len(messages)):
            text, markup = messages[index]
            try:
                try:
                    await bot.send_message(int(chat_id), text, reply_markup=markup)
                except BadRequest:
                    if markup is None:
                        raise
                    log.warning("telegram refused a reply's buttons: sending it as text")
                    await bot.send_message(int(chat_id), text)
            except TelegramError as error:
                failure = _failure(error)
                if isinstance(failure, Retry):
                    return replace(failure, progress={"done": index})
                return failure
        return Sent()

    return send


def _failure(error: TelegramError) -> Retry | GiveUp:
    if isinstance(error, RetryAfter):
        return Retry("telegram 429", after=_seconds(error), rate_limited=True)
    if isinstance(error, Forbidden):
        return GiveUp("the enquirer has blocked the bot")
    if isinstance(error, BadRequest):
        return GiveUp(f"telegram refused: {error.message[:80]}")
    return Retry(logs.kind(error))


def _unchanged(error: TelegramError) -> bool:
    """Telegram's answer to an edit that changes nothing: the message is already right."""
    return isinstance(error, BadRequest) and "not modified" in error.message


def _seconds(error: RetryAfter) -> float:
    after = error._retry_after  # a timedelta in PTB 22 (the public attribute is deprecated)
    return after.total_seconds() if isinstance(after, timedelta) else float(after)


class ChatRateLimiter(AIORateLimiter):
    """Telegram's limits: ~30 messages/s overall and ~1/s per chat (short bursts allowed).

    PTB's AIORateLimiter covers the overall and group limits and retries 429s; this adds
    a leaky bucket per private chat, kept for the most recent chats only.
    """

    def __init__(self, *, per_chat_rate: float, per_chat_burst: int, max_retries: int) -> None:
        super().__init__(overall_max_rate=30, group_max_rate=20, max_retries=max_retries)
        self._rate = per_chat_rate
        self._burst = max(1, per_chat_burst)
        self._chats: OrderedDict[int, AsyncLimiter] = OrderedDict()

    def _chat_limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self._chats.pop(chat_id, None) or AsyncLimiter(
            self._burst, self._burst / self._rate
        )
        self._chats[chat_id] = limiter
        while len(self._chats) > MAX_LIMITED_CHATS:
            self._chats.popitem(last=False)
        return limiter

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat_id = data.get("chat_id")
        if (
            endpoint in PER_CHAT_ENDPOINTS
            and isinstance(chat_id, int | str)
            and str(chat_id).isdigit()
        ):
            async with self._chat_limiter(int(chat_id)):
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


def build_application(
    *,
    token: str,
    base_url: str,
    channel: TelegramChannel,
    polling: bool,
    max_retries: int = 5,
    rate_limited: bool = True,
    per_chat_rate: float = 1.0,
    per_chat_burst: int = 3,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The PTB Application, wired to our channel (the only place PTB is configured).

    ``rate_limited`` keeps to Telegram's limits (30 messages/s, 1/s per chat, 429s
    waited out and retried); only a benchmark against a local fake turns it off.
    """
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_url.replace("/bot", "/file/bot"))
        .concurrent_updates(PerChatUpdateProcessor(256))
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(connection_pool_size=1, read_timeout=30.0))
    )
    if rate_limited:
        limiter = ChatRateLimiter(
            per_chat_rate=per_chat_rate, per_chat_burst=per_chat_burst, max_retries=max_retries
        )
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]
    if not polling:
        builder = builder.updater(None)
    app = builder.build()
    channel.register(app)
    return app
