"""One replica at a time: a PostgreSQL advisory lock held on a connection of its own.

A session-level advisory lock belongs to the connection that took it and lasts until that
connection closes, so a process that dies (its connection dropped) frees it at once for
another replica to take. SQLite has no such lock and needs none: one process uses it.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHORES = 0x48_4C_54_4D  # "HLTM": the timers and housekeeping
"""The lock whose holder runs the timers and housekeeping."""

_TRY = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
_ALIVE = text("SELECT 1")
_PID = text("SELECT pg_backend_pid()")


async def try_take(connection: AsyncConnection, key: int) -> bool:
    """Take the lock if nobody holds it; never waits."""
    taken = bool((await connection.execute(_TRY, {"key": key})).scalar_one())
    await connection.commit()  # the lock outlives the transaction; the transaction need not
    return taken


async def still_connected(connection: AsyncConnection) -> None:
    """Raises if the connection (and so the lock) is gone."""
    await connection.execute(_ALIVE)
    await connection.commit()


async def give_up(connection: AsyncConnection, key: int) -> None:
    """Let the lock go (at shutdown), so another replica takes it at once."""
    await connection.execute(_UNLOCK, {"key": key})
    await connection.commit()


async def backend_pid(connection: AsyncConnection) -> int:
    """The server process of the connection (for tests that cut it, as a crash would)."""
    pid = int((await connection.execute(_PID)).scalar_one())
    await connection.commit()
    return pid
