"""Working-time calendar for the helpline (domain.md §5).

The helpline is open at fixed *wall-clock* hours in its own time zone (by default
Mon–Fri 10:00–16:00 Europe/London) except on bank holidays of its region and on any
extra closure days.  Response targets are counted in **working time**: only time
during which the helpline is open counts towards the target.

Conventions used throughout:

* An opening period is half-open: ``[open, close)``.  At exactly 10:00 the helpline
  is open; at exactly 16:00 it is closed.
* All ``datetime`` inputs must be timezone-aware (``ValueError`` otherwise).  All
  ``datetime`` outputs are aware and expressed in the helpline's zone (``zoneinfo``).
* Opening and closing times are wall-clock times in the helpline zone, so after a
  clock change the helpline still opens at 10:00 local time.  Arithmetic is done in
  UTC, so the amount of working time counted is real elapsed time.
* Searches forward give up (``ValueError``) after 366 consecutive days without any
  opening, e.g. when no opening hours are configured.

The module is pure: apart from reading the ``holidays`` package (cached per region
and year) and the system time-zone database, it performs no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from holidays.countries.united_kingdom import UnitedKingdom

__all__ = ["DEFAULT_HOURS", "DEFAULT_TARGET", "WorkingCalendar"]

DEFAULT_HOURS = "Mon-Fri 10:00-16:00"
DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_REGION = "ENG"
DEFAULT_TARGET = timedelta(hours=3)

#: How many consecutive days without an opening a forward search tolerates.
MAX_CLOSED_DAYS = 366

_COUNTRY = "GB"
_NO_REGION = ("", "NONE")

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAY_LOOKUP: dict[str, int] = {}
for _index, _name in enumerate(_DAY_NAMES):
    _DAY_LOOKUP[_name.lower()] = _index
    _DAY_LOOKUP[_name[:3].lower()] = _index
_DAY_LOOKUP.update({"tues": 1, "wed": 2, "weds": 2, "thur": 3, "thurs": 3})

# Hyphen, en dash and em dash are all accepted as range separators in specs.
_DASH = "[-\u2013\u2014]"
_SEGMENT_RE = re.compile(
    rf"^(?P<days>\S.*?)\s+(?P<open>\d{{1,2}}:\d{{2}})\s*{_DASH}\s*(?P<close>\d{{1,2}}:\d{{2}})$"
)
_TIME_RE = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)$")
_DASH_RE = re.compile(_DASH)


# --------------------------------------------------------------------------- holidays


def _normalise_region(region: str) -> str:
    """Return the canonical subdivision code for ``region`` ("" = no bank holidays)."""
    cleaned = region.strip()
    if cleaned.upper() in _NO_REGION:
        return ""
    codes: tuple[str, ...] = tuple(UnitedKingdom.subdivisions)
    if cleaned.upper() in codes:
        return cleaned.upper()
    aliases: Mapping[str, str] = UnitedKingdom.subdivisions_aliases
    for alias, code in aliases.items():
        if alias.lower() == cleaned.lower():
            return code
    known = ", ".join(codes)
    raise ValueError(
        f"unknown holiday region {region!r}: expected one of {known}, or 'none' to disable"
    )


@lru_cache(maxsize=256)
def _bank_holidays(region: str, year: int) -> frozenset[date]:
    """Bank holidays (including substitute days) of ``region`` in ``year``."""
    if not region:
        return frozenset()
    calendar = holidays.country_holidays(_COUNTRY, subdiv=region, years=year)
    return frozenset(calendar.keys())


# --------------------------------------------------------------------------- parsing


def _parse_time(text: str, spec: str) -> time:
    match = _TIME_RE.match(text)
    if match is None:
        raise ValueError(f"invalid time {text!r} in hours spec {spec!r}: expected HH:MM")
    return time(int(match["h"]), int(match["m"]))


def _parse_day(text: str, spec: str) -> int:
    day = _DAY_LOOKUP.get(text.strip().lower())
    if day is None:
        raise ValueError(f"unknown day {text.strip()!r} in hours spec {spec!r}")
    return day


def _parse_days(text: str, spec: str) -> list[int]:
    """Parse "Mon-Fri", "Sat", "Mon,Wed,Fri" or "Sun-Thu" (ranges may wrap)."""
    days: list[int] = []
    for part in text.split(","):
        if not part.strip():
            raise ValueError(f"empty day in hours spec {spec!r}")
        bounds = _DASH_RE.split(part)
        if len(bounds) == 1:
            days.append(_parse_day(bounds[0], spec))
        elif len(bounds) == 2:
            first, last = _parse_day(bounds[0], spec), _parse_day(bounds[1], spec)
            span = (last - first) % 7
            days.extend((first + offset) % 7 for offset in range(span + 1))
        else:
            raise ValueError(f"invalid day range {part.strip()!r} in hours spec {spec!r}")
    return days


def _parse_hours(spec: str) -> dict[int, tuple[time, time]]:
    """Parse e.g. ``"Mon-Thu 10:00-16:00; Fri 10:00-13:00"``."""
    opening: dict[int, tuple[time, time]] = {}
    segments = [segment.strip() for segment in spec.split(";")]
    if not any(segments):
        raise ValueError("hours spec is empty: expected e.g. 'Mon-Fri 10:00-16:00'")
    for segment in segments:
        if not segment:
            continue
        match = _SEGMENT_RE.match(segment)
        if match is None:
            raise ValueError(
                f"invalid hours segment {segment!r} in {spec!r}: "
                "expected '<days> HH:MM-HH:MM', e.g. 'Mon-Fri 10:00-16:00'"
            )
        opens = _parse_time(match["open"], spec)
        closes = _parse_time(match["close"], spec)
        if opens >= closes:
            raise ValueError(f"opening time must be before closing time in {segment!r}")
        for day in _parse_days(match["days"], spec):
            if day in opening:
                raise ValueError(f"{_DAY_NAMES[day]} is given more than once in {spec!r}")
            opening[day] = (opens, closes)
    return opening


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"invalid closure date {text.strip()!r}: expected YYYY-MM-DD") from None


def _parse_closures(spec: str) -> frozenset[date]:
    """Parse ``"2026-12-24,2026-12-29..2026-12-31"`` (ranges are inclusive)."""
    days: set[date] = set()
    for item in spec.split(","):
        if not item.strip():
            continue
        if ".." in item:
            first_text, _, last_text = item.partition("..")
            first, last = _parse_date(first_text), _parse_date(last_text)
            if last < first:
                raise ValueError(f"closure range {item.strip()!r} ends before it starts")
            days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
        else:
            days.add(_parse_date(item))
    return frozenset(days)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value!r}")


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class WorkingCalendar:
    """Opening hours, time zone, bank-holiday region and extra closure days.

    ``opening`` maps weekday (0 = Monday) to ``(open, close)`` wall-clock times in
    ``timezone``; a missing weekday is closed.  ``holiday_region`` is a ``GB``
    subdivision passed to the ``holidays`` package ("ENG", "WLS", "SCT", "NIR");
    "" or "none" disables bank holidays.  ``closures`` are extra closed days.

    Instances are immutable and hashable; the opening mapping is copied on creation.
    """

    opening: Mapping[int, tuple[time, time]]
    timezone: str = DEFAULT_TIMEZONE
    holiday_region: str = DEFAULT_REGION
    closures: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        opening: dict[int, tuple[time, time]] = {}
        for day, hours in sorted(self.opening.items()):
            if not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"weekday must be an int 0 (Mon)..6 (Sun), got {day!r}")
            opens, closes = hours
            if opens.tzinfo is not None or closes.tzinfo is not None:
                raise ValueError("opening times are wall-clock times: pass naive times")
            if opens >= closes:
                raise ValueError(
                    f"{_DAY_NAMES[day]}: opening time {opens} must be before closing time {closes}"
                )
            opening[day] = (opens, closes)
        closures: set[date] = set()
        for closed in self.closures:
            if isinstance(closed, datetime) or not isinstance(closed, date):
                raise ValueError(f"closures must be dates, got {closed!r}")
            closures.add(closed)
        _zone(self.timezone)
        object.__setattr__(self, "opening", MappingProxyType(opening))
        object.__setattr__(self, "holiday_region", _normalise_region(self.holiday_region))
        object.__setattr__(self, "closures", frozenset(closures))

    def __hash__(self) -> int:
        return hash(
            (tuple(self.opening.items()), self.timezone, self.holiday_region, self.closures)
        )

    # ------------------------------------------------------------------ constructors

    @classmethod
    def default(cls) -> WorkingCalendar:
        """Mon–Fri 10:00–16:00 Europe/London, England & Wales bank holidays."""
        return cls.from_spec()

    @classmethod
    def from_spec(
        cls,
        *,
        hours: str = DEFAULT_HOURS,
        timezone: str = DEFAULT_TIMEZONE,
        holiday_region: str = DEFAULT_REGION,
        closures: Iterable[date] | str = (),
    ) -> WorkingCalendar:
        """Build a calendar from human-readable settings.

        ``hours``: ``;``-separated segments ``<days> HH:MM-HH:MM``, where days are
        ``Mon``, ``Mon-Fri`` (ranges may wrap, e.g. ``Sun-Thu``) or ``Mon,Wed``;
        e.g. ``"Mon-Thu 10:00-16:00; Fri 10:00-13:00"``.
        ``closures``: dates, or a string like ``"2026-12-24,2026-12-29..2026-12-31"``
        (``..`` ranges are inclusive).

        Raises ``ValueError`` with a readable message on any invalid setting.
        """
        closure_days = (
            _parse_closures(closures) if isinstance(closures, str) else frozenset(closures)
        )
        return cls(
            opening=_parse_hours(hours),
            timezone=timezone,
            holiday_region=holiday_region,
            closures=closure_days,
        )

    # ------------------------------------------------------------------ queries

    @property
    def zone(self) -> ZoneInfo:
        """The helpline's time zone (``ZoneInfo`` instances are cached by zoneinfo)."""
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        """True if ``day`` has opening hours and is neither a bank holiday nor closed."""
        if isinstance(day, datetime):
            raise ValueError("is_working_day takes a date; use is_open for a datetime")
        return (
            day.weekday() in self.opening
            and day not in self.closures
            and day not in _bank_holidays(self.holiday_region, day.year)
        )

    def is_open(self, at: datetime) -> bool:
        """True if the helpline is open at ``at`` (open at opening time, closed at closing)."""
        _require_aware(at, "at")
        moment = at.astimezone(UTC)
        period = self._period(moment.astimezone(self.zone).date())
        return period is not None and period[0] <= moment < period[1]

    def next_open(self, at: datetime) -> datetime:
        """The earliest moment at or after ``at`` when the helpline is open.

        If the helpline is open at ``at`` this is ``at`` itself (in the helpline zone);
        otherwise it is the start of the next opening period, which is strictly after
        ``at`` (at exactly closing time that is the next working day's opening).
        """
        _require_aware(at, "at")
        moment = at.astimezone(UTC)
        opens, _closes = next(self._periods_from(moment))
        return max(opens, moment).astimezone(self.zone)

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The moment at which ``duration`` of open time has elapsed since ``start``.

        Only time inside opening periods counts.  If the duration runs out exactly at a
        closing time, that closing time is returned (not the next opening).  A zero
        duration returns ``next_open(start)``.
        """
        _require_aware(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        moment = start.astimezone(UTC)
        remaining = duration
        for opens, closes in self._periods_from(moment):
            begin = max(opens, moment)
            available = closes - begin
            if remaining <= available:
                return (begin + remaining).astimezone(self.zone)
            remaining -= available
        raise AssertionError("unreachable: _periods_from never ends normally")

    def due_at(self, received: datetime, target: timedelta = DEFAULT_TARGET) -> datetime:
        """When a case received at ``received`` is due: ``target`` of working time later."""
        return self.add_working_time(received, target)

    def describe_day(self, moment: datetime) -> str:
        """E.g. ``"Monday 30 November"`` (English names whatever the system locale)."""
        _require_aware(moment, "moment")
        local = moment.astimezone(self.zone)
        return f"{_DAY_NAMES[local.weekday()]} {local.day} {_MONTH_NAMES[local.month - 1]}"

    # ------------------------------------------------------------------ internals

    def _period(self, day: date) -> tuple[datetime, datetime] | None:
        """The opening period of local ``day`` as UTC datetimes, or None if closed."""
        if not self.is_working_day(day):
            return None
        opens, closes = self.opening[day.weekday()]
        zone = self.zone
        return (
            datetime.combine(day, opens, tzinfo=zone).astimezone(UTC),
            datetime.combine(day, closes, tzinfo=zone).astimezone(UTC),
        )

    def _periods_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening periods (UTC) that end after ``moment``, in order, indefinitely.

        Raises ``ValueError`` after ``MAX_CLOSED_DAYS`` consecutive days with none.
        """
        day = moment.astimezone(self.zone).date()
        closed_days = 0
        while closed_days <= MAX_CLOSED_DAYS:
            period = self._period(day)
            day += timedelta(days=1)
            if period is None or period[1] <= moment:
                closed_days += 1
                continue
            closed_days = 0
            yield period
        raise ValueError(
            f"the helpline has no opening in the {MAX_CLOSED_DAYS} days after "
            f"{moment.astimezone(self.zone).isoformat()}: check the opening hours and closures"
        )
