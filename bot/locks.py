"""Per-key asyncio locks that clean up after themselves (one per chat being handled)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyedLocks:
    """Serialise work per key while different keys run in parallel.

    A lock exists only while someone holds or waits for it, so memory does not grow
    with the number of chats ever seen.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the block; the lock is dropped once nobody uses it."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def waiting(self, key: Hashable) -> int:
        """How many wait for ``key``'s lock behind its holder (so a test can see one queue)."""
        held = self._locks.get(key)
        return held[1] - 1 if held else 0

    def __len__(self) -> int:
        return len(self._locks)
