"""``helpline hours`` and the due-time filters of ``helpline cases list``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import helpline
from tests.support.conversations import PROFESSIONAL_TO_REVIEW

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-27T15:00", {"open": True, "due_at": "2026-11-30T12:00:00+00:00"}),
        (
            "2026-11-28T12:00",
            {
                "open": False,
                "next_open": "2026-11-30T10:00:00+00:00",
                "due_at": "2026-11-30T13:00:00+00:00",
            },
        ),
        ("2026-08-28T15:00+01:00", {"open": True, "due_at": "2026-09-01T12:00:00+01:00"}),
    ],
)
def test_cli_hours_json(tmp_path: Path, at: str, expected: dict[str, object]) -> None:
    result = helpline("hours", "--at", at, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {k: data[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("at", "explained"),
    [
        ("2027-03-28T01:30", "does not exist in Europe/London"),
        ("2026-10-25T01:30", "+01:00 for the first time or +00:00 for the second"),
    ],
)
def test_cli_hours_a_local_time_the_clocks_skip_or_repeat_is_explained(
    tmp_path: Path, at: str, explained: str
) -> None:
    """Read in the helpline's zone, such a time is not one moment: none is guessed."""
    result = helpline("hours", "--at", at, cwd=tmp_path)
    assert result.returncode == 2 and explained in result.stderr, result.stderr
    offset_given = helpline("hours", "--at", f"{at}+00:00", "--json", cwd=tmp_path)
    assert offset_given.returncode == 0, offset_given.stderr


def test_cli_hours_bad_settings_are_explained(tmp_path: Path) -> None:
    result = helpline("hours", cwd=tmp_path, env={"HELPLINE_HOURS": "Funday 10-16"})
    assert result.returncode == 2 and "not valid" in result.stderr


def test_cli_lists_overdue_cases(tmp_path: Path) -> None:
    lines = "\n".join([*PROFESSIONAL_TO_REVIEW[1:], "submit"]) + "\n"
    helpline("chat", "--json", cwd=tmp_path, stdin=lines)
    later = helpline("cases", "list", "--due-before", "2099-01-01T00:00", "--json", cwd=tmp_path)
    assert len(json.loads(later.stdout)) == 1
    earlier = helpline("cases", "list", "--due-before", "2000-01-01T00:00", "--json", cwd=tmp_path)
    assert json.loads(earlier.stdout) == []
    overdue = helpline("cases", "list", "--overdue", "--json", cwd=tmp_path)
    assert json.loads(overdue.stdout) == []
