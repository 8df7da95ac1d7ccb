"""The outbox worker: sends hand-offs written with the data, in order, until they arrive.

Rows are leased in a short transaction, sent outside it (no database lock is held
while a network call waits), then marked sent, retried with backoff (a 429's
``Retry-After`` wins), or given up on after ``max_attempts``. A stream (Slack, or one
enquirer's chat) never skips ahead of a row still waiting to retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import logs
from bot.intake import Clock
from storage import outbox
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
# A pass leases at most BATCH rows for LEASE: far longer than BATCH sends can take
# (BATCH calls of at most ~10 s each), so another replica never resends them, and a
# crashed worker's rows are picked up again within minutes.
LEASE = timedelta(minutes=5)
BATCH = 10


@dataclass(frozen=True, slots=True)
class Sent:
    """Delivered. ``then`` runs in the transaction that marks the row sent."""

    then: Callable[[AsyncSession], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """Not delivered yet; try again after ``after`` seconds (or the backoff if None).

    ``then`` records the failure if the retries run out.
    """

    error: str
    after: float | None = None
    then: Callable[[AsyncSession], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Can never be delivered (e.g. the enquirer blocked the bot). ``then`` records it."""

    error: str
    then: Callable[[AsyncSession], Awaitable[None]] | None = None


Result = Sent | Retry | GiveUp
Sender = Callable[[OutboxMessage], Awaitable[Result]]


class OutboxWorker:
    """Drains the outbox with the senders it was given (one per kind)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        clock: Clock,
        poll_interval: float = 1.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        max_attempts: int = 50,
    ) -> None:
        self._sessions = sessions
        self._senders = senders  # read on every pass: senders may be added before run()
        self._clock = clock
        self._poll = poll_interval
        self._base = backoff_base
        self._cap = backoff_cap
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._next_due: float | None = None

    def wake(self) -> None:
        """Something was just enqueued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.drain_once()
            except Exception as error:  # keep the worker alive; the rows stay pending
                log.error("outbox pass failed: %s", logs.kind(error), exc_info=error)
            self._wake.clear()
            timeout = self._poll
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, self._next_due - asyncio.get_running_loop().time()))
                self._next_due = None
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def drain_once(self) -> int:
        """Send everything due now; returns how many rows were delivered."""
        if not self._senders:
            return 0
        now = self._clock()
        async with self._sessions() as session, session.begin():
            rows = list(await outbox.due(session, now, list(self._senders), limit=BATCH))
            if rows:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([r.id for r in rows]))
                    .values(available_at=now + LEASE)
                )
        delivered = 0
        stuck: set[str] = set()
        held: list[int] = []
        for row in rows:
            stream = outbox.stream_of(row)
            if stream in stuck:
                held.append(row.id)
                continue
            result = await self._attempt(row)
            if isinstance(result, Sent):
                delivered += 1
            elif isinstance(result, Retry):
                stuck.add(stream)
                self._note_retry(result)
        if held:  # rows behind a retry wait for it, released in one go
            async with self._sessions() as session, session.begin():
                await outbox.release_locks_for(session, held, self._clock())
        return delivered

    def _note_retry(self, result: Retry) -> None:
        """Wake up when the earliest retry is due, not a whole poll later."""
        after = result.after if result.after is not None else self._base
        due = asyncio.get_running_loop().time() + after
        self._next_due = min(self._next_due or due, due)

    async def _attempt(self, row: OutboxMessage) -> Result:
        try:
            result = await self._senders[row.kind](row)
        except Exception as error:  # a sender bug must not lose the row
            log.error("outbox sender %s crashed: %s", row.kind, logs.kind(error), exc_info=error)
            result = Retry(logs.kind(error))
        now = self._clock()
        async with self._sessions() as session, session.begin():
            fresh = await session.get(OutboxMessage, row.id)
            if fresh is None:
                return result
            if isinstance(result, Sent):
                outbox.mark_sent(fresh, now)
                if result.then:
                    await result.then(session)
            elif isinstance(result, GiveUp) or fresh.attempts + 1 >= self._max_attempts:
                outbox.mark_failed(fresh, now, result.error)
                if result.then:
                    await result.then(session)
                log.warning("outbox row %d (%s) given up: %s", row.id, row.kind, result.error)
            else:
                delay = result.after if result.after is not None else self._backoff(fresh.attempts)
                outbox.mark_retry(fresh, now, timedelta(seconds=delay), result.error)
                log.info(
                    "outbox row %d (%s) retry in %.1fs: %s", row.id, row.kind, delay, result.error
                )
        return result

    def _backoff(self, attempts: int) -> float:
        delay: float = min(self._cap, self._base * 2 ** min(attempts, 20))
        return delay * random.uniform(0.8, 1.0)
