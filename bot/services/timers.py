"""Response-time timers: reminders, overdue flags and the morning digest.

Driven from the database on every tick (not in-memory sleeps), so a restart loses
nothing; each timer stamps its cases in a conditional update, so with two replicas it
fires once. What they say goes to Slack through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import logs
from bot.slack.listeners import card_link
from bot.slack.blocks import cut
from bot.text import for_slack
from flows.copy import Copy
from flows.hours import WorkingCalendar
from storage import outbox
from storage import timers as timer_store
from storage.models import Case

log = logging.getLogger(__name__)


class Timers:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        calendar: WorkingCalendar,
        copy: Copy,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.calendar = calendar
        self.copy = copy
        self.clock = clock

    async def tick(self) -> dict[str, int]:
        """Fire whatever is due now; returns how many cases each timer fired for."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            reminded = await timer_store.due_reminders(session, now)
            for case in reminded:
                text = self.copy("timers.reminder", reference=case.reference, due=self._due(case))
                self._thread(session, case, text, now)
            overdue = await timer_store.newly_overdue(session, now)
            for case in overdue:
                text = self.copy(
                    "timers.overdue",
                    reference=case.reference,
                    due=self._due(case),
                    status=case.status,
                )
                outbox.enqueue(session, outbox.SLACK_CARD, now=now, case_id=case.id)
                outbox.enqueue(
                    session, outbox.SLACK_POST, now=now, case_id=case.id, payload={"text": text}
                )
            digested = (
                await timer_store.take_for_digest(session, now)
                if self.calendar.is_open(now)
                else []
            )
            if digested:
                outbox.enqueue(
                    session, outbox.SLACK_POST, now=now, payload={"text": self.digest(digested)}
                )
        return {"reminders": len(reminded), "overdue": len(overdue), "digest": len(digested)}

    def digest(self, cases: list[Case]) -> str:
        """What waited overnight: counts by category and urgency, then each case, oldest first."""
        copy = self.copy
        title = "timers.digest_title_one" if len(cases) == 1 else "timers.digest_title"
        lines = [copy(title, count=len(cases))]
        urgent = sum(1 for c in cases if c.urgent)
        if urgent:
            lines.append(copy("timers.digest_urgent", count=urgent))
        counts = Counter(cat.category for c in cases for cat in c.categories)
        if counts:
            summary = ", ".join(f"{name} {n}" for name, n in counts.most_common())
            lines.append(copy("timers.digest_categories", categories=summary))
        for case in cases:
            received = case.received_at.astimezone(self.calendar.zone).strftime("%a %H:%M")
            mark = copy("timers.digest_urgent_mark") if case.urgent else ""
            lines.append(
                copy(
                    "timers.digest_line",
                    link=card_link(case),
                    received=received,
                    urgent=mark,
                    subject=for_slack(cut(case.subject or "", 80)),
                )
            )
        return "\n".join(lines)

    def _due(self, case: Case) -> str:
        return self.calendar.describe_due(case.due_at) if case.due_at else "-"

    @staticmethod
    def _thread(session: AsyncSession, case: Case, text: str, now: datetime) -> None:
        outbox.enqueue(
            session, outbox.SLACK_THREAD, now=now, case_id=case.id, payload={"text": text}
        )

    async def run(self, stop: asyncio.Event, every: float) -> None:
        while not stop.is_set():
            try:
                fired = await self.tick()
                if any(fired.values()):
                    log.info("timers fired: %s", fired)
            except Exception as error:
                log.error("timers failed: %s", logs.kind(error), exc_info=error)
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except TimeoutError:
                continue
