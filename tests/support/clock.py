"""A clock the test sets: the service and the timers read the time from it."""

from __future__ import annotations

from datetime import datetime


class Clock:
    """Says ``at`` until a test moves it (``clock.at = ...``)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at
