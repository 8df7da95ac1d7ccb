"""Case import and export as CSV, so a helpline can bring its past years in and compare.

Import is all-or-nothing: every row is checked first (labels against the taxonomy,
dates, the number of columns, quoting, duplicate references in the file and in the
database), and any problem is reported with its line number before anything is written.
Lines and files have a size limit, so no file (``/dev/zero`` included) can make the
import grow without bound.

Export writes cells a spreadsheet cannot take for formulas (:func:`csv_cell`); import
undoes it (:func:`from_csv_cell`), so an export imports back unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Dialect, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from flows.conversation import CaseStatus
from flows.links import text_keys
from flows.taxonomy import Taxonomy
from storage import links as link_store
from storage import subject_words
from storage.encryption import BLIND_INDEXES, keys_of
from storage.models import Case, CaseCategory, CaseLink

COLUMNS = (
    "reference",
    "received_at",
    "channel",
    "enquirer_type",
    "setting",
    "region",
    "platform_type",
    "platform",
    "categories",
    "subject",
    "description",
    "referred_to_platform",
    "outcome",
    "status",
)
IMPORTED_TABLES = ("enquirer_type", "setting", "region", "platform_type", "category", "outcome")
"""The taxonomy tables whose labels an import checks (and ``social_platform``, the platforms)."""
STATUSES = tuple(status.value for status in CaseStatus)
LABELLED = ("enquirer_type", "setting", "region", "platform_type", "platform", "outcome")
BATCH = 5_000
MAX_ERRORS = 50
MAX_LINE_CHARS = 1_000_000  # one physical line of the file
MAX_FILE_CHARS = 2_000_000_000  # 2 GB of text: several million cases
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""How a cell starts when a spreadsheet would run it as a formula (OWASP's list)."""


def csv_cell(value: str) -> str:
    """A cell safe to open in a spreadsheet: formula-like text gets a leading ``'``."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def from_csv_cell(value: str) -> str:
    """Undo :func:`csv_cell` (one leading ``'`` before formula-like text)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def _same_text(text: str) -> str:
    return text


class TooBig(ValueError):
    """A line or the whole file is over its limit."""


def bounded_lines(
    stream: TextIO, max_line: int = MAX_LINE_CHARS, max_file: int = MAX_FILE_CHARS
) -> Iterator[str]:
    """The stream's lines, refusing (with the line number) any over the limits."""
    total = 0
    number = 0
    while True:
        try:
            line = stream.readline(max_line + 1)
        except UnicodeDecodeError:
            raise ValueError(f"line {number + 1}: not UTF-8 text") from None
        if not line:
            return
        number += 1
        if len(line) > max_line:
            raise TooBig(f"line {number}: longer than {max_line:,} characters")
        total += len(line)
        if total > max_file:
            raise TooBig(f"line {number}: the file is larger than {max_file:,} characters")
        yield line


@dataclass
class ImportReport:
    """What an import took in, and each problem found (by line), so nothing fails silently."""

    rows: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the import found no problems."""
        return not self.errors


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The labels an import accepts, per column (canonical spelling by lower case)."""

    labels: Mapping[str, Mapping[str, str]]
    platform_ids: Mapping[str, str] = field(default_factory=dict)
    """A platform's id by its label: what its "@names" are (see :func:`flows.links.text_keys`)."""

    @classmethod
    def of(cls, tables: Mapping[str, Iterable[str]]) -> Vocabulary:
        """The vocabulary from each table's labels."""
        return cls(
            {name: {label.casefold(): label for label in labels} for name, labels in tables.items()}
        )

    @classmethod
    def of_taxonomy(cls, taxonomy: Taxonomy) -> Vocabulary:
        """What ``helpline import`` accepts: the labels of the taxonomy's tables."""
        tables = {name: taxonomy[name].labels for name in IMPORTED_TABLES}
        vocabulary = cls.of({**tables, "social_platform": taxonomy["platform"].labels})
        ids = {term.label: term.id for term in taxonomy["platform"].terms}
        return cls(vocabulary.labels, ids)


def _row_values(
    line: int,
    row: Mapping[str, str | None],
    vocab: Vocabulary,
    zone: ZoneInfo,
    errors: list[str],
    clean: Callable[[str], str],
) -> tuple[dict[str, Any], list[str]] | None:
    def fail(message: str) -> None:
        errors.append(f"line {line}: {message}")

    values: dict[str, Any] = {}
    reference = (row.get("reference") or "").strip().upper()
    if not reference or len(reference) > 32:
        fail("reference is missing or longer than 32 characters")
    values["reference"] = reference
    try:
        received = datetime.fromisoformat((row.get("received_at") or "").strip())
        values["received_at"] = received if received.tzinfo else received.replace(tzinfo=zone)
    except ValueError:
        fail(f"received_at {row.get('received_at')!r} is not an ISO 8601 date-time")
    channel = (row.get("channel") or "").strip().lower()
    if not channel or len(channel) > 16:
        fail("channel is missing or longer than 16 characters")
    values["channel"] = channel
    for column in LABELLED:
        given = (row.get(column) or "").strip()
        table = "social_platform" if column == "platform" else column
        canonical = vocab.labels[table].get(given.casefold()) if given else None
        if given and canonical is None:
            fail(f"unknown {column} {given!r}")
        values[column] = canonical
    categories = []
    for given in filter(None, (c.strip() for c in (row.get("categories") or "").split(";"))):
        canonical = vocab.labels["category"].get(given.casefold())
        if canonical is None:
            fail(f"unknown category {given!r}")
        elif canonical not in categories:
            categories.append(canonical)
    referred = (row.get("referred_to_platform") or "").strip().lower()
    if referred not in ("", "true", "false"):
        fail(f"referred_to_platform must be true or false, not {referred!r}")
    values["referred_to_platform"] = {"true": True, "false": False}.get(referred)
    status = (row.get("status") or "").strip().lower() or "resolved"
    if status not in STATUSES:
        fail(f"unknown status {status!r}")
    values["status"] = status
    subject = clean(from_csv_cell(row.get("subject") or "")).strip()
    values["subject"] = subject[:300] or None
    values["description"] = clean(from_csv_cell(row.get("description") or "")).strip() or None
    return values, categories


async def import_cases(
    session: AsyncSession,
    stream: TextIO,
    vocab: Vocabulary,
    zone: ZoneInfo,
    *,
    clean: Callable[[str], str] = _same_text,
    max_line: int = MAX_LINE_CHARS,
    max_file: int = MAX_FILE_CHARS,
) -> ImportReport:
    """Validate the whole file, then insert it in one transaction (the caller's).

    ``clean`` normalises the free text (subject, description) as it comes in.
    """
    report = ImportReport()
    rows: list[tuple[Any, ...]] = []
    cats: list[Sequence[str]] = []
    seen: dict[str, int] = {}
    try:
        check = _Checker(vocab, zone, bounded_lines(stream, max_line, max_file), clean)
        for line, raw in check.rows():
            if len(raw) != len(check.header):
                report.errors.append(
                    f"line {line}: {len(raw)} columns where the header has {len(check.header)}"
                    " (a stray comma or quote?)"
                )
                if len(report.errors) >= MAX_ERRORS:
                    report.errors.append("too many problems: stopped checking")
                    return report
                continue
            parsed = check.fast(raw)
            if parsed is None:
                # Anything not plainly valid (an unknown label, a bad date...) gets the
                # full check, which words the problems exactly.
                slow = _row_values(line, check.as_dict(raw), vocab, zone, report.errors, clean)
                if slow is None:
                    continue
                parsed = tuple(slow[0].get(name) for name in FIELDS), slow[1]
            ref = parsed[0][0]
            if ref in seen:
                report.errors.append(
                    f"line {line}: duplicate reference {ref} (also on line {seen[ref]})"
                )
            seen[ref] = line
            rows.append(parsed[0])
            cats.append(parsed[1])
            if len(report.errors) >= MAX_ERRORS:
                report.errors.append("too many problems: stopped checking")
                return report
    except (ValueError, csv.Error) as error:
        report.errors.append(str(error))
        return report
    for ref, line in await _existing(session, list(seen), seen):
        report.errors.append(f"line {line}: reference {ref} is already in the database")
    if report.errors:
        return report
    await _insert(session, rows, cats, vocab.platform_ids)
    report.rows = len(rows)
    return report


# A validated row's values in this order (the keys of ``_row_values``'s dict).
FIELDS = (
    "reference",
    "received_at",
    "channel",
    *LABELLED,
    "referred_to_platform",
    "status",
    "subject",
    "description",
)
_CACHE_LIMIT = 10_000  # distinct spellings remembered per column
_FLAGS: dict[str, bool | None] = {"": None, "true": True, "false": False}


class _Checker:
    """``_read`` and ``_row_values`` for plainly valid rows, with each spelling checked once.

    Rows come as lists (no dict per row). ``fast`` answers a row's values (in ``FIELDS``
    order) and categories, or None when anything about the row is not plainly valid: that
    row then goes through ``_row_values`` (see ``import_cases``), so problems are found and
    worded exactly as before. The caches only ever hold spellings that were valid.
    """

    def __init__(
        self, vocab: Vocabulary, zone: ZoneInfo, lines: Iterator[str], clean: Callable[[str], str]
    ) -> None:
        self.vocab = vocab
        self.zone = zone
        self.clean = clean
        # strict: a stray quote is an error, never a silently merged field
        self.reader = csv.reader(lines, strict=True)
        self.header: list[str] = next(self._records(), [])
        missing = [c for c in COLUMNS if c not in self.header]
        if missing:
            raise ValueError(f"line 1: missing columns: {', '.join(missing)}")
        where = {name: i for i, name in enumerate(self.header)}  # the last wins, as in a dict
        self.at = tuple(where[name] for name in COLUMNS)
        self.labelled = tuple(where[name] for name in LABELLED)
        self.labels: tuple[dict[str, str | None], ...] = tuple({"": None} for _ in LABELLED)
        self.categories: dict[str, tuple[str, ...]] = {}
        self.channels: dict[str, str] = {}
        self.statuses: dict[str, str] = {}

    def _records(self) -> Iterator[list[str]]:
        """The reader's records, its errors worded with the line the record starts on."""
        while True:
            start = self.reader.line_num + 1
            try:
                record = next(self.reader)
            except StopIteration:
                return
            except csv.Error as error:
                reason = str(error)
                if "unexpected end of data" in reason:
                    reason = "a quoted field is never closed (the file ends inside it)"
                elif "field larger than field limit" in reason:
                    reason = f"a field is longer than {csv.field_size_limit():,} characters"
                raise ValueError(f"line {start}: {reason}") from None
            yield record

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        for row in self._records():
            if row:  # csv.DictReader skips blank lines too
                yield self.reader.line_num, row

    def as_dict(self, row: list[str]) -> dict[str, str | None]:
        """The row as ``csv.DictReader`` gives it (fields the row lacks are None)."""
        values: dict[str, str | None] = dict(zip(self.header, row, strict=False))
        for name in self.header[len(row) :]:
            values[name] = None
        return values

    def fast(self, row: list[str]) -> tuple[tuple[Any, ...], Sequence[str]] | None:
        if len(row) != len(self.header):
            return None
        ref_at, received_at, channel_at, _, _, _, _, _, categories_at = self.at[:9]
        subject_at, description_at, referred_at, _, status_at = self.at[9:]
        reference = row[ref_at].strip().upper()
        if not reference or len(reference) > 32:
            return None
        try:
            received = datetime.fromisoformat(row[received_at].strip())
        except ValueError:
            return None
        if received.tzinfo is None:
            received = received.replace(tzinfo=self.zone)
        channel = self.channels.get(row[channel_at]) or self._channel(row[channel_at])
        if channel is None:
            return None
        labels: list[str | None] = []
        for cache, at, column in zip(self.labels, self.labelled, LABELLED, strict=True):
            given = row[at]
            if given in cache:
                labels.append(cache[given])
                continue
            valid, label = self._label(cache, column, given)
            if not valid:
                return None
            labels.append(label)
        categories = self.categories.get(row[categories_at])
        if categories is None and (categories := self._categories(row[categories_at])) is None:
            return None
        referred = row[referred_at]
        if referred not in _FLAGS:
            referred = referred.strip().lower()
            if referred not in _FLAGS:
                return None
        status = self.statuses.get(row[status_at]) or self._status(row[status_at])
        if status is None:
            return None
        subject = self.clean(from_csv_cell(row[subject_at])).strip()
        description = self.clean(from_csv_cell(row[description_at])).strip()
        values = (
            reference,
            received,
            channel,
            *labels,
            _FLAGS[referred],
            status,
            subject[:300] or None,
            description or None,
        )
        return values, categories

    def _channel(self, given: str) -> str | None:
        channel = given.strip().lower()
        if not channel or len(channel) > 16:
            return None
        if len(self.channels) < _CACHE_LIMIT:
            self.channels[given] = channel
        return channel

    def _label(
        self, cache: dict[str, str | None], column: str, given: str
    ) -> tuple[bool, str | None]:
        """Whether ``given`` is a valid ``column`` label or blank, and its canonical form."""
        table = "social_platform" if column == "platform" else column
        stripped = given.strip()
        canonical = self.vocab.labels[table].get(stripped.casefold()) if stripped else None
        if stripped and canonical is None:
            return False, None
        if len(cache) < _CACHE_LIMIT:
            cache[given] = canonical
        return True, canonical

    def _categories(self, given: str) -> tuple[str, ...] | None:
        known = self.vocab.labels["category"]
        found: list[str] = []
        for part in filter(None, (c.strip() for c in given.split(";"))):
            canonical = known.get(part.casefold())
            if canonical is None:
                return None
            if canonical not in found:
                found.append(canonical)
        if len(self.categories) < _CACHE_LIMIT:
            self.categories[given] = tuple(found)
        return tuple(found)

    def _status(self, given: str) -> str | None:
        status = given.strip().lower() or "resolved"
        if status not in STATUSES:
            return None
        if len(self.statuses) < _CACHE_LIMIT:
            self.statuses[given] = status
        return status


async def _existing(
    session: AsyncSession, references: Sequence[str], lines: Mapping[str, int]
) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for start in range(0, len(references), BATCH):
        chunk = references[start : start + BATCH]
        query = select(Case.reference).where(Case.reference.in_(chunk))
        found += [(ref, lines[ref]) for ref in (await session.execute(query)).scalars()]
    return sorted(found, key=lambda pair: pair[1])


# Columns the import writes, and the values it gives the columns the file has no say in.
_CASE_COLUMNS = ("id", *FIELDS, "links", "urgent", "signposted_to")
_DEFAULTS: dict[str, Any] = {"links": [], "urgent": False, "signposted_to": []}
SQLITE_BATCH = 50_000
SQLITE_IMPORT_CACHE_KIB = 256 * 1024  # page cache while importing (restored afterwards)


async def _insert(
    session: AsyncSession,
    rows: list[tuple[Any, ...]],
    cats: list[Sequence[str]],
    platform_ids: Mapping[str, str],
) -> None:
    """Bulk insert with ids assigned here, so categories and link keys need no round trip
    per case."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        await session.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))
    first = (
        int((await session.execute(select(func.coalesce(func.max(Case.id), 0)))).scalar_one()) + 1
    )
    categories = (
        (first + i, category, position)
        for i, names in enumerate(cats)
        for position, category in enumerate(names)
    )
    if dialect.name not in _BULK:
        await _insert_orm(session, first, rows, cats)  # the ORM counts the words itself
        for case_id, key in _case_link_keys(first, rows, platform_ids):
            await link_store.remember(session, case_id, [key])
        return
    bulk = _BULK[dialect.name]
    await bulk(session, "cases", _CASE_COLUMNS, _case_records(dialect, first, rows))
    await bulk(session, "case_categories", ("case_id", "category", "position"), categories)
    links = _link_records(dialect, first, rows, platform_ids)
    await bulk(session, "case_links", _LINK_COLUMNS, links)
    if dialect.name == "postgresql":  # the ids were ours: the sequence follows them
        await session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"
            )
        )
    # The report's subject words, counted as they come in (received_at, subject).
    await subject_words.add(session, subject_words.tally((row[1], row[-2]) for row in rows))


_PLATFORM = FIELDS.index("platform")
((_LINK_INDEX, (_LINK_SOURCE, _LINK_KIND)),) = BLIND_INDEXES["case_links"].items()
_LINK_COLUMNS = ("case_id", _LINK_INDEX, _LINK_SOURCE)


def _case_link_keys(
    first: int, rows: list[tuple[Any, ...]], platform_ids: Mapping[str, str]
) -> Iterator[tuple[int, str]]:
    """(case id, key) for what each imported case reports: the accounts and links in its
    title and description, so later reports of them are linked to it."""
    for i, row in enumerate(rows):
        platform = platform_ids.get(row[_PLATFORM] or "")
        for key in text_keys([row[-2] or "", row[-1] or ""], platform):
            yield first + i, key


def _link_records(
    dialect: Dialect, first: int, rows: list[tuple[Any, ...]], platform_ids: Mapping[str, str]
) -> Iterator[tuple[Any, ...]]:
    """``_LINK_COLUMNS`` as the driver takes them: the key's blind index and the key
    sealed, as :class:`CaseLink`'s own writes do."""
    blind = keys_of(dialect).blind
    shown = _processor(CaseLink.__table__.c[_LINK_SOURCE], dialect)
    for case_id, key in _case_link_keys(first, rows, platform_ids):
        yield case_id, blind(_LINK_KIND, key), shown(key)


def _case_records(
    dialect: Dialect, first: int, rows: list[tuple[Any, ...]]
) -> Iterator[tuple[Any, ...]]:
    """Rows as the driver takes them (``_CASE_COLUMNS`` order), converted as SQLAlchemy would."""
    columns = Case.__table__.c
    received = _processor(columns.received_at, dialect)
    # The subject and description (the last two of FIELDS) are sealed, as every write is.
    subject, description = (_processor(columns[name], dialect) for name in FIELDS[-2:])
    defaults = tuple(_processor(columns[name], dialect)(value) for name, value in _DEFAULTS.items())
    for i, row in enumerate(rows):
        yield (
            first + i,
            row[0],
            received(row[1]),
            *row[2:-2],
            subject(row[-2]),
            description(row[-1]),
            *defaults,
        )


def _processor(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """How SQLAlchemy converts a value for ``column`` before the driver sees it."""
    convert = column.type.dialect_impl(dialect).bind_processor(dialect)
    return convert if convert is not None else _same


def _same(value: Any) -> Any:
    return value


async def _copy_postgres(
    session: AsyncSession, table: str, columns: Sequence[str], records: Iterable[tuple[Any, ...]]
) -> None:
    """COPY (asyncpg's binary copy) on the session's own connection, so in its transaction."""
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=records, columns=list(columns))


async def _insert_sqlite(
    session: AsyncSession, table: str, columns: Sequence[str], records: Iterable[tuple[Any, ...]]
) -> None:
    """executemany on the session's own aiosqlite connection, with a bigger page cache."""
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    marks = ", ".join("?" * len(columns))
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    async with driver.execute("PRAGMA cache_size") as cursor:
        cache_size = (await cursor.fetchone())[0]
    await driver.execute(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        pending = iter(records)
        while batch := list(islice(pending, SQLITE_BATCH)):
            await driver.executemany(statement, batch)
    finally:
        await driver.execute(f"PRAGMA cache_size = {int(cache_size)}")


_BULK = {"postgresql": _copy_postgres, "sqlite": _insert_sqlite}
"""How each database takes many rows fast; any other gets SQLAlchemy's bulk INSERT."""


async def _insert_orm(
    session: AsyncSession, first: int, rows: list[tuple[Any, ...]], cats: list[Sequence[str]]
) -> None:
    """Any other database: SQLAlchemy's bulk INSERT, a batch at a time."""
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        await session.execute(
            insert(Case),
            [
                {**_DEFAULTS, **dict(zip(FIELDS, row, strict=True)), "id": first + start + i}
                for i, row in enumerate(batch)
            ],
        )
        links = [
            {"case_id": first + start + i, "category": c, "position": p}
            for i, categories in enumerate(cats[start : start + BATCH])
            for p, c in enumerate(categories)
        ]
        if links:
            await session.execute(insert(CaseCategory), links)


async def export_rows(
    session: AsyncSession, start: datetime, end: datetime, zone: ZoneInfo
) -> AsyncIterator[list[str]]:
    """The period's cases as CSV rows (header first), streamed in received order."""
    yield list(COLUMNS)
    query = (
        select(Case)
        .where(Case.received_at >= start, Case.received_at < end)
        .options(selectinload(Case.categories))
        .order_by(Case.received_at, Case.id)
        .execution_options(yield_per=2000)
    )
    stream = await session.stream_scalars(query)
    async for case in stream:
        yield [csv_cell(cell) for cell in _export_row(case, zone)]


def _export_row(case: Case, zone: ZoneInfo) -> list[str]:
    return [
        case.reference,
        case.received_at.astimezone(zone).isoformat(),
        case.channel,
        case.enquirer_type or "",
        case.setting or "",
        case.region or "",
        case.platform_type or "",
        case.platform or "",
        ";".join(c.category for c in case.categories),
        case.subject or "",
        case.description or "",
        "" if case.referred_to_platform is None else str(case.referred_to_platform).lower(),
        case.outcome or "",
        case.status,
    ]
