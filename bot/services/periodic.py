"""Running a job every so often until the service stops: the one loop every chore shares.

Timers, housekeeping, lease renewal and the webhook's inbox check all want the same
thing: do the job, survive its failure (logged, and tried again next time), wait, stop
promptly when asked. Saying it once keeps their shutdown behaviour the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot import logs

log = logging.getLogger(__name__)


async def repeat(
    job: Callable[[], Awaitable[object]],
    *,
    every: float,
    stop: asyncio.Event,
    what: str,
    first_wait: bool = False,
    level: int = logging.ERROR,
) -> None:
    """Run ``job`` now and then every ``every`` seconds until ``stop`` is set.

    ``first_wait``: wait one period before the first run (a heartbeat that renews what
    was just taken). A failing job is logged at ``level`` as "<what> failed", with the
    error's kind only (never its text, which can carry what people wrote).
    """
    if first_wait:
        await _pause(stop, every)
    while not stop.is_set():
        try:
            await job()
        except Exception as error:
            log.log(level, "%s failed: %s", what, logs.kind(error), exc_info=error)
        await _pause(stop, every)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
