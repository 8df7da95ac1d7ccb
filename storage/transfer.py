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
    rows: list[dict[str, Any]] = []
    cats: list[list[str]] = []
    seen: dict[str, int] = {}
    try:
        for line, raw in _read(stream):
            parsed = _row_values(line, raw, vocab, zone, report.errors)
            if parsed is None:
                continue
            values, categories = parsed
            ref = values["reference"]
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


async def _existing(
    session: AsyncSession, references: Sequence[str], lines: Mapping[str, int]
) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for start in range(0, len(references), BATCH):
        chunk = references[start : start + BATCH]
        query = select(Case.reference).where(Case.reference.in_(chunk))
        found += [(ref, lines[ref]) for ref in (await session.execute(query)).scalars()]
    return sorted(found, key=lambda pair: pair[1])


async def _insert(session: AsyncSession, rows: list[dict[str, Any]], cats: list[list[str]]) -> None:
    """Bulk insert with ids assigned here, so categories need no round trip per case."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))
    first = (
        int((await session.execute(select(func.coalesce(func.max(Case.id), 0)))).scalar_one()) + 1
    )
    defaults = {"links": [], "urgent": False, "signposted_to": []}
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        await session.execute(
            insert(Case),
            [{**defaults, **row, "id": first + start + i} for i, row in enumerate(batch)],
        )
        links = [
            {"case_id": first + start + i, "category": c, "position": p}
            for i, categories in enumerate(cats[start : start + BATCH])
            for p, c in enumerate(categories)
        ]
        if links:
            await session.execute(insert(CaseCategory), links)
    if dialect == "postgresql":
        await session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"
            )
        )


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
