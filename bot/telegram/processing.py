"""Handling Telegram updates in order per chat, and hearing how each one went.

PTB runs handlers for many updates at once; :class:`PerChatUpdateProcessor` keeps each
chat's updates one at a time, in arrival order, while chats run in parallel.
:func:`outcome_noted` lets whoever fed an update in (the webhook's inbox) learn whether
its handlers failed, since PTB hands their exceptions to the error handler instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.locks import KeyedLocks

UNLIMITED = 2**31 - 1  # PTB's own concurrency cap, set out of the way (see below)


@dataclass
class UpdateOutcome:
    """How handling one update went, for whoever fed it in (the webhook's inbox)."""

    failures: list[BaseException] = field(default_factory=list)
    consumed: bool = False
    """The update reached the intake service, which removed it from the inbox."""


_OUTCOME: ContextVar[UpdateOutcome | None] = ContextVar("telegram_outcome", default=None)


def current_outcome() -> UpdateOutcome | None:
    """The outcome being noted for the update in hand (None outside :func:`outcome_noted`)."""
    return _OUTCOME.get()


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
        self._finished = 0
        self._changed = asyncio.Condition()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run one update after the ones before it from the same chat, then count it finished
        for :meth:`wait_finished`.
        """
        chat = update.effective_chat if isinstance(update, Update) else None
        try:
            async with self._locks.hold(chat.id if chat else None), self._slots:
                await coroutine
        finally:
            async with self._changed:
                self._finished += 1
                self._changed.notify_all()

    @property
    def finished(self) -> int:
        """How many updates have been handled so far (whatever the outcome)."""
        return self._finished

    async def wait_finished(self, count: int) -> None:
        """Until at least ``count`` updates have been handled: replies sent, turns saved.

        Lets a caller that knows how many updates it fed in wait for exactly them, rather
        than for a guessed quiet moment (the tests' harness and the benchmarks do).
        """
        async with self._changed:
            await self._changed.wait_for(lambda: self._finished >= count)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""
