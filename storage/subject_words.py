"""The words of subject lines, counted when a case is written (Table 5 of the report).

Subjects are sealed (:mod:`storage.encryption`), so the yearly analysis does not read
them: each case's words are added here as it is stored (intake, import), counted by the
hour (UTC) the case arrived and by spelling, naming no case. Erasing a case leaves the
count as it was, so the report's figures do not change when personal data goes. Stop
words are left out here, as the report leaves them out.

Hours line up with the report's periods, whole days in the helpline's zone, for any
zone whose offset is whole hours (the UK's always is).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SubjectWord
from storage.report import STOP_WORDS, WORD

Tally = Counter[tuple[datetime, str]]
WORD_LIMIT = 100


def folded(word: str) -> str:
    """How the report compares words: case folded, typographic apostrophes plain."""
    return word.casefold().replace("’", "'")


def tally(cases: Iterable[tuple[datetime, str | None]]) -> Tally:
    """(hour, spelling) -> count over ``(received_at, subject)`` pairs."""
    by_hour: dict[int, list[str]] = {}
    for received, subject in cases:
        if subject:
            by_hour.setdefault(int(received.timestamp()) // 3600, []).append(subject)
    counts: Tally = Counter()
    kept: dict[str, bool] = {}  # spelling -> not a stop word (each spelling looked at once)
    for hour, subjects in by_hour.items():
        at = datetime.fromtimestamp(hour * 3600, UTC)
        for word, n in Counter(WORD.findall("\n".join(subjects))).items():
            keep = kept.get(word)
            if keep is None:
                keep = kept[word] = folded(word) not in STOP_WORDS
            if keep:
                counts[(at, word[:WORD_LIMIT])] += n
    return counts


def _statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SubjectWord)
    return statement.on_conflict_do_update(
        index_elements=["hour", "word"],
        set_={"count": SubjectWord.count + statement.excluded["count"]},
    )


def _rows(counts: Mapping[tuple[datetime, str], int]) -> list[dict[str, Any]]:
    return [{"hour": hour, "word": word, "count": n} for (hour, word), n in counts.items()]


_UPSERT = {
    "sqlite": "INSERT INTO subject_words (hour, word, count) VALUES (?, ?, ?)"
    " ON CONFLICT (hour, word) DO UPDATE SET count = subject_words.count + excluded.count",
    "postgresql": "INSERT INTO subject_words (hour, word, count)"
    " SELECT * FROM unnest($1::timestamptz[], $2::varchar[], $3::int[])"
    " ON CONFLICT (hour, word) DO UPDATE SET count = subject_words.count + excluded.count",
}
"""The same upsert as :func:`_statement`, in the driver's own words: an import adds
hundreds of thousands of (hour, word) counts, which SQLAlchemy's executemany takes
seconds over and the driver a fraction of one."""


async def add(session: AsyncSession, counts: Tally) -> None:
    """Add ``counts`` to the tally, in the caller's transaction."""
    if not counts:
        return
    dialect = session.get_bind().dialect
    upsert = _UPSERT.get(dialect.name)
    if upsert is None:
        await session.execute(_statement(dialect.name), _rows(counts))
        return
    hour = SubjectWord.__table__.c.hour.type.dialect_impl(dialect).bind_processor(dialect)
    convert: Callable[[Any], Any] = hour if hour is not None else _as_it_is
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    rows = [(convert(at), word, n) for (at, word), n in counts.items()]
    if dialect.name == "sqlite":
        await driver.executemany(upsert, rows)
    else:  # one statement over three arrays
        hours, words, numbers = (list(column) for column in zip(*rows, strict=True))
        await driver.execute(upsert, hours, words, numbers)


def _as_it_is(value: Any) -> Any:
    return value


def add_sync(connection: Connection, counts: Tally) -> None:
    """:func:`add` on a plain connection (inside an ORM flush, or a migration)."""
    if counts:
        connection.execute(_statement(connection.dialect.name), _rows(counts))
