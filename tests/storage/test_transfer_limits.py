"""`helpline import`'s guards, on SQLite and PostgreSQL: a malformed row is refused with its
line number (never imported with fields missing), sizes are capped, text is cleaned, and
export cells cannot run as spreadsheet formulas."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.text import normalise
from storage.models import Case
from storage.transfer import csv_cell, from_csv_cell, import_cases
from tests.support.report_data import HEADER, LONDON, VOCAB

GOOD = "G1,2023-01-01T10:00:00,email,Teacher,,,,,,ok,,,,new"


async def imported(
    sessions: async_sessionmaker[AsyncSession], text: str, **limits: int
) -> list[str]:
    async with sessions() as session, session.begin():
        result = await import_cases(
            session, io.StringIO(text), VOCAB, LONDON, clean=normalise, **limits
        )
        if not result.ok:
            await session.rollback()
    return result.errors


async def cases(sessions: async_sessionmaker[AsyncSession]) -> list[Case]:
    async with sessions() as session:
        return list((await session.execute(select(Case))).scalars())


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        # An unterminated quote swallows the rest of the file into one field.
        (['U1,2023-01-01T10:00:00,email,Teacher,,,,,,"never closed,,,,new', GOOD], "line 2: "),
        (["S1,2023-01-01T10:00:00,email,Teacher,,", GOOD], "line 2: 6 columns where the header"),
        ([GOOD, "L1,2023-01-01T10:00:00,email,Teacher,,,,,,s,,,,new,x,y"], "line 3: 16 columns"),
        (['Q1,2023-01-01T10:00:00,email,Teacher,,,,,,"a"b,,,,new'], "line 2: ',' expected"),
    ],
)
async def test_import_refuses_malformed_rows_with_their_line(
    sessions: async_sessionmaker[AsyncSession], rows: list[str], problem: str
) -> None:
    errors = await imported(sessions, "\n".join([HEADER, *rows]) + "\n")
    assert any(e.startswith(problem) for e in errors), errors
    assert await cases(sessions) == []


async def test_import_unterminated_quote_at_the_end_says_so(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    errors = await imported(sessions, f'{HEADER}\n{GOOD}\nU2,2023,"email\n')
    assert errors == ["line 3: a quoted field is never closed (the file ends inside it)"]


async def test_import_caps_line_and_file_sizes(sessions: async_sessionmaker[AsyncSession]) -> None:
    long_row = "B1,2023-01-01T10:00:00,email,Teacher,,,,,," + "x" * 500 + ",,,,new"
    errors = await imported(sessions, f"{HEADER}\n{GOOD}\n{long_row}\n", max_line=300)
    assert errors == ["line 3: longer than 300 characters"]
    many = "\n".join([HEADER, *(GOOD.replace("G1", f"G{n}") for n in range(50))]) + "\n"
    errors = await imported(sessions, many, max_file=1_000)
    assert len(errors) == 1 and errors[0].endswith("the file is larger than 1,000 characters")
    assert await cases(sessions) == []


async def test_import_cleans_control_characters_out_of_text(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A NUL would make PostgreSQL refuse the whole import; other controls are noise."""
    row = "N1,2023-01-01T10:00:00,email,Teacher,,,,,,Nul\x00 and \x1b[31mred,desc\x07,,,new"
    assert await imported(sessions, f"{HEADER}\n{row}\n") == []
    (case,) = await cases(sessions)
    assert case.subject == "Nul and [31mred" and case.description == "desc"


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://evil.example","x")', "+44 20", "-1", "@SUM(A1)", "\tx", "=1"]
)
def test_csv_cell_defuses_formulas_and_round_trips(text: str) -> None:
    cell = csv_cell(text)
    assert cell.startswith("'") and from_csv_cell(cell) == text


@pytest.mark.parametrize("text", ["Fake account", "'quoted'", "", "a=b", "it's"])
def test_csv_cell_leaves_plain_text_alone(text: str) -> None:
    assert csv_cell(text) == text and from_csv_cell(text) == text
