"""Case import and export as CSV, so a helpline can bring its past years in and compare.

Import is all-or-nothing: every row is checked first (labels against the taxonomy,
dates, duplicate references in the file and in the database), and any problem is
reported with its line number before anything is written.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Case, CaseCategory

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
STATUSES = ("new", "claimed", "resolved", "signposted")
LABELLED = ("enquirer_type", "setting", "region", "platform_type", "platform", "outcome")
BATCH = 5_000
MAX_ERRORS = 50


@dataclass
class ImportReport:
    rows: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The labels an import accepts, per column (canonical spelling by lower case)."""

    labels: Mapping[str, Mapping[str, str]]

    @classmethod
    def of(cls, tables: Mapping[str, Iterable[str]]) -> Vocabulary:
        return cls(
            {name: {label.casefold(): label for label in labels} for name, labels in tables.items()}
        )


def _row_values(
    line: int, row: Mapping[str, str | None], vocab: Vocabulary, zone: ZoneInfo, errors: list[str]
) -> tuple[dict[str, Any], list[str]] | None:
    def fail(message: str) -> None:
        errors.append(f"line {line}: {message}")

    values: dict[str, Any] = {}
    reference = (row.get("reference") or "").strip()
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
    subject = (row.get("subject") or "").strip()
    values["subject"] = subject[:300] or None
    values["description"] = (row.get("description") or "").strip() or None
    return values, categories


def _read(stream: TextIO) -> Iterator[tuple[int, dict[str, str | None]]]:
    reader = csv.DictReader(stream)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"line 1: missing columns: {', '.join(missing)}")
    for row in reader:
        yield reader.line_num, row


async def import_cases(
    session: AsyncSession, stream: TextIO, vocab: Vocabulary, zone: ZoneInfo
) -> ImportReport:
    """Validate the whole file, then insert it in one transaction (the caller's)."""
    report = ImportReport()
    rows: list[tuple[Any, ...]] = []
    cats: list[Sequence[str]] = []
    seen: dict[str, int] = {}
    check = _Checker(vocab, zone)
    try:
        for line, raw in _read_lists(stream):
            parsed = check.fast(raw)
            if parsed is None:
                # Anything unusual (a short or long row, an unknown label, a bad date...) goes
                # through the full check, which words the problems; good rows stay fast.
                slow = _row_values(line, check.as_dict(raw), vocab, zone, report.errors)
                if slow is None:
                    continue
                parsed = tuple(slow[0][name] for name in FIELDS), slow[1]
            values, categories = parsed
            ref = values[0]
            if ref in seen:
                report.errors.append(
                    f"line {line}: duplicate reference {ref} (also on line {seen[ref]})"
                )
            seen[ref] = line
            rows.append(values)
            cats.append(categories)
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
    await _insert(session, rows, cats)
    report.rows = len(rows)
    return report


# The values of one validated row, in this order (what ``_row_values`` returns as a dict).
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
_CACHE_LIMIT = 10_000
_FLAGS: dict[str, bool | None] = {"": None, "true": True, "false": False}


def _read_lists(stream: TextIO) -> Iterator[tuple[int, list[str]]]:
    """``_read`` without a dict per row: the header is checked, rows come as lists."""
    reader = csv.reader(stream)
    header = next(reader, None) or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(f"line 1: missing columns: {', '.join(missing)}")
    yield 1, header  # not a row: tells the checker where each column is
    for row in reader:
        if row:  # csv.DictReader skips blank lines too
            yield reader.line_num, row


class _Checker:
    """The checks of ``_row_values`` for a well-formed row, with labels looked up once.

    ``fast`` answers the row's values and categories, or None if anything about the row is
    not plainly valid; that row is then checked by ``_row_values`` itself, so every problem
    is reported exactly as before. The caches hold only spellings that were valid.
    """

    def __init__(self, vocab: Vocabulary, zone: ZoneInfo) -> None:
        self.vocab = vocab
        self.zone = zone
        self.header: list[str] = []
        self.width = -1
        self.labels: list[dict[str, str | None]] = [{"": None} for _ in LABELLED]
        self.categories: dict[str, tuple[str, ...]] = {}
        self.channels: dict[str, str] = {}
        self.statuses: dict[str, str] = {}

    def _locate(self, header: list[str]) -> None:
        self.header = header
        self.width = len(header)
        where = {name: i for i, name in enumerate(header)}  # the last one wins, as in DictReader
        self.at = [where[name] for name in COLUMNS]

    def as_dict(self, row: list[str]) -> dict[str, str | None]:
        """The row as ``csv.DictReader`` would give it (missing fields None)."""
        values: dict[str, str | None] = dict(zip(self.header, row, strict=False))
        for name in self.header[len(row) :]:
            values[name] = None
        return values

    def fast(self, row: list[str]) -> tuple[tuple[Any, ...], Sequence[str]] | None:
        if self.width < 0:
            raise AssertionError("the header comes first")  # pragma: no cover
        if len(row) != self.width:
            return None
        (ref_at, received_at, channel_at, enquirer_at, setting_at, region_at, type_at,
         platform_at, categories_at, subject_at, description_at, referred_at, outcome_at,
         status_at) = self.at  # fmt: skip
        reference = row[ref_at].strip()
        if not reference or len(reference) > 32:
            return None
        try:
            received = datetime.fromisoformat(row[received_at].strip())
        except ValueError:
            return None
        if received.tzinfo is None:
            received = received.replace(tzinfo=self.zone)
        channel = self.channels.get(row[channel_at])
        if channel is None and (channel := self._channel(row[channel_at])) is None:
            return None
        labels = []
        for n, at in enumerate(
            (enquirer_at, setting_at, region_at, type_at, platform_at, outcome_at)
        ):
            given = row[at]
            cache = self.labels[n]
            if given in cache:
                labels.append(cache[given])
            elif (label := self._label(n, given)) is None:
                return None
            else:
                labels.append(label)
        categories = self.categories.get(row[categories_at])
        if categories is None and (categories := self._categories(row[categories_at])) is None:
            return None
        referred = row[referred_at]
        if referred not in _FLAGS:
            referred = referred.strip().lower()
            if referred not in _FLAGS:
                return None
        status = self.statuses.get(row[status_at])
        if status is None and (status := self._status(row[status_at])) is None:
            return None
        subject = row[subject_at].strip()
        description = row[description_at].strip()
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

    def _label(self, n: int, given: str) -> str | None:
        column = LABELLED[n]
        table = "social_platform" if column == "platform" else column
        stripped = given.strip()
        canonical = self.vocab.labels[table].get(stripped.casefold()) if stripped else None
        if stripped and canonical is None:
            return None
        if canonical is None:  # blank once stripped: cache it as a blank
            if len(self.labels[n]) < _CACHE_LIMIT:
                self.labels[n][given] = None
            return None  # caller takes None as "not plainly valid": _row_values agrees (blank)
        if len(self.labels[n]) < _CACHE_LIMIT:
            self.labels[n][given] = canonical
        return canonical

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
        yield [
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
