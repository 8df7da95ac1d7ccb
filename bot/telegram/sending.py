"""Sending replies to a Telegram chat, patiently, and handing to the outbox what cannot go.

The turn is saved (and its replies are in the outbox, see ``bot.services.replies``) before
anything is sent here: :class:`ReplySender` sends them now, waiting out 429s and riding out
network trouble for a while, then closes the outbox row, or hands what is left to the
outbox worker. :func:`chat_sender` and :func:`replies_sender` are the worker's own senders.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot import logs
from bot.services.outbox import GiveUp, Result, Retry, Sent
from bot.services.replies import ReplyLedger
from bot.telegram.rendering import outgoing, split_text
from flows.copy import Copy
from flows.messages import Reply

log = logging.getLogger(__name__)
CHANNEL = "telegram"


class ReplySender:
    """Sends a turn's replies to one chat now; the outbox takes over what cannot go."""

    def __init__(self, *, copy: Copy, ledger: ReplyLedger | None, patience: float) -> None:
        """``ledger``: replies are durable with their turn (the service always passes one);
        ``patience``: seconds a message is retried before the outbox takes it over."""
        self._copy = copy
        self._ledger = ledger
        self._patience = patience

    @property
    def durable(self) -> bool:
        """Whether the replies are in the outbox, so what cannot go now is not lost."""
        return self._ledger is not None

    async def send(
        self, bot: Bot, chat_id: int, replies: Sequence[Reply], row: int | None = None
    ) -> None:
        """Send replies; whatever cannot go now is handed to the outbox, which keeps trying.

        ``row`` is the outbox row that already holds them (written with the turn): it is
        closed once they are out, or handed over with how far sending got.
        """
        messages = outgoing(replies, self._copy)
        for sent, (text, markup) in enumerate(messages):
            try:
                await self._patiently(bot, chat_id, text, markup)
            except TelegramError as error:
                await self.hand_off(row, chat_id, replies, sent, error)
                return
        self.close(row)

    def close(self, row: int | None) -> None:
        """The row's replies all went out (or nothing more is owed)."""
        if row is not None and self._ledger is not None:
            self._ledger.sent(row)

    async def hand_off(
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
        after = seconds(error) if isinstance(error, RetryAfter) else None
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

    async def _patiently(
        self, bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        """Send one message, waiting out 429s and riding out network trouble.

        Telegram refusing the message itself (400, 403) goes straight to the outbox (which
        tries once more without buttons, then records it); anything else is retried with
        backoff for up to ``patience`` seconds, after which :meth:`send` hands what is left
        to the outbox. (A timed-out send may have arrived: a repeated question is better
        than a missing one.)
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._patience
        backoff = 1.0
        while True:
            try:
                await bot.send_message(chat_id, text, reply_markup=markup)
                return
            except (BadRequest, Forbidden):
                raise
            except RetryAfter as error:
                wait = seconds(error)
                failure: TelegramError = error
            except NetworkError as error:  # incl. TimedOut and Telegram's 5xx
                wait, backoff = backoff, min(backoff * 2, 30.0)
                failure = error
            if loop.time() + wait > give_up_at:
                raise failure
            log.warning("telegram reply will be retried in %.0f s: %s", wait, logs.kind(failure))
            await asyncio.sleep(wait)


def chat_sender(bot: Bot) -> Callable[[str, str], Awaitable[Result]]:
    """Sends outbox messages to a Telegram chat, mapping errors to retry or give up."""

    async def send(chat_id: str, text: str) -> Result:
        try:
            for chunk in split_text(text):
                await bot.send_message(int(chat_id), chunk)
        except TelegramError as error:
            return failure(error)
        return Sent()

    return send


def replies_sender(
    bot: Bot, copy: Copy
) -> Callable[[str, Sequence[Reply], int], Awaitable[Result]]:
    """Sends a turn's replies from the outbox, buttons and all, from message ``done`` on.

    A message Telegram refuses (400) is tried once more without its buttons (the enquirer
    can type the answer), so one bad keyboard never costs the question itself.
    """

    async def send(chat_id: str, replies: Sequence[Reply], done: int) -> Result:
        messages = outgoing(replies, copy)
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
                result = failure(error)
                if isinstance(result, Retry):
                    return replace(result, progress={"done": index})
                return result
        return Sent()

    return send


def failure(error: TelegramError) -> Retry | GiveUp:
    """What a failed Bot API call means for an outbox row."""
    if isinstance(error, RetryAfter):
        return Retry("telegram 429", after=seconds(error), rate_limited=True)
    if isinstance(error, Forbidden):
        return GiveUp("the enquirer has blocked the bot")
    if isinstance(error, BadRequest):
        return GiveUp(f"telegram refused: {error.message[:80]}")
    return Retry(logs.kind(error))


def unchanged(error: TelegramError) -> bool:
    """Telegram's answer to an edit that changes nothing: the message is already right."""
    return isinstance(error, BadRequest) and "not modified" in error.message


def seconds(error: RetryAfter) -> float:
    """A 429's wait. PTB 22 warns that ``retry_after`` will become a timedelta: either is read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        after = error.retry_after
    return after.total_seconds() if isinstance(after, timedelta) else float(after)
