"""The outbox worker: sends hand-offs written with the data, in order, until they arrive.

Rows are leased in a short transaction, sent outside it (no database lock is held while
a network call waits), then marked sent or retried. Nothing is given up for failing
often: a 429 waits its ``Retry-After`` (and does not count as a failure), anything else
backs off (doubling, capped); only a sender's :class:`GiveUp` (a request that can never
succeed, such as a blocked bot) ends a row. A row still waiting after ``stuck_after``
seconds is reported at ERROR, and health checks and ``helpline outbox`` show it. A
stream (Slack, or one enquirer's chat) never skips ahead of a row still waiting.

Leases are short and renewed while this process lives (:mod:`bot.services.leases`), so the rows
of a process that died are sent by another within one lease. A row picked up from a
dead holder, or whose last attempt timed out, may have arrived already: the sender sees
``row.maybe_sent`` and looks before sending again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import logs
from bot.clock import Clock
from bot.services.leases import Leases
from storage import outbox, outbox_status
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
BATCH = 10


@dataclass(frozen=True, slots=True)
class Sent:
    """Delivered. ``then`` runs in the transaction that marks the row sent."""

    then: Callable[[AsyncSession], Awaitable[None]] | None = None
    even_if_gone: bool = False
    """Run ``then`` even when the row went while it was being sent (an erasure deleted
    it): for what must be recorded whatever happened and holds nothing personal, such as
    the audit of a disclosure."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Not delivered yet; try again after ``after`` seconds (or the backoff if None).

    ``rate_limited``: ``after`` is the other side's Retry-After, not a failure.
    ``maybe_sent``: this attempt (or an earlier one still unresolved) may have arrived.
    ``progress``: keys to update in the payload (how far a multi-part send got).
    """

    error: str
    after: float | None = None
    rate_limited: bool = False
    maybe_sent: bool = False
    progress: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Can never be delivered (e.g. the enquirer blocked the bot). ``then`` records it."""

    error: str
    then: Callable[[AsyncSession], Awaitable[None]] | None = None


Result = Sent | Retry | GiveUp
Sender = Callable[[OutboxMessage], Awaitable[Result]]


def destination(row: OutboxMessage) -> str:
    """Where a row goes, as metrics name it: ``slack``, or the enquirer's channel."""
    if outbox.STREAMS.get(row.kind) == "slack":
        return "slack"
    return str((row.payload or {}).get("channel") or "enquirer")[:32]


class OutboxWorker:
    """Drains the outbox with the senders it was given (one per kind)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        clock: Clock,
        leases: Leases,
        poll_interval: float = 1.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        stuck_after: float = 600.0,
        wakeup: asyncio.Event | None = None,
        on_failure: Callable[[str], None] = lambda destination: None,
    ) -> None:
        """``wakeup``: set by whoever enqueues (the service shares one with the intake).
        ``on_failure(destination)``: a send failed (retried or given up); the destination is
        ``slack`` or the enquirer's channel. A rate limit is not a failure."""
        self._on_failure = on_failure
        self._sessions = sessions
        self._senders = dict(senders)
        self._clock = clock
        self._leases = leases
        self._poll = poll_interval
        self._base = backoff_base
        self._cap = backoff_cap
        self._stuck_after = timedelta(seconds=stuck_after)
        self._wake = wakeup or asyncio.Event()
        self._next_due: float | None = None
        self._stuck_reported_at: float | None = None
        self._checked_at: float | None = None

    @property
    def kinds(self) -> frozenset[str]:
        """The outbox kinds this worker sends (rows of others are parked, not stuck)."""
        return frozenset(self._senders)

    def wake(self) -> None:
        """Something was just enqueued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send what is due until ``stop`` is set, waking early when rows are added or fall due;
        a failed pass is logged and the rows stay pending for the next one.
        """
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await self.drain_once()
            except Exception as error:  # keep the worker alive; the rows stay pending
                log.error("outbox pass failed: %s", logs.kind(error), exc_info=error)
            try:
                await self.report_stuck()
            except Exception as error:
                log.warning("outbox check failed: %s", logs.kind(error))
            self._wake.clear()
            timeout = self._poll
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, self._next_due - loop.time()))
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
            rows = list(await outbox.due(session, now, list(self.kinds), limit=BATCH))
            # A row someone leased and never finished may have been in flight when its
            # holder died: its sender looks before sending again.
            doubt = {r.id: r.maybe_sent or r.leased_by is not None for r in rows}
            await outbox.lease(session, doubt, self._leases.worker, self._leases.until())
        ids = [row.id for row in rows]
        self._leases.hold_outbox(ids)
        delivered = 0
        stuck: set[str] = set()
        held: list[int] = []
        try:
            for row in rows:
                stream = outbox.stream_of(row)
                if stream in stuck:
                    held.append(row.id)
                    continue
                row.maybe_sent = doubt[row.id]  # what the sender sees (not written back)
                result = await self._attempt(row)
                if isinstance(result, Sent):
                    delivered += 1
                elif isinstance(result, Retry):
                    stuck.add(stream)
                    self._note_retry(result)
            if held:  # rows behind a retry wait for it, released in one go
                async with self._sessions() as session, session.begin():
                    await outbox.release(session, held)
        finally:
            self._leases.drop_outbox(ids)
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
            result = Retry(logs.kind(error), maybe_sent=row.maybe_sent)
        if isinstance(result, GiveUp) or (isinstance(result, Retry) and not result.rate_limited):
            self._on_failure(destination(row))
        now = self._clock()
        async with self._sessions() as session, session.begin():
            fresh = await outbox.locked(session, row.id)
            if fresh is None:
                if isinstance(result, Sent) and result.then and result.even_if_gone:
                    await result.then(session)
                return result
            if isinstance(result, Sent):
                outbox.mark_sent(fresh, now)
                if result.then:
                    await result.then(session)
            elif isinstance(result, GiveUp):
                outbox.mark_failed(fresh, now, result.error)
                if result.then:
                    await result.then(session)
                # A card or note the desk never sees is the helpline's problem; an
                # enquirer who blocked the bot is not (the desk is told in the thread).
                level = logging.ERROR if row.kind.startswith("slack.") else logging.WARNING
                log.log(level, "outbox row %d (%s) given up: %s", row.id, row.kind, result.error)
            else:
                delay = result.after
                if delay is None:
                    delay = self._backoff(fresh.failures)
                outbox.mark_retry(
                    fresh,
                    now,
                    timedelta(seconds=delay),
                    result.error,
                    rate_limited=result.rate_limited,
                    maybe_sent=result.maybe_sent,
                    progress=result.progress,
                )
                log.info(
                    "outbox row %d (%s) retry in %.1fs: %s", row.id, row.kind, delay, result.error
                )
        return result

    def _backoff(self, failures: int) -> float:
        delay: float = min(self._cap, self._base * 2 ** min(failures, 30))
        return delay * random.uniform(0.8, 1.0)

    async def report_stuck(self) -> outbox_status.Summary | None:
        """Say at ERROR, at most every ``stuck_after``, when rows have waited too long.

        Looked at every half ``stuck_after`` (at most every 30 s), not on every pass.
        """
        now = asyncio.get_running_loop().time()
        every = self._stuck_after.total_seconds()
        if self._checked_at is not None and now - self._checked_at < min(every / 2, 30.0):
            return None
        self._checked_at = now
        async with self._sessions() as session:
            found = await outbox_status.summary(
                session, self._clock(), self._stuck_after, sent=self.kinds
            )
        reported = self._stuck_reported_at
        if found.stuck and (reported is None or now - reported >= every):
            log.error(
                "outbox: %d row(s) waiting for more than %.0f s (oldest since %s; last error: %s)",
                found.stuck,
                every,
                found.oldest_pending_at.isoformat() if found.oldest_pending_at else "?",
                found.stuck_error or "none",
            )
            self._stuck_reported_at = now
        elif not found.stuck and reported is not None:
            log.info("outbox: nothing is stuck any more")
            self._stuck_reported_at = None
        return found
