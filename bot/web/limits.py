"""Per-session and per-address rate limits for the web chat: a sliding minute, in memory.

Each process limits what it sees; with several replicas a determined sender gets a few
times the limit, which is all a limit for kind enquirers needs to be.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 20_000  # keys remembered; the oldest are forgotten first


class MinuteLimit:
    """At most ``per_minute`` events per key in any 60 seconds."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False when it is over the limit (not counted)."""
        now = self._clock()
        times = self._seen.pop(key, None) or deque()
        while times and now - times[0] >= 60.0:
            times.popleft()
        allowed = len(times) < self.per_minute
        if allowed:
            times.append(now)
        self._seen[key] = times
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        return allowed
