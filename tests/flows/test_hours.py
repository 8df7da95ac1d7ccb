"""Tests for the working-time calendar (domain.md §5)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows import hours
from flows.copy import default_copy
from flows.hours import WorkingCalendar
from flows.timing import describe_due

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
THREE_HOURS = timedelta(hours=3)
MINUTE = timedelta(minutes=1)


def london(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


@pytest.fixture
def calendar() -> WorkingCalendar:
    return WorkingCalendar.default()


# --------------------------------------------------------------------------- product cases


def test_due_at_friday_afternoon_rolls_over_weekend(calendar: WorkingCalendar) -> None:
    # 1 hour on Friday, 2 hours on Monday.
    assert calendar.due_at(london(2026, 11, 27, 15, 0)) == london(2026, 11, 30, 12, 0)


def test_due_at_saturday_is_monday_1300(calendar: WorkingCalendar) -> None:
    assert calendar.due_at(london(2026, 11, 28, 11, 30)) == london(2026, 11, 30, 13, 0)


def test_due_at_sunday_late_evening_is_monday_1300(calendar: WorkingCalendar) -> None:
    assert calendar.due_at(london(2026, 11, 29, 23, 59)) == london(2026, 11, 30, 13, 0)


def test_due_at_friday_before_bank_holiday_monday_is_tuesday(calendar: WorkingCalendar) -> None:
    # Monday 2026-08-31 is the summer bank holiday in England & Wales.
    assert calendar.due_at(london(2026, 8, 28, 15, 0)) == london(2026, 9, 1, 12, 0)


def test_due_at_received_at_closing_time_counts_as_closed(calendar: WorkingCalendar) -> None:
    assert calendar.due_at(london(2026, 11, 25, 16, 0)) == london(2026, 11, 26, 13, 0)


def test_due_at_received_at_opening_time_counts_as_open(calendar: WorkingCalendar) -> None:
    assert calendar.due_at(london(2026, 11, 25, 10, 0)) == london(2026, 11, 25, 13, 0)


def test_due_at_received_just_before_opening_is_same_day(calendar: WorkingCalendar) -> None:
    assert calendar.due_at(london(2026, 11, 25, 9, 59)) == london(2026, 11, 25, 13, 0)


def test_due_at_received_one_minute_before_close_spills_into_next_day(
    calendar: WorkingCalendar,
) -> None:
    assert calendar.due_at(london(2026, 11, 25, 15, 59)) == london(2026, 11, 26, 12, 59)


def test_due_at_ending_exactly_at_close_returns_closing_time(calendar: WorkingCalendar) -> None:
    assert calendar.due_at(london(2026, 11, 25, 13, 0)) == london(2026, 11, 25, 16, 0)


def test_due_at_custom_target_spans_days(calendar: WorkingCalendar) -> None:
    # 8 working hours from Monday 10:00 = all of Monday (6h) + 2h on Tuesday.
    due = calendar.due_at(london(2026, 11, 23, 10, 0), target=timedelta(hours=8))
    assert due == london(2026, 11, 24, 12, 0)


def test_due_at_keeps_seconds(calendar: WorkingCalendar) -> None:
    received = datetime(2026, 11, 25, 11, 15, 42, 500, tzinfo=LONDON)
    assert calendar.due_at(received) == datetime(2026, 11, 25, 14, 15, 42, 500, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [(9, 59, False), (10, 0, True), (15, 59, True), (16, 0, False)],
)
def test_is_open_boundary_minutes(
    calendar: WorkingCalendar, hour: int, minute: int, expected: bool
) -> None:
    assert calendar.is_open(london(2026, 11, 25, hour, minute)) is expected


def test_is_open_closed_at_weekend_and_at_night(calendar: WorkingCalendar) -> None:
    assert not calendar.is_open(london(2026, 11, 28, 12, 0))  # Saturday
    assert not calendar.is_open(london(2026, 11, 29, 12, 0))  # Sunday
    assert not calendar.is_open(london(2026, 11, 25, 3, 0))


# --------------------------------------------------------------------------- clock changes


def test_due_at_spring_forward_week_uses_bst_on_monday(calendar: WorkingCalendar) -> None:
    # Clocks go forward on Sunday 2026-03-29: Friday is GMT, Monday is BST.
    received = london(2026, 3, 27, 15, 0)
    assert received.utcoffset() == timedelta(0)
    due = calendar.due_at(received)
    assert due == london(2026, 3, 30, 12, 0)
    assert due.utcoffset() == timedelta(hours=1)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 11, 0, tzinfo=UTC)


def test_due_at_fall_back_week_uses_gmt_on_monday(calendar: WorkingCalendar) -> None:
    # Clocks go back on Sunday 2026-10-25: Friday is BST, Monday is GMT.
    received = london(2026, 10, 23, 15, 0)
    assert received.utcoffset() == timedelta(hours=1)
    due = calendar.due_at(received)
    assert due == london(2026, 10, 26, 12, 0)
    assert due.utcoffset() == timedelta(0)
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 12, 0, tzinfo=UTC)


def test_is_open_follows_wall_clock_after_spring_forward(calendar: WorkingCalendar) -> None:
    # 09:30 UTC is 09:30 (closed) on the Friday before, 10:30 BST (open) on the Monday after.
    assert not calendar.is_open(datetime(2026, 3, 27, 9, 30, tzinfo=UTC))
    assert calendar.is_open(datetime(2026, 3, 30, 9, 30, tzinfo=UTC))
    # Closing at 16:00 BST = 15:00 UTC.
    assert not calendar.is_open(datetime(2026, 3, 30, 15, 0, tzinfo=UTC))


def test_is_open_follows_wall_clock_after_fall_back(calendar: WorkingCalendar) -> None:
    # 15:30 UTC is 16:30 BST (closed) before, 15:30 GMT (open) after.
    assert not calendar.is_open(datetime(2026, 10, 23, 15, 30, tzinfo=UTC))
    assert calendar.is_open(datetime(2026, 10, 26, 15, 30, tzinfo=UTC))


def test_add_working_time_over_clock_change_weekend_counts_open_hours(
    calendar: WorkingCalendar,
) -> None:
    # Two full working days (12h) from Friday opening: Friday GMT + Monday BST.
    due = calendar.add_working_time(london(2026, 3, 27, 10, 0), timedelta(hours=12))
    assert due == london(2026, 3, 30, 16, 0)


def test_is_open_false_during_clock_change_night(calendar: WorkingCalendar) -> None:
    assert not calendar.is_open(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    assert not calendar.is_open(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))


# --------------------------------------------------------------------------- holidays


def test_is_working_day_christmas_substitute_day_2022_england(calendar: WorkingCalendar) -> None:
    # Christmas 2022 fell on a Sunday: Monday 26 (Boxing Day) and Tuesday 27 (substitute).
    assert not calendar.is_working_day(date(2022, 12, 26))
    assert not calendar.is_working_day(date(2022, 12, 27))
    assert calendar.is_working_day(date(2022, 12, 28))


def test_due_at_over_christmas_2022_substitute_days(calendar: WorkingCalendar) -> None:
    assert calendar.due_at(london(2022, 12, 23, 15, 0)) == london(2022, 12, 28, 12, 0)


def test_due_at_over_christmas_2026_skips_boxing_day_substitute(
    calendar: WorkingCalendar,
) -> None:
    # Fri 25 Christmas, Sat 26 Boxing Day, Mon 28 substitute holiday.
    assert calendar.due_at(london(2026, 12, 24, 15, 0)) == london(2026, 12, 29, 12, 0)


def test_is_working_day_new_years_day_closed_everywhere() -> None:
    for region in ("ENG", "WLS", "SCT", "NIR"):
        cal = WorkingCalendar.from_spec(holiday_region=region)
        assert not cal.is_working_day(date(2026, 1, 1)), region


def test_is_working_day_second_of_january_holiday_in_scotland_only() -> None:
    england = WorkingCalendar.from_spec(holiday_region="ENG")
    scotland = WorkingCalendar.from_spec(holiday_region="SCT")
    assert england.is_working_day(date(2026, 1, 2))
    assert not scotland.is_working_day(date(2026, 1, 2))


def test_due_at_new_year_differs_between_england_and_scotland() -> None:
    received = london(2025, 12, 31, 15, 0)
    england = WorkingCalendar.from_spec(holiday_region="ENG")
    scotland = WorkingCalendar.from_spec(holiday_region="SCT")
    assert england.due_at(received) == london(2026, 1, 2, 12, 0)
    assert scotland.due_at(received) == london(2026, 1, 5, 12, 0)


def test_holiday_region_northern_ireland_has_st_patricks_day() -> None:
    assert not WorkingCalendar.from_spec(holiday_region="NIR").is_working_day(date(2026, 3, 17))
    assert WorkingCalendar.from_spec(holiday_region="ENG").is_working_day(date(2026, 3, 17))


def test_holiday_region_wales_accepted_and_matches_england() -> None:
    wales = WorkingCalendar.from_spec(holiday_region="WLS")
    assert not wales.is_working_day(date(2026, 8, 31))
    assert wales.due_at(london(2026, 8, 28, 15, 0)) == london(2026, 9, 1, 12, 0)


@pytest.mark.parametrize("region", ["", "none", "NONE", " None "])
def test_holiday_region_none_disables_bank_holidays(region: str) -> None:
    cal = WorkingCalendar.from_spec(holiday_region=region)
    assert cal.holiday_region == ""
    assert cal.is_working_day(date(2026, 8, 31))
    assert cal.due_at(london(2026, 8, 28, 15, 0)) == london(2026, 8, 31, 12, 0)


@pytest.mark.parametrize(("given_region", "code"), [("sct", "SCT"), ("Scotland", "SCT")])
def test_holiday_region_normalised_to_code(given_region: str, code: str) -> None:
    assert WorkingCalendar.from_spec(holiday_region=given_region).holiday_region == code


def test_holiday_lookups_cached_per_region_and_year(
    calendar: WorkingCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []
    real = holidays.country_holidays

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, tuple(sorted(kwargs.items()))))
        return real(*args, **kwargs)

    hours._bank_holidays.cache_clear()
    monkeypatch.setattr(holidays, "country_holidays", counting)
    for day in range(1, 29):
        calendar.due_at(london(2026, 2, day, 12, 0))
    assert len(calls) == 1
    assert calls[0] == (("GB",), (("subdiv", "ENG"), ("years", 2026)))
    hours._bank_holidays.cache_clear()


# --------------------------------------------------------------------------- closures


def test_from_spec_closure_days_are_closed() -> None:
    cal = WorkingCalendar.from_spec(closures="2026-12-24, 2026-12-29..2026-12-31")
    assert cal.closures == frozenset(
        {date(2026, 12, 24), date(2026, 12, 29), date(2026, 12, 30), date(2026, 12, 31)}
    )
    assert not cal.is_working_day(date(2026, 12, 24))
    assert not cal.is_open(london(2026, 12, 30, 12, 0))
    # Wed 23 15:00 → 1h Wed; Thu 24 closure; 25, 26, 28 holidays; 29–31 closures; 1 Jan holiday.
    assert cal.due_at(london(2026, 12, 23, 15, 0)) == london(2027, 1, 4, 12, 0)


def test_from_spec_closures_accept_dates() -> None:
    cal = WorkingCalendar.from_spec(closures=[date(2026, 11, 30)])
    assert cal.due_at(london(2026, 11, 27, 15, 0)) == london(2026, 12, 1, 12, 0)


def test_from_spec_empty_closures_string_means_none() -> None:
    assert WorkingCalendar.from_spec(closures="").closures == frozenset()


@pytest.mark.parametrize(
    ("closures", "message"),
    [
        ("2026-13-01", "invalid closure date"),
        ("tomorrow", "invalid closure date"),
        ("2026-12-31..2026-12-24", "ends before it starts"),
        ("2026-12-24..", "invalid closure date"),
    ],
)
def test_from_spec_rejects_bad_closures(closures: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingCalendar.from_spec(closures=closures)


def test_calendar_rejects_datetime_closures() -> None:
    with pytest.raises(ValueError, match="closures must be dates"):
        WorkingCalendar.from_spec(closures=[datetime(2026, 12, 24, tzinfo=LONDON)])


# --------------------------------------------------------------------------- time zones


def test_due_at_input_in_utc_same_as_london(calendar: WorkingCalendar) -> None:
    # 14:00 UTC on Friday 10 July 2026 is 15:00 BST.
    from_utc = calendar.due_at(datetime(2026, 7, 10, 14, 0, tzinfo=UTC))
    from_london = calendar.due_at(london(2026, 7, 10, 15, 0))
    assert from_utc == from_london == london(2026, 7, 13, 12, 0)
    assert from_utc.tzinfo == LONDON


def test_due_at_input_in_other_zone_returned_in_helpline_zone(calendar: WorkingCalendar) -> None:
    # 05:00 in New York = 10:00 in London (both on standard time in late November).
    due = calendar.due_at(datetime(2026, 11, 25, 5, 0, tzinfo=NEW_YORK))
    assert due.tzinfo == LONDON
    assert (due.hour, due.minute, due.day) == (13, 0, 25)


def test_calendar_in_other_time_zone_uses_its_wall_clock() -> None:
    cal = WorkingCalendar.from_spec(timezone="America/New_York", holiday_region="none")
    assert cal.is_open(datetime(2026, 11, 25, 10, 0, tzinfo=NEW_YORK))
    assert not cal.is_open(london(2026, 11, 25, 10, 0))  # 05:00 in New York
    assert cal.due_at(london(2026, 11, 25, 10, 0)).tzinfo == NEW_YORK


@pytest.mark.parametrize(
    "call",
    [
        lambda cal, naive: cal.is_open(naive),
        lambda cal, naive: cal.next_open(naive),
        lambda cal, naive: cal.add_working_time(naive, THREE_HOURS),
        lambda cal, naive: cal.due_at(naive),
        lambda cal, naive: describe_due(cal, naive, default_copy()),
    ],
    ids=["is_open", "next_open", "add_working_time", "due_at", "describe_due"],
)
def test_naive_datetime_rejected(
    calendar: WorkingCalendar, call: Callable[[WorkingCalendar, datetime], object]
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(calendar, datetime(2026, 11, 25, 12, 0))


# --------------------------------------------------------------------------- next_open


def test_next_open_when_open_returns_same_moment(calendar: WorkingCalendar) -> None:
    at = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    assert calendar.next_open(at) == at
    assert calendar.next_open(at).tzinfo == LONDON


def test_next_open_at_closing_time_is_next_morning(calendar: WorkingCalendar) -> None:
    assert calendar.next_open(london(2026, 11, 25, 16, 0)) == london(2026, 11, 26, 10, 0)


def test_next_open_before_opening_is_same_morning(calendar: WorkingCalendar) -> None:
    assert calendar.next_open(london(2026, 11, 25, 7, 0)) == london(2026, 11, 25, 10, 0)


def test_next_open_friday_evening_is_monday(calendar: WorkingCalendar) -> None:
    assert calendar.next_open(london(2026, 11, 27, 18, 0)) == london(2026, 11, 30, 10, 0)


def test_next_open_skips_bank_holiday(calendar: WorkingCalendar) -> None:
    assert calendar.next_open(london(2026, 8, 29, 12, 0)) == london(2026, 9, 1, 10, 0)


# --------------------------------------------------------------------------- describe_due


def test_describe_due_has_no_leading_zero_on_day(calendar: WorkingCalendar) -> None:
    copy = default_copy()
    assert describe_due(calendar, london(2026, 11, 30, 12, 0), copy) == (
        "by 12:00 on Monday 30 November"
    )
    assert describe_due(calendar, london(2026, 9, 1, 10, 5), copy) == (
        "by 10:05 on Tuesday 1 September"
    )


def test_describe_due_converts_to_helpline_zone(calendar: WorkingCalendar) -> None:
    # 11:00 UTC on 30 March 2026 is 12:00 BST.
    due = datetime(2026, 3, 30, 11, 0, tzinfo=UTC)
    assert describe_due(calendar, due, default_copy()) == "by 12:00 on Monday 30 March"


# --------------------------------------------------------------------------- spec parsing


def test_default_is_weekdays_ten_to_four_london_england() -> None:
    cal = WorkingCalendar.default()
    assert dict(cal.opening) == {day: (time(10), time(16)) for day in range(5)}
    assert cal.timezone == "Europe/London"
    assert cal.holiday_region == "ENG"
    assert cal.closures == frozenset()
    assert cal == WorkingCalendar.from_spec()


def test_from_spec_parses_split_week() -> None:
    cal = WorkingCalendar.from_spec(hours="Mon-Thu 10:00-16:00; Fri 10:00-13:00")
    assert cal.opening[3] == (time(10), time(16))
    assert cal.opening[4] == (time(10), time(13))
    assert 5 not in cal.opening
    # Friday 12:00: 1h on Friday, 2h on Monday.
    assert cal.due_at(london(2026, 11, 27, 12, 0)) == london(2026, 11, 30, 12, 0)


def test_from_spec_accepts_en_dashes_full_names_and_lists() -> None:
    cal = WorkingCalendar.from_spec(hours="monday–wednesday 9:30–17:00; Fri, Sat 10:00 - 12:00")
    assert dict(cal.opening) == {
        0: (time(9, 30), time(17)),
        1: (time(9, 30), time(17)),
        2: (time(9, 30), time(17)),
        4: (time(10), time(12)),
        5: (time(10), time(12)),
    }


def test_from_spec_day_range_may_wrap_round_the_week() -> None:
    cal = WorkingCalendar.from_spec(hours="Sun-Thu 08:00-12:00")
    assert sorted(cal.opening) == [0, 1, 2, 3, 6]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("   ;  ", "empty"),
        ("Mon-Fri", "invalid hours segment"),
        ("Mon-Fri 10:00", "invalid hours segment"),
        ("10:00-16:00", "invalid hours segment"),
        ("Mon-Fri 10-16", "invalid hours segment"),
        ("Funday 10:00-16:00", "unknown day 'Funday'"),
        ("Mon-Tue-Wed 10:00-16:00", "invalid day range"),
        ("Mon,,Fri 10:00-16:00", "empty day"),
        ("Mon-Fri 16:00-10:00", "before closing time"),
        ("Mon-Fri 10:00-10:00", "before closing time"),
        ("Mon-Fri 10:00-25:00", "invalid time '25:00'"),
        ("Mon-Fri 10:60-16:00", "invalid time '10:60'"),
        ("Mon-Fri 10:00-16:00; Fri 10:00-13:00", "Friday is given more than once"),
    ],
)
def test_from_spec_rejects_bad_hours(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingCalendar.from_spec(hours=spec)


@pytest.mark.parametrize("zone", ["Europe/Londres", "Not a zone", "", "../etc/passwd"])
def test_from_spec_rejects_unknown_time_zone(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        WorkingCalendar.from_spec(timezone=zone)


@pytest.mark.parametrize("region", ["XX", "GB", "England and Wales"])
def test_from_spec_rejects_unknown_holiday_region(region: str) -> None:
    with pytest.raises(ValueError, match="unknown holiday region"):
        WorkingCalendar.from_spec(holiday_region=region)


@pytest.mark.parametrize(
    "opening",
    [
        {7: (time(10), time(16))},
        {-1: (time(10), time(16))},
        {0: (time(16), time(10))},
        {0: (time(10, tzinfo=UTC), time(16, tzinfo=UTC))},
    ],
)
def test_calendar_rejects_invalid_opening(opening: dict[int, tuple[time, time]]) -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(opening=opening)


# --------------------------------------------------------------------------- immutability


def test_calendar_is_frozen_and_hashable(calendar: WorkingCalendar) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        calendar.timezone = "UTC"  # type: ignore[misc]
    assert hash(calendar) == hash(WorkingCalendar.default())
    assert {calendar: "x"}[WorkingCalendar.default()] == "x"


def test_calendar_copies_opening_mapping() -> None:
    opening = {0: (time(10), time(16))}
    cal = WorkingCalendar(opening=opening)
    opening[1] = (time(10), time(16))
    assert 1 not in cal.opening
    with pytest.raises(TypeError):
        cal.opening[1] = (time(10), time(16))  # type: ignore[index]


# --------------------------------------------------------------------------- termination


def test_due_at_without_any_opening_hours_raises() -> None:
    cal = WorkingCalendar(opening={})
    with pytest.raises(ValueError, match="no opening"):
        cal.due_at(london(2026, 11, 25, 12, 0))
    with pytest.raises(ValueError, match="no opening"):
        cal.next_open(london(2026, 11, 25, 12, 0))


def test_due_at_closed_for_over_a_year_raises() -> None:
    cal = WorkingCalendar.from_spec(closures="2026-01-01..2027-12-31")
    with pytest.raises(ValueError, match="no opening"):
        cal.due_at(london(2026, 6, 1, 12, 0))


def test_add_working_time_rejects_negative_duration(calendar: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="negative"):
        calendar.add_working_time(london(2026, 11, 25, 12, 0), -MINUTE)


def test_add_working_time_zero_duration_is_next_open(calendar: WorkingCalendar) -> None:
    assert calendar.add_working_time(london(2026, 11, 25, 12, 0), timedelta(0)) == london(
        2026, 11, 25, 12, 0
    )
    assert calendar.add_working_time(london(2026, 11, 28, 12, 0), timedelta(0)) == london(
        2026, 11, 30, 10, 0
    )


def test_add_working_time_long_duration_spans_many_weeks(calendar: WorkingCalendar) -> None:
    # 10 working weeks of 30 hours from Monday 2026-01-05 10:00 (no bank holidays until April).
    due = calendar.add_working_time(london(2026, 1, 5, 10, 0), timedelta(hours=300))
    assert due == london(2026, 3, 13, 16, 0)


# --------------------------------------------------------------------------- properties


def open_minutes(cal: WorkingCalendar, start: datetime, end: datetime) -> int:
    """Count the minutes [m, m+1) in [start, end) during which the helpline is open.

    Deliberately naive (minute by minute, using only ``is_open``) so that it checks
    ``add_working_time`` independently.  ``start`` and ``end`` must be minute-aligned.
    """
    moment, stop = start.astimezone(UTC), end.astimezone(UTC)
    count = 0
    while moment < stop:
        if cal.is_open(moment):
            count += 1
        moment += MINUTE
    return count


def is_closing_time(cal: WorkingCalendar, at: datetime) -> bool:
    local = at.astimezone(cal.zone)
    if not cal.is_working_day(local.date()):
        return False
    return local.time() == cal.opening[local.weekday()][1]


PROPERTY_CALENDARS = [
    WorkingCalendar.default(),
    WorkingCalendar.from_spec(
        hours="Mon-Thu 10:00-16:00; Fri 10:00-13:00",
        holiday_region="SCT",
        closures="2026-12-24,2026-12-29..2026-12-31",
    ),
    WorkingCalendar.from_spec(hours="Sun-Thu 08:30-12:15", timezone="America/New_York"),
]

received_moments = st.datetimes(
    min_value=datetime(2021, 1, 1),
    max_value=datetime(2029, 12, 31),
    timezones=st.sampled_from([UTC, LONDON, NEW_YORK, ZoneInfo("Asia/Kolkata")]),
).map(lambda at: at.replace(second=0, microsecond=0))


@settings(max_examples=200, deadline=None)
@given(
    cal=st.sampled_from(PROPERTY_CALENDARS),
    received=received_moments,
    target_minutes=st.integers(min_value=1, max_value=12 * 60),
)
def test_due_at_property_open_time_between_received_and_due_equals_target(
    cal: WorkingCalendar, received: datetime, target_minutes: int
) -> None:
    target = timedelta(minutes=target_minutes)
    due = cal.due_at(received, target)
    assert due.tzinfo == cal.zone
    assert due >= received
    assert cal.is_open(due) or is_closing_time(cal, due)
    assert cal.is_open(due - MINUTE)  # nothing is wasted: the last minute counted was open
    assert open_minutes(cal, received, due) == target_minutes


@settings(max_examples=200, deadline=None)
@given(cal=st.sampled_from(PROPERTY_CALENDARS), at=received_moments)
def test_next_open_property_is_first_open_moment(cal: WorkingCalendar, at: datetime) -> None:
    opens = cal.next_open(at)
    assert opens >= at
    assert cal.is_open(opens)
    assert open_minutes(cal, at, opens) == 0
