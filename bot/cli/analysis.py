"""`helpline report`, `import` and `export`: the annual analysis and case transfer commands."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.base import Commands, day, disclosed_as, needs_core
from bot.settings import Settings
from bot.text import normalise
from flows.privacy import AuditAction, AuditChannel
from storage import audit
from storage import report as report_store
from storage.report import Period
from storage.transfer import Vocabulary, export_rows, import_cases

if TYPE_CHECKING:
    from bot.core import Core


def _range(text: str) -> tuple[date, date]:
    first, sep, last = text.partition("..")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"expected FROM..TO (e.g. 2021-09-01..2022-08-31), not {text!r}"
        )
    return day(first), day(last)


def _period(core: Core, first: date, last: date) -> Period:
    return Period(first, last, core.calendar.zone)


async def _report(core: Core, args: argparse.Namespace) -> int:
    from bot.cli import report as render

    labels = core.flow.taxonomy["category"].labels
    try:
        period = _period(core, args.first, args.last)
        before = _period(core, *args.compare_to) if args.compare_to else None
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    async with core.readers() as session:
        data = await report_store.analysis(session, period, labels)
        previous = await report_store.analysis(session, before, labels) if before else None
    if args.format == "json":
        print(render.as_json(data, previous))
    elif args.format == "csv":
        if not args.out:
            print("--format csv needs --out DIR (one CSV file per table).", file=sys.stderr)
            return 2
        written = render.write_csv(data, args.out, previous)
        print(f"Wrote {len(written)} CSV files to {args.out}.")
    else:
        text = render.markdown(data, core.flow.copy, previous)
        print(text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "report.md").write_text(text, encoding="utf-8")
            charts = render.write_charts(data, args.out, core.flow.copy)
            print(f"Wrote report.md and {len(charts)} charts to {args.out}.", file=sys.stderr)
    return 0


async def _import(core: Core, args: argparse.Namespace) -> int:
    try:
        handle = args.file.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        print(f"Cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    with handle:
        async with core.sessions() as session, session.begin():
            result = await import_cases(
                session,
                handle,
                Vocabulary.of_taxonomy(core.flow.taxonomy),
                core.calendar.zone,
                clean=normalise,
            )
            if not result.ok:
                await session.rollback()
    if not result.ok:
        print(f"Nothing was imported from {args.file}; please fix these lines:", file=sys.stderr)
        for problem in result.errors:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"Imported {result.rows} cases from {args.file}.")
    return 0


async def _export(core: Core, args: argparse.Namespace) -> int:
    period = _period(core, args.first, args.last)
    count = -1
    with args.file.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        async with core.readers() as session:
            async for row in export_rows(session, period.start, period.end, core.calendar.zone):
                writer.writerow(row)
                count += 1
    async with core.sessions() as session, session.begin():
        audit.record(
            session,
            at=core.clock(),
            actor=args.actor,
            action=AuditAction.CASE_EXPORTED,
            channel=AuditChannel.CLI,
        )
    print(f"Exported {count} cases to {args.file}.")
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``report``, ``import`` and ``export``."""
    analysis = commands.add_parser(
        "report", help="the annual analysis for a period (the report's tables)"
    )
    analysis.add_argument("--from", dest="first", type=day, required=True, metavar="YYYY-MM-DD")
    analysis.add_argument("--to", dest="last", type=day, required=True, metavar="YYYY-MM-DD")
    analysis.add_argument("--format", choices=["markdown", "json", "csv"], default="markdown")
    analysis.add_argument(
        "--out", type=Path, metavar="DIR", help="write files (CSV tables, or report.md and charts)"
    )
    analysis.add_argument(
        "--compare-to",
        type=_range,
        metavar="FROM..TO",
        help="add a previous period beside each row",
    )
    needs_core(analysis, _report)

    importing = commands.add_parser(
        "import", help="load historical cases from CSV (all or nothing)"
    )
    importing.add_argument("file", type=Path)
    needs_core(importing, _import)
    exporting = commands.add_parser("export", help="write a period's cases to CSV")
    exporting.add_argument("--from", dest="first", type=day, required=True, metavar="YYYY-MM-DD")
    exporting.add_argument("--to", dest="last", type=day, required=True, metavar="YYYY-MM-DD")
    exporting.add_argument("file", type=Path)
    disclosed_as(exporting)
    needs_core(exporting, _export)
