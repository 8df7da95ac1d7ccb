"""The time, as one injectable function (tests and benchmarks pass their own)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, in UTC: the service's clock."""
    return datetime.now(UTC)
