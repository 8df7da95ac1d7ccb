"""Which replica runs the chores (timers, housekeeping): the one holding an advisory lock.

Every replica asks on each tick; the holder keeps a connection of its own open, and the
lock with it. If the holder dies its connection drops, the lock is free, and the next
replica to tick takes it (within ``HELPLINE_TIMER_SECONDS``). The chores are safe to run
twice anyway (each stamps its cases in a conditional update): the lock saves the work
and the database's round trips, and keeps the digest and reminders from racing.
On SQLite there is one process, which always leads.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot import logs
from storage import db
from storage import leader as lock_store

log = logging.getLogger(__name__)


class Leadership:
    """Whether this process is the one that runs the chores now."""

    def __init__(self, *, engine: AsyncEngine, key: int = lock_store.CHORES) -> None:
        self._engine = engine
        self._key = key
        self._connection: AsyncConnection | None = None
        self._asking = asyncio.Lock()  # the timers and housekeeping ask at the same time

    @property
    def leading(self) -> bool:
        """Held at the last look (what :meth:`leads` last found)."""
        return self._connection is not None or db.single_process(self._engine)

    async def leads(self) -> bool:
        """Whether this process holds the lock, taking it if it is free."""
        if db.single_process(self._engine):
            return True
        async with self._asking:
            return await self._leads()

    async def _leads(self) -> bool:
        if self._connection is not None:
            try:
                await lock_store.still_connected(self._connection)
                return True
            except Exception as error:
                log.warning("lost the chores lock (%s): asking again", logs.kind(error))
                await self._drop()
        connection = await self._engine.connect()
        try:
            taken = await lock_store.try_take(connection, self._key)
        except Exception:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        log.info("this replica now runs the timers and housekeeping")
        return True

    async def backend_pid(self) -> int | None:
        """The database server process holding the lock for us (None if we hold none)."""
        return await lock_store.backend_pid(self._connection) if self._connection else None

    async def close(self) -> None:
        """Let the lock go (at shutdown): another replica takes it on its next tick."""
        if self._connection is None:
            return
        try:
            await lock_store.give_up(self._connection, self._key)
        except Exception as error:
            log.info("chores lock: the connection had gone (%s)", logs.kind(error))
            await self._drop()
            return
        connection, self._connection = self._connection, None
        await connection.close()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.invalidate()  # never back into the pool
                await connection.close()
            except Exception as error:
                log.info("chores lock: closing its connection failed (%s)", logs.kind(error))
