"""``helpline hours``: is the helpline open, and when would a case sent now be due."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from bot.cli.base import Commands, moment_in, offline
from bot.settings import Settings
from flows.copy import default_copy
from flows.timing import describe_due


def _hours(settings: Settings, args: argparse.Namespace) -> int:
    """Is the helpline open, when does it next open, when would a case sent now be due."""
    try:
        calendar = settings.calendar()
    except ValueError as error:
        print(f"Working hours settings are not valid: {error}", file=sys.stderr)
        return 2
    at = args.at or datetime.now(calendar.zone)
    at = at.astimezone(calendar.zone)
    due = calendar.due_at(at, settings.response_target)
    opens = calendar.next_open(at)
    is_open = calendar.is_open(at)
    if args.json:
        print(
            json.dumps({"open": is_open, "next_open": opens.isoformat(), "due_at": due.isoformat()})
        )
        return 0
    state = "open" if is_open else "closed"
    print(f"At {at:%a %d %b %Y %H:%M %Z} the helpline is {state}.")
    if not is_open:
        print(f"It next opens at {opens:%H:%M on %A %d %B %Y}.")
    target = f"{settings.response_target_hours:g} working hours"
    print(f"A case submitted now is due {describe_due(calendar, due, default_copy())} ({target}).")
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``hours [--at ISO-DATETIME] [--json]``."""
    hours = commands.add_parser("hours", help="is the helpline open, and when is a new case due")
    hours.add_argument(
        "--at", type=moment_in(settings.timezone), metavar="ISO-DATETIME", help="another moment"
    )
    hours.add_argument("--json", action="store_true")
    offline(hours, _hours)
