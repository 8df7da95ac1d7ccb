"""The annual analysis from known datasets, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.report import Period, analysis
from storage.transfer import COLUMNS, export_rows, import_cases
from tests.support.report_data import CATEGORIES, DATASET, HEADER, LONDON, VOCAB, YEAR


async def load(sessions: async_sessionmaker[AsyncSession], text: str = DATASET) -> None:
    async with sessions() as session, session.begin():
        result = await import_cases(session, io.StringIO(text), VOCAB, LONDON)
        assert result.ok, result.errors


async def run(sessions: async_sessionmaker[AsyncSession], period: Period = YEAR) -> dict[str, Any]:
    async with sessions() as session:
        return await analysis(session, period, CATEGORIES)


async def test_report_counts_every_table_exactly(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions)
    data = await run(sessions)
    assert data["period"] == {"from": "2022-09-01", "to": "2023-08-31"}
    assert data["total_cases"] == 5
    assert data["by_channel"] == {"email": 4, "phone": 1}
    assert data["enquirer_type"] == {"Teacher": 2, "DSL": 1, "Head Teacher": 1, "Parent": 1}
    assert data["setting"] == {"Primary": 2, "Secondary": 2}
    assert data["platform_type"] == {"Social Networks": 3, "Websites": 1}
    assert data["social_platform"] == {"TikTok": 2, "Instagram": 1}
    assert data["by_region"] == {"London": 1, "North East": 1, "South East": 1, "Wales": 1}
    assert data["referred_to_platform_percent"] == pytest.approx(40.0)
    assert list(data["by_month"]) == [
        f"{y}-{m:02d}"
        for y, m in [(2022, 9), (2022, 10), (2022, 11), (2022, 12)]
        + [(2023, m) for m in range(1, 9)]
    ]
    assert (
        data["by_month"]["2022-09"] == 2
        and data["by_month"]["2023-03"] == 2
        and data["by_month"]["2023-08"] == 1
    )
    assert sum(data["by_month"].values()) == 5


async def test_report_categories_are_shares_of_all_cases_with_zeros(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions)
    cats = (await run(sessions))["categories"]
    assert set(cats) == set(CATEGORIES)
    assert cats["Online Reputation"] == {"count": 2, "percent": pytest.approx(40.0)}
    assert cats["Cyberbullying"] == {"count": 2, "percent": pytest.approx(40.0)}
    assert cats["Hate Speech"]["count"] == 1
    assert cats["Sextortion"] == {"count": 0, "percent": 0.0}
    top = (await run(sessions))["top_categories"]
    assert top[:2] == ["Cyberbullying", "Online Reputation"] or top[:2] == [
        "Online Reputation",
        "Cyberbullying",
    ]
    assert len(top) == 5


async def test_report_subject_words_drop_stop_words_and_prefixes_and_keep_common_spelling(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions)
    words = dict((await run(sessions))["subject_words"])
    assert words["TikTok"] == 3  # "TikTok" twice, "Tiktok" once: the common spelling wins
    assert words["account"] == 3
    assert "RE" not in words and "re" not in words and "Fw" not in words and "the" not in words
    assert words["school's"] == 1


async def test_report_figure_4_shares_within_each_setting(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions)
    shares = (await run(sessions))["setting_categories"]
    assert shares["Primary"] == {
        "Cyberbullying": 50.0,
        "Hate Speech": 50.0,
        "Online Reputation": 50.0,
    }
    assert shares["Secondary"] == {
        "Cyberbullying": 50.0,
        "Online Reputation": 50.0,
        "Potentially Harmful Content": 50.0,
    }


async def test_report_empty_period_is_all_zeros(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions)
    data = await run(sessions, Period(date(2019, 1, 1), date(2019, 2, 28), LONDON))
    assert data["total_cases"] == 0
    assert data["by_month"] == {"2019-01": 0, "2019-02": 0}
    assert data["referred_to_platform_percent"] == 0.0
    assert all(v == {"count": 0, "percent": 0.0} for v in data["categories"].values())
    assert data["top_categories"] == [] and data["subject_words"] == []


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "X1,2023-01-01T10:00:00,email,Wizard,,,,,,s,,,,new",
            "line 2: unknown enquirer_type 'Wizard'",
        ),
        (
            "X1,yesterday,email,Teacher,,,,,,s,,,,new",
            "line 2: received_at 'yesterday' is not an ISO 8601",
        ),
        (
            "X1,2023-01-01T10:00:00,email,Teacher,,,,,Cyberbullying;Nonsense,s,,,,new",
            "line 2: unknown category 'Nonsense'",
        ),
        (
            "X1,2023-01-01T10:00:00,email,Teacher,,,,,,s,,maybe,,new",
            "line 2: referred_to_platform must be true or false",
        ),
        ("X1,2023-01-01T10:00:00,email,Teacher,,,,,,s,,,,lost", "line 2: unknown status 'lost'"),
    ],
)
async def test_import_reports_bad_rows_with_line_numbers_and_writes_nothing(
    sessions: async_sessionmaker[AsyncSession], row: str, problem: str
) -> None:
    good = "X0,2023-01-01T10:00:00,email,Teacher,,,,,,ok,,,,new"
    async with sessions() as session, session.begin():
        result = await import_cases(
            session, io.StringIO(f"{HEADER}\n{row}\n{good}\n"), VOCAB, LONDON
        )
    assert not result.ok
    assert any(e.startswith(problem) for e in result.errors), result.errors
    assert (await run(sessions, Period(date(2023, 1, 1), date(2023, 1, 31), LONDON)))[
        "total_cases"
    ] == 0


async def test_import_refuses_duplicates_in_the_file_and_a_second_import(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    dup = f"{HEADER}\nD1,2023-01-01T10:00:00,email,Teacher,,,,,,a,,,,new\nD1,2023-01-02T10:00:00,email,Teacher,,,,,,b,,,,new\n"
    async with sessions() as session, session.begin():
        result = await import_cases(session, io.StringIO(dup), VOCAB, LONDON)
    assert result.errors == ["line 3: duplicate reference D1 (also on line 2)"]
    await load(sessions)
    async with sessions() as session, session.begin():
        again = await import_cases(session, io.StringIO(DATASET), VOCAB, LONDON)
    assert not again.ok and "line 2: reference R01 is already in the database" in again.errors
    assert (await run(sessions))["total_cases"] == 5


async def test_import_rejects_a_file_without_the_columns(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        result = await import_cases(session, io.StringIO("a,b\n1,2\n"), VOCAB, LONDON)
    assert result.errors and result.errors[0].startswith("line 1: missing columns")


async def test_export_round_trips_through_import(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions)
    async with sessions() as session:
        rows = [row async for row in export_rows(session, YEAR.start, YEAR.end, LONDON)]
    assert rows[0] == list(COLUMNS)
    assert [r[0] for r in rows[1:]] == ["R01", "R03", "R04", "R05", "R06"]
    assert rows[1][8] == "Online Reputation;Cyberbullying" and rows[1][11] == "true"
    assert rows[1][1] == "2022-09-01T00:30:00+01:00"


async def test_import_references_are_stored_upper_case_like_every_lookup(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from storage.cases import get_case

    rows = f"{HEADER}\nhl-old-1,2023-01-01T10:00:00,email,Teacher,,,,,,a,,,,new\nHL-OLD-1,2023-01-02T10:00:00,email,Teacher,,,,,,b,,,,new\n"
    async with sessions() as session, session.begin():
        result = await import_cases(session, io.StringIO(rows), VOCAB, LONDON)
    assert result.errors == ["line 3: duplicate reference HL-OLD-1 (also on line 2)"]
    await load(sessions, f"{HEADER}\nhl-old-2,2023-01-01T10:00:00,email,Teacher,,,,,,a,,,,new\n")
    async with sessions() as session:
        assert await get_case(session, "hl-old-2") is not None
