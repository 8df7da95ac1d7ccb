"""The ICO's calendar-month rule for subject access requests, at month ends and leap years."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flows.privacy import add_months, answer_by, due_date, is_overdue


def test_due_date_is_the_corresponding_day_next_month() -> None:
    assert due_date(date(2026, 9, 3)) == date(2026, 10, 3)
    assert due_date(date(2026, 12, 15)) == date(2027, 1, 15)


def test_due_date_at_a_month_end_is_the_last_day_of_the_next_month() -> None:
    assert due_date(date(2027, 1, 31)) == date(2027, 2, 28)
    assert due_date(date(2028, 1, 31)) == date(2028, 2, 29)  # leap year
    assert due_date(date(2026, 3, 31)) == date(2026, 4, 30)
    assert due_date(date(2026, 1, 30)) == date(2026, 2, 28)


def test_extended_requests_get_two_more_months() -> None:
    assert due_date(date(2026, 9, 3), extended=True) == date(2026, 12, 3)
    assert due_date(date(2026, 11, 30), extended=True) == date(2027, 2, 28)


def test_answer_by_moves_off_days_that_are_not_working_days() -> None:
    weekday = lambda d: d.weekday() < 5  # noqa: E731
    # 2027-02-28 is a Sunday: the next working day is Monday 1 March.
    assert answer_by(date(2027, 1, 31), working_day=weekday) == date(2027, 3, 1)
    assert answer_by(date(2026, 9, 3), working_day=weekday) == date(2026, 10, 5)  # a Saturday


def test_a_request_due_today_is_not_yet_overdue() -> None:
    assert not is_overdue(date(2026, 10, 3), date(2026, 10, 3))
    assert is_overdue(date(2026, 10, 3), date(2026, 10, 4))


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31)), st.integers(0, 40))
def test_add_months_keeps_the_day_or_the_month_end(day: date, months: int) -> None:
    later = add_months(day, months)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == months
    if later.day != day.day:
        assert later.day < day.day
        assert (later + timedelta(days=1)).day == 1  # the last day of its month


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31)))
def test_due_date_is_between_28_and_31_days_after_receipt(day: date) -> None:
    assert 28 <= (due_date(day) - day).days <= 31
    assert due_date(day, extended=True) >= due_date(day)
