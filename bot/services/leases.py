"""What this process holds in the outbox and the inbox, kept leased while it lives.

A row being sent (outbox) or handled (inbox) is leased to its holder for a short time,
and this heartbeat renews the leases of everything still in hand every third of that
time. If the process dies, its leases simply run out and another process (or this one,
restarted) takes the rows over: within one lease, not after a long fixed timeout. Only
rows registered here are renewed, so a row its holder lost track of is freed too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.periodic import repeat
from storage import inbox, outbox

log = logging.getLogger(__name__)


def new_owner() -> str:
    """A name for this process, unique across restarts and replicas."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """The leases this process holds, and the heartbeat that keeps them (see above)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        seconds: float,
        owner: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.seconds = seconds
        self.owner = owner or new_owner()
        self._outbox: set[int] = set()
        self._inbox: set[int] = set()

    @property
    def worker(self) -> str:
        """``leased_by`` of rows this process's outbox worker is sending."""
        return f"w:{self.owner}"[:64]

    @property
    def fast(self) -> str:
        """``leased_by`` of replies this process is sending straight after their turn."""
        return f"{outbox.FAST_PATH}{self.owner}"[:64]

    @property
    def handler(self) -> str:
        """``leased_by`` of inbox updates this process is handling."""
        return f"i:{self.owner}"[:64]

    def until(self) -> datetime:
        """When a lease taken or renewed now runs out."""
        return self._clock() + timedelta(seconds=self.seconds)

    def hold_outbox(self, ids: Iterable[int]) -> None:
        """Keep these outbox rows leased until :meth:`drop_outbox`."""
        self._outbox.update(ids)

    def drop_outbox(self, ids: Iterable[int]) -> None:
        """Stop renewing these outbox rows (sent, retried or given up)."""
        self._outbox.difference_update(ids)

    def hold_inbox(self, ids: Iterable[int]) -> None:
        """Keep these inbox updates leased until :meth:`drop_inbox`."""
        self._inbox.update(ids)

    def drop_inbox(self, ids: Iterable[int]) -> None:
        """Stop renewing these inbox updates (handled, or left for a retry)."""
        self._inbox.difference_update(ids)

    @property
    def held(self) -> tuple[int, int]:
        """How many outbox and inbox rows are in hand (for tests and logs)."""
        return len(self._outbox), len(self._inbox)

    async def renew_once(self) -> None:
        """One heartbeat: push back the leases of everything still in hand."""
        outbox_ids, inbox_ids = set(self._outbox), set(self._inbox)
        if not outbox_ids and not inbox_ids:
            return
        until = self.until()
        async with self._sessions() as session, session.begin():
            await outbox.renew(session, outbox_ids, until)
            await inbox.renew(session, inbox_ids, until)

    async def free_all(self) -> None:
        """At start, when no other process can hold a lease: take everything back now."""
        async with self._sessions() as session, session.begin():
            freed = await outbox.release_all(session) + await inbox.release_all(session)
        if freed:
            log.info("took back %d row(s) a previous run left in hand", freed)

    async def run(self, stop: asyncio.Event) -> None:
        """Renew every third of a lease until ``stop`` (a failed beat: the next tries again;
        leases outlast a few)."""
        await repeat(
            self.renew_once,
            every=self.seconds / 3,
            stop=stop,
            what="lease renewal",
            first_wait=True,
            level=logging.WARNING,
        )
