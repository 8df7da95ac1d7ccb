"""The Telegram channel's handlers: translate updates to Inbound, and answer.

No flow logic lives here. Each handler parses the update, calls the intake service and
gives what comes back to the :class:`~bot.telegram.sending.ReplySender`. Media is never
downloaded: the message is deleted from the chat and the flow is told only that an
attachment arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, BotCommand, CallbackQuery, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import logs
from bot.services.intake import Handled, IntakeService
from bot.telegram.processing import current_outcome
from bot.telegram.rendering import SEP, inbound_from_button, keyboard
from bot.telegram.sending import CHANNEL, ReplySender, unchanged
from bot.text import normalise
from flows.conversation import reference_in
from flows.copy import Copy
from flows.messages import Command, Inbound, Reply
from flows.privacy import ERASE, ERASE_YES, erase_confirmation, erased_text

log = logging.getLogger(__name__)
MAX_ALBUMS = 1_000  # media_group_ids remembered, so an album gets one refusal

FLOW_COMMANDS = {
    "start": Command.START,
    "help": Command.HELP,
    "back": Command.BACK,
    "restart": Command.RESTART,
    "cancel": Command.CANCEL,
}
MENU = ("start", "help", "back", "restart", "cancel", "status", "privacy", "delete")
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


def replied_about(message: Message, bot_id: int) -> str | None:
    """The case a message replies to: the reference in the bot's own message it quotes.

    Only the bot's messages count (an enquirer cannot make one), and the intake service
    still checks that the case was sent from this chat.
    """
    quoted = message.reply_to_message
    if quoted is None or quoted.from_user is None or quoted.from_user.id != bot_id:
        return None
    return reference_in(quoted.text or quoted.caption or "")


class TelegramChannel:
    """Registers the handlers on a PTB Application and renders intake replies."""

    def __init__(
        self,
        *,
        intake: IntakeService,
        copy: Copy,
        sender: ReplySender,
        retention_days: int,
        inbox: bool = False,
        erase_chat: Callable[[str, str], Awaitable[list[str]]] | None = None,
    ) -> None:
        """``inbox``: updates arrive through the webhook's inbox (see ``webhook.py``);
        ``erase_chat(channel, chat id)`` erases a chat and its cases' personal data, the
        references erased (``/delete``; None: the command is not offered)."""
        self._erase_chat = erase_chat
        self._albums: OrderedDict[str, None] = OrderedDict()
        self._sender = sender
        self._inbox = inbox
        self.intake = intake
        self.copy = copy
        self.retention_days = retention_days

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Attach every handler to ``app`` in the order they must be tried, so nothing registers at
        import.
        """
        private = filters.ChatType.PRIVATE
        # New messages only: an edit that still reads "/restart" must not run it again.
        new = private & filters.UpdateType.MESSAGE
        app.add_handler(TypeHandler(Update, self.on_non_private), group=-1)
        for name in FLOW_COMMANDS:
            app.add_handler(CommandHandler(name, self.on_flow_command, filters=new))
        app.add_handler(CommandHandler("status", self.on_status, filters=new))
        app.add_handler(CommandHandler("privacy", self.on_privacy, filters=new))
        app.add_handler(CommandHandler("delete", self.on_delete, filters=new))
        app.add_handler(MessageHandler(private & filters.UpdateType.EDITED, self.on_edited))
        app.add_handler(MessageHandler(new & MEDIA, self.on_media))
        app.add_handler(MessageHandler(new & filters.TEXT, self.on_text))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(private & ~filters.StatusUpdate.ALL, self.on_other))
        app.add_error_handler(self.on_error)

    async def set_commands(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Publish the command menu, worded from ``copy.toml``, for Telegram to show in the chat."""
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
        """The enquirer typed a message: hand its text to the flow."""
        message = update.effective_message
        assert message is not None and message.text is not None
        about = replied_about(message, context.bot.id)
        await self._handle(update, Inbound.typed(normalise(message.text), about=about))

    async def on_flow_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The enquirer sent a flow command (such as /start or /restart): hand it to the flow."""
        message = update.effective_message
        assert message is not None and message.text is not None
        name = message.text.split()[0].lstrip("/").split("@")[0].lower()
        await self._handle(update, Inbound.commanded(FLOW_COMMANDS[name]))

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The enquirer sent media (a photo, file, sticker, location...): remove it unopened and
        explain, once per album.
        """
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
        """The enquirer sent a kind of message no other handler knows: say the bot cannot use it."""
        message = update.effective_message
        if message is not None:
            await self._quietly(message.reply_text(self.copy("channel.unsupported")))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The enquirer pressed a button: answer the press while the turn runs (see below)."""
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
        if (query.data or "").startswith(ERASE + SEP):
            await self._on_erase_answer(context.bot, chat.id, (query.data or "").split(SEP)[-1])
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
                if not unchanged(error):
                    # The outbox sends the question again, ticks and all.
                    await self._sender.hand_off(
                        handled.delivery, message.chat_id, handled.replies, 0, error
                    )
                    return
            self._sender.close(handled.delivery)
            return
        # The old message keeps its buttons: pressing one later is answered as stale.
        await self._deliver(context.bot, message.chat_id, handled)

    async def on_status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The enquirer sent /status: where their latest enquiry stands."""
        chat = update.effective_chat
        assert chat is not None
        replies = await self.intake.status(CHANNEL, str(chat.id))
        await self._sender.send(context.bot, chat.id, replies)

    async def on_privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The enquirer sent /privacy: what is kept about them, and for how long."""
        chat = update.effective_chat
        assert chat is not None
        text = self.copy("privacy.text", retention_days=self.retention_days)
        await self._sender.send(context.bot, chat.id, [Reply(text)])

    async def on_delete(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The enquirer asks us to delete what they told us: confirm first."""
        chat = update.effective_chat
        assert chat is not None
        if self._erase_chat is None:
            return await self.on_privacy(update, context)
        await self._sender.send(context.bot, chat.id, [erase_confirmation(self.copy)])

    async def _on_erase_answer(self, bot: Bot, chat_id: int, answer: str) -> None:
        """Yes erases (again, harmlessly, if pressed twice); anything else keeps."""
        if answer != ERASE_YES or self._erase_chat is None:
            await self._sender.send(bot, chat_id, [Reply(self.copy("data_protection.delete_kept"))])
            return
        references = await self._erase_chat(CHANNEL, str(chat_id))
        log.info("an enquirer erased their chat and %d case(s)", len(references))
        await self._sender.send(bot, chat_id, [Reply(erased_text(self.copy, references))])

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A handler failed: log the kind of error, and tell whoever fed the update in (the webhook
        keeps it for a retry).
        """
        error = context.error
        log.error("telegram update failed: %s", logs.kind(error), exc_info=error)
        noted = current_outcome()
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
            deliver=self._sender.durable,
        )
        noted = current_outcome()
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
        await self._sender.send(bot, chat_id, handled.replies, handled.delivery)

    @staticmethod
    async def _quietly(action: Awaitable[Any]) -> None:
        """Best-effort calls (delete, answer a button, edit): failure must not lose a turn."""
        try:
            await action
        except (BadRequest, Forbidden) as error:
            log.info("telegram call skipped: %s", logs.kind(error))
        except TelegramError as error:
            log.warning("telegram call failed: %s", logs.kind(error))
