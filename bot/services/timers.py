"""Response-time timers: reminders, overdue flags, the morning digest, and data protection
requests past their due day (flagged on the desk once, like overdue cases).

Driven from the database on every tick (not in-memory sleeps), so a restart loses
nothing; each timer stamps its cases in a conditional update, so with two replicas it
fires once. What they say goes to the desk through the outbox, as desk notes the desk's
channel words when it sends them (the digest as the list of its cases).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.services.periodic import repeat
from flows.copy import Copy
from flows.hours import WorkingCalendar
from flows.timing import describe_due
from storage import outbox
from storage import privacy as privacy_store
from storage import timers as timer_store
from storage.models import Case

log = logging.getLogger(__name__)


class Timers:
    """Fires the response-time timers; one :meth:`tick` does whatever is due now."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        calendar: WorkingCalendar,
        copy: Copy,
        clock: Clock,
        every: float = 30.0,
        leads: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """``every``: seconds between ticks while the service runs. ``leads``: whether this
        replica runs them now (see :class:`bot.services.leader.Leadership`); None: always."""
        self.leads = leads
        self.sessions = sessions
        self.calendar = calendar
        self.copy = copy
        self.clock = clock
        self.every = every

    async def tick(self) -> dict[str, int]:
        """Fire whatever is due now; returns how many cases each timer fired for."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            reminded = await timer_store.due_reminders(session, now)
            for case in reminded:
                note = outbox.desk_note(
                    "timers.reminder", reference=case.reference, due=self._due(case)
                )
                outbox.enqueue(session, outbox.SLACK_THREAD, now=now, case_id=case.id, payload=note)
            overdue = await timer_store.newly_overdue(session, now)
            for case in overdue:
                note = outbox.desk_note(
                    "timers.overdue",
                    reference=case.reference,
                    due=self._due(case),
                    status=self.copy(f"case_status.{case.status.value}"),
                )
                outbox.enqueue(session, outbox.SLACK_CARD, now=now, case_id=case.id)
                outbox.enqueue(session, outbox.SLACK_POST, now=now, case_id=case.id, payload=note)
            digested = (
                await timer_store.take_for_digest(session, now)
                if self.calendar.is_open(now)
                else []
            )
            if digested:
                payload = {"cases": [case.id for case in digested]}
                outbox.enqueue(session, outbox.SLACK_DIGEST, now=now, payload=payload)
        return {"reminders": len(reminded), "overdue": len(overdue), "digest": len(digested)}

    async def flag_overdue_requests(self) -> int:
        """Subject access and erasure requests past their due day, flagged on the desk once."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            today = now.astimezone(self.calendar.zone).date()
            requests = await privacy_store.newly_overdue_requests(session, today, now)
            for request in requests:
                note = outbox.desk_note(
                    "data_protection.request_overdue",
                    reference=request.reference,
                    kind=request.kind,
                    due=request.due_on.isoformat(),
                )
                outbox.enqueue(session, outbox.SLACK_POST, now=now, payload=note)
        return len(requests)

    def _due(self, case: Case) -> str:
        return describe_due(self.calendar, case.due_at, self.copy) if case.due_at else "-"

    async def _tick_and_say(self) -> None:
        if self.leads is not None and not await self.leads():
            return
        fired = await self.tick()
        fired["requests_overdue"] = await self.flag_overdue_requests()
        if any(fired.values()):
            log.info("timers fired: %s", fired)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``every`` seconds until ``stop``."""
        await repeat(self._tick_and_say, every=self.every, stop=stop, what="timers")
