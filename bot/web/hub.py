"""Who is listening to which web chat in this process, and how they learn of new messages.

A message written in this process wakes its chat's sockets at once. A message written by
another process (a practitioner's reply sent by another replica's outbox worker) is found
by one small query every ``poll`` seconds over the whole table, not one per chat: it
wakes the sockets held here. Sockets then read what they have not sent from the database,
so a wake-up that is missed or doubled loses or repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import logs
from storage import web as web_store

log = logging.getLogger(__name__)
OVERLAP = 200  # row ids looked at again: a transaction may commit after a later one
REMEMBERED = 5_000


class Hub:
    """Wakes the open sockets of a chat when something new is written to it."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], poll: float) -> None:
        self._sessions = sessions
        self._poll = poll
        self._listeners: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._cursor: int | None = None

    @contextmanager
    def listening(self, chat_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the chat gets a message, for the length of the block."""
        event = asyncio.Event()
        self._listeners[chat_id].add(event)
        try:
            yield event
        finally:
            listeners = self._listeners.get(chat_id)
            if listeners is not None:
                listeners.discard(event)
                if not listeners:
                    del self._listeners[chat_id]

    def notify(self, chat_id: str) -> None:
        """Something was written to ``chat_id`` (in this process)."""
        for event in self._listeners.get(chat_id, ()):
            event.set()

    @property
    def open_chats(self) -> int:
        """How many chats have a socket open in this process (for the metrics)."""
        return len(self._listeners)

    async def poll_once(self) -> None:
        """Wake the chats held here that another process wrote to since the last poll."""
        async with self._sessions() as session:
            if self._cursor is None:  # what came before is read by each socket as it opens
                self._cursor = await web_store.last_id(session)
                return
            found = await web_store.written_since(session, max(0, self._cursor - OVERLAP))
        for row_id, chat_id in found:
            if row_id in self._seen:
                continue
            self._seen[row_id] = None
            self._cursor = max(self._cursor, row_id)
            self.notify(chat_id)
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` (quietly skipping a round the database did not answer)."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception as error:
                log.warning("web chat poll failed: %s", logs.kind(error))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._poll)
