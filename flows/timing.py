"""Telling the enquirer honestly when they will hear back, from the working-time calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flows.copy import Copy
from flows.hours import WorkingCalendar


@dataclass(frozen=True, slots=True)
class Expectation:
    """When a case submitted now will be answered, and what to tell the enquirer."""

    open_now: bool
    due_at: datetime
    next_open: datetime
    note: str


def describe_opening(calendar: WorkingCalendar, moment: datetime, now: datetime, copy: Copy) -> str:
    """When the helpline opens next, in ``copy.toml``'s words: a time today, or a day and time."""
    local = moment.astimezone(calendar.zone)
    time = local.strftime("%H:%M")
    if local.date() == now.astimezone(calendar.zone).date():
        return copy("hours.opens_today", time=time)
    return copy("hours.opens", time=time, day=calendar.describe_day(moment))


def describe_due(calendar: WorkingCalendar, due: datetime, copy: Copy) -> str:
    """When a reply is due, in words ("by 12:00 on Monday 30 November"): the one wording,
    for enquirers, the Slack card and timers, and the terminal alike."""
    local = due.astimezone(calendar.zone)
    return copy("hours.due", time=local.strftime("%H:%M"), day=calendar.describe_day(due))


def expectation(
    calendar: WorkingCalendar, received: datetime, target: timedelta, copy: Copy
) -> Expectation:
    """The reply time for a case received now, counted in working time."""
    due = calendar.due_at(received, target)
    opens = calendar.next_open(received)
    if calendar.is_open(received):
        note = copy("hours.in_hours", due=describe_due(calendar, due, copy))
        return Expectation(True, due, opens, note)
    note = copy(
        "hours.out_of_hours",
        opens=describe_opening(calendar, opens, received, copy),
        due=describe_due(calendar, due, copy),
    )
    return Expectation(False, due, opens, note)
