"""Benchmark: a large year of cases imported from CSV, then the annual analysis over it.

Run::

    python -m bench.report [--cases 1000000] [--database sqlite|postgres|both]
                           [--postgres-url URL] [--seed N] [--keep-csv PATH]

What it does:

1. Generates N synthetic cases as one CSV file in the import format (the columns of
   ``storage.transfer.COLUMNS``), shaped like the helpline's 2022-2023 analysis
   (``/work/shared/seed/helpline-analysis-2022-2023.txt``): enquirer types per Table 1,
   settings per Table 2 (the rest blank), platform types per Table 3 (the rest blank),
   platforms per Table 4 for Social Networks (the rest of those blank), categories per
   Table 6 (a case has none, one, or sometimes several), subject lines built from Table 5's
   words with stop words and "RE:"/"Fwd:" prefixes mixed in, months following Figure 2's
   school-year shape (busiest in the spring term, quiet in August), regions across the UK
   (mostly the South East and the Midlands), 68.8% referred to a platform, and channels
   email/phone/practitioner in the report's proportions. Every date falls in the report's
   year (2022-09-01..2023-08-31, Europe/London). This part is not timed with the rest;
   its time is printed on its own.
2. Per database, a fresh one: a SQLite file in a temporary directory, or the PostgreSQL
   database ``bench_report`` (created if missing) wiped with ``DROP SCHEMA public CASCADE;
   CREATE SCHEMA public``; then ``storage.db.upgrade``.
3. Import, timed: the real ``storage.transfer.import_cases`` in one transaction, exactly
   as ``helpline import`` does it (file opened ``utf-8-sig``, the taxonomy's vocabulary,
   the helpline's zone), committed.
4. Report, timed: the full ``storage.report.analysis`` for the year in a new session, as
   ``helpline report`` does it.

It prints figures and asserts nothing: rows/s and seconds against the targets (1,000,000
cases imported in <= 60 s and reported in <= 10 s, on each database), the peak RSS of
each phase (the process's high-water mark is reset before each phase where Linux allows),
and a few of the report's figures so the generated shape can be checked by eye.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import database, postgres_url
from bot import logs
from bot.text import normalise
from flows.conversation import CaseStatus
from flows.taxonomy import default_taxonomy
from storage import db
from storage.report import Period, analysis
from storage.transfer import COLUMNS, Vocabulary, import_cases

ZONE = ZoneInfo("Europe/London")
YEAR = Period(date(2022, 9, 1), date(2023, 8, 31), ZONE)
DEFAULT_POSTGRES_URL = postgres_url("report")
TARGET_CASES = 1_000_000
TARGET_IMPORT_S = 60.0
TARGET_REPORT_S = 10.0
REPORT_CASES = 2_678  # the report's total; its tables are counts out of this

# -- the report's proportions ---------------------------------------------------------------

# Table 1 (what is not in the table is left blank)
ENQUIRER_TYPES = {
    "Teacher": 2024,
    "Other School Staff": 89,
    "General Public": 77,
    "DSL": 71,
    "ICT school support": 57,
    "Head Teacher": 42,
    "Assistant/Deputy headteacher": 33,
    "MAT employee": 23,
    "Other": 20,
    "Parent": 17,
    "Local Authority": 15,
    "Charity/NGO": 13,
    "Police": 7,
    "Unknown": 7,
    "Social Worker": 6,
    "Child (12-18)": 5,
    "Medical Staff": 5,
    "Social Care": 5,
    "Out of Remit": 4,
    "Foster Carer": 2,
}
# Table 2 (the remainder blank)
SETTINGS = {"Secondary": 2157, "Primary": 79, "Further Education/College": 15, "Early Years": 3}
# Table 3 (the remainder blank)
PLATFORM_TYPES = {
    "Social Networks": 1656,
    "Websites": 33,
    "Out of Remit": 16,
    "Emails": 11,
    "Apps": 5,
    "Unknown": 5,
    "Mobile Device": 3,
    "Online Games": 3,
    "Peer-to-Peer": 2,
    "Chatrooms": 1,
    "Online Community/Forum": 1,
}
# Table 4: out of the 1,656 Social Networks cases (the remainder blank)
SOCIAL_NETWORKS = 1656
PLATFORMS = {"TikTok": 687, "Instagram": 88, "Snapchat": 41, "Facebook": 35, "Twitter": 11}
# Table 5: occurrences in 2,678 subject lines, as a chance of appearing in one
SUBJECT_WORDS = {
    "TikTok": 1382,
    "account": 1160,
    "school": 250,
    "removal": 224,
    "Instagram": 162,
    "request": 92,
    "inappropriate": 84,
    "reporting": 81,
    "video": 81,
    "fake": 80,
    "support": 74,
    "content": 73,
    "videos": 71,
    "email": 71,
    "report": 61,
    "caution": 61,
    "outside": 60,
    "originated": 59,
    "help": 58,
    "staff": 54,
}
TIKTOK_SPELLINGS = {"TikTok": 80, "Tiktok": 12, "tiktok": 6, "TIKTOK": 2}
STOP_WORDS = ("the", "a", "on", "of", "for", "our", "to", "about", "from", "with", "and", "is")
PREFIXES = {"": 70, "RE: ": 15, "Fwd: ": 8, "FW: ": 4, "Re: ": 3}
# Table 6: cases tagged with each category, out of 2,678
CATEGORIES = {
    "Child Sexual Exploitation": 13,
    "Cyberbullying": 963,
    "Data Privacy": 1,
    "e-Crime": 2,
    "Excessive Use": 3,
    "Gaming": 2,
    "General Enquiry": 52,
    "Grooming": 7,
    "Hate Speech": 6,
    "Love/Relationships/Sexuality": 0,
    "Media Enquiry": 1,
    "Media Literacy/Education": 5,
    "Online Reputation": 1230,
    "Other": 122,
    "Out of Remit": 22,
    "Policy Enquiry": 1,
    "Potentially Harmful Content": 143,
    "Prank Calls": 2,
    "Sexting": 30,
    "Sextortion": 14,
    "Sexual Harassment": 19,
    "Technical Settings": 18,
}
# How many categories a case carries: 0.99 on average, as in Table 6 (2,656 tags on 2,678
# cases), with several on some cases.
CATEGORY_COUNTS = {0: 0.0982, 1: 0.8218, 2: 0.07, 3: 0.01}
# Figure 2: the school year, busiest in the spring term (March 2023's "TikTok riots")
MONTHS = {
    (2022, 9): 9.0,
    (2022, 10): 10.0,
    (2022, 11): 10.0,
    (2022, 12): 6.0,
    (2023, 1): 9.0,
    (2023, 2): 8.5,
    (2023, 3): 13.0,
    (2023, 4): 6.5,
    (2023, 5): 9.0,
    (2023, 6): 9.0,
    (2023, 7): 6.5,
    (2023, 8): 2.5,
}
# Across the UK, with the South East and the Midlands high; some cases record none
REGIONS = {
    "South East": 19,
    "West Midlands": 11,
    "East Midlands": 10,
    "London": 11,
    "North West": 9,
    "South West": 8,
    "East of England": 8,
    "Yorkshire and the Humber": 7,
    "North East": 4,
    "Wales": 3,
    "Scotland": 2,
    "Northern Ireland": 1,
    "Outside the UK": 0.3,
    "": 6.7,
}
# "2,455 enquiries" by email, "70" phone calls, the rest recorded by practitioners
CHANNELS = {"email": 2455, "phone": 70, "practitioner": REPORT_CASES - 2455 - 70}
REFERRED = 0.688
OTHER_OUTCOMES = {
    "Advice given": 55,
    "Signposted elsewhere": 25,
    "Escalated to police/CEOP": 5,
    "No further action": 10,
    "": 5,
}
STATUSES = {
    CaseStatus.RESOLVED: 90,
    CaseStatus.SIGNPOSTED: 6,
    CaseStatus.CLAIMED: 2,
    CaseStatus.NEW: 2,
}
DESCRIPTIONS = (
    "An account is posting edited photos of staff with insulting captions.",
    "Pupils have shared a video of a fight at the school gates.",
    "A parent has set up a page making allegations about a member of staff.",
    "Fake account using the school logo, reported to the platform with no response.",
    "A student received threatening messages from an account they do not know.",
    "We would like advice on our filtering and monitoring provision.",
    "",
)


def _with_remainder(counts: dict[str, int], whole: int) -> dict[str, float]:
    """The table's counts plus a blank for the cases the table does not cover."""
    out = {label: float(n) for label, n in counts.items()}
    out[""] = float(max(whole - sum(counts.values()), 0))
    return out


def _draw(rng: random.Random, weights: dict[Any, float] | dict[Any, int], n: int) -> list[Any]:
    return rng.choices(list(weights), weights=list(weights.values()), k=n)


def _categories(rng: random.Random, k: int) -> str:
    labels = list(CATEGORIES)
    weights = [float(w) for w in CATEGORIES.values()]
    chosen: list[str] = []
    while len(chosen) < k:
        pick = rng.choices(labels, weights=weights)[0]
        if pick not in chosen:
            chosen.append(pick)
    return ";".join(chosen)


def _subject(rng: random.Random, prefix: str) -> str:
    words = [w for w, n in SUBJECT_WORDS.items() if rng.random() < n / REPORT_CASES]
    if not words:
        words = _draw(rng, SUBJECT_WORDS, 1)
    words = [_draw(rng, TIKTOK_SPELLINGS, 1)[0] if w == "TikTok" else w for w in words]
    rng.shuffle(words)
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        words.insert(rng.randrange(len(words) + 1), rng.choice(STOP_WORDS))
    words[0] = words[0][:1].upper() + words[0][1:]
    return prefix + " ".join(words)


def generate(path: Path, n: int, seed: int) -> None:
    """Write ``n`` cases to ``path`` in the import format, in the report's proportions."""
    rng = random.Random(seed)
    enquirers = _draw(rng, _with_remainder(ENQUIRER_TYPES, REPORT_CASES), n)
    settings = _draw(rng, _with_remainder(SETTINGS, REPORT_CASES), n)
    platform_types = _draw(rng, _with_remainder(PLATFORM_TYPES, REPORT_CASES), n)
    platforms = _draw(rng, _with_remainder(PLATFORMS, SOCIAL_NETWORKS), n)
    regions = _draw(rng, REGIONS, n)
    channels = _draw(rng, CHANNELS, n)
    counts = _draw(rng, CATEGORY_COUNTS, n)
    prefixes = _draw(rng, PREFIXES, n)
    outcomes = _draw(rng, OTHER_OUTCOMES, n)
    statuses = _draw(rng, STATUSES, n)
    months = _draw(rng, MONTHS, n)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(n):
            year, month = months[i]
            first = datetime(year, month, 1)
            days = ((first + timedelta(days=32)).replace(day=1) - first).days
            received = first + timedelta(
                days=rng.randrange(days), seconds=rng.randrange(7 * 3600, 20 * 3600)
            )
            referred = rng.random() < REFERRED
            platform_type = platform_types[i]
            writer.writerow(
                (
                    f"BR-{i + 1:08d}",
                    received.isoformat(),
                    channels[i],
                    enquirers[i],
                    settings[i],
                    regions[i],
                    platform_type,
                    platforms[i] if platform_type == "Social Networks" else "",
                    _categories(rng, counts[i]),
                    _subject(rng, prefixes[i]),
                    rng.choice(DESCRIPTIONS),
                    "true" if referred else "false",
                    "Referred to platform for takedown" if referred else outcomes[i],
                    statuses[i],
                )
            )


# -- measuring --------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """The RSS high-water mark since the last reset (or since the process started)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    now = _status_mb("VmRSS")
    return now if now is not None else 0.0


@dataclass
class Outcome:
    kind: str
    cases: int
    import_s: float
    import_rss_before_mb: float
    import_rss_mb: float
    imported: int
    errors: list[str]
    report_s: float
    report_rss_before_mb: float
    report_rss_mb: float
    data: dict[str, Any]


async def run_one(kind: str, csv_path: Path, n: int, postgres_url: str) -> Outcome:
    tax = default_taxonomy()
    vocab = Vocabulary.of_taxonomy(tax)
    labels = tax["category"].labels
    async with database(kind, postgres_url, "helpline-bench-report-") as url:
        engine = db.create_engine(url)
        try:
            await db.upgrade(engine)
            sessions = db.session_factory(engine)

            import_before = rss_mb()
            reset_peak_rss()
            start = time.perf_counter()
            with csv_path.open(encoding="utf-8-sig", newline="") as handle:
                async with sessions() as session, session.begin():
                    result = await import_cases(session, handle, vocab, ZONE, clean=normalise)
                    if not result.ok:
                        await session.rollback()
            import_s = time.perf_counter() - start
            import_rss = peak_rss_mb()

            report_before = rss_mb()
            reset_peak_rss()
            start = time.perf_counter()
            async with sessions() as session:
                data = await analysis(session, YEAR, labels)
            report_s = time.perf_counter() - start
            report_rss = peak_rss_mb()
        finally:
            await engine.dispose()
    return Outcome(
        kind=kind,
        cases=n,
        import_s=import_s,
        import_rss_before_mb=import_before,
        import_rss_mb=import_rss,
        imported=result.rows,
        errors=result.errors,
        report_s=report_s,
        report_rss_before_mb=report_before,
        report_rss_mb=report_rss,
        data=data,
    )


# -- printing --------------------------------------------------------------------------------


def _share(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def print_outcome(o: Outcome) -> None:
    scale = o.cases / TARGET_CASES
    target_rate = TARGET_CASES / TARGET_IMPORT_S
    rate = o.imported / o.import_s if o.import_s else 0.0
    import_ok = o.imported == o.cases and rate >= target_rate
    print(f"\n== {o.kind}: {o.cases:,} cases ==")
    if o.errors:
        print(f"  IMPORT FAILED ({len(o.errors)} problems), first ones:")
        for problem in o.errors[:5]:
            print(f"    {problem}")
    print(
        f"  import : {o.import_s:8.2f} s  {rate:10,.0f} rows/s   target >= {target_rate:,.0f} "
        f"rows/s ({TARGET_CASES:,} in <= {TARGET_IMPORT_S:g} s; "
        f"{TARGET_IMPORT_S * scale:.1f} s for {o.cases:,})  "
        f"[{'met' if import_ok else 'MISSED'}]"
    )
    if o.imported:
        at_target = o.import_s / scale
        print(f"           projected to {TARGET_CASES:,} cases: {at_target:.1f} s")
    report_target = TARGET_REPORT_S * scale
    report_ok = o.report_s <= report_target
    print(
        f"  report : {o.report_s:8.2f} s  {o.data['total_cases'] / o.report_s:10,.0f} cases/s  "
        f"target <= {TARGET_REPORT_S:g} s for {TARGET_CASES:,} "
        f"({report_target:.2f} s for {o.cases:,})  [{'met' if report_ok else 'MISSED'}]"
    )
    print(
        f"  peak RSS: import {o.import_rss_mb:,.0f} MB (RSS before it {o.import_rss_before_mb:,.0f}"
        f" MB), report {o.report_rss_mb:,.0f} MB (before it {o.report_rss_before_mb:,.0f} MB)"
    )
    d = o.data
    total = d["total_cases"]
    print(f"  report figures: {total:,} cases in {d['period']['from']}..{d['period']['to']}")
    print(
        "    channels: " + ", ".join(f"{k} {_share(v, total)}" for k, v in d["by_channel"].items())
    )
    print(
        "    enquirers: "
        + ", ".join(f"{k} {_share(v, total)}" for k, v in list(d["enquirer_type"].items())[:5])
    )
    print("    settings: " + ", ".join(f"{k} {_share(v, total)}" for k, v in d["setting"].items()))
    print(
        "    platform types: "
        + ", ".join(f"{k} {_share(v, total)}" for k, v in list(d["platform_type"].items())[:4])
    )
    print("    platforms: " + ", ".join(f"{k} {v:,}" for k, v in d["social_platform"].items()))
    print("    months: " + ", ".join(f"{k[2:]} {v:,}" for k, v in d["by_month"].items()))
    print(
        "    regions: "
        + ", ".join(f"{k} {_share(v, total)}" for k, v in list(d["by_region"].items())[:6])
    )
    print(
        "    top categories: "
        + ", ".join(f"{k} {d['categories'][k]['percent']:.1f}%" for k in d["top_categories"])
    )
    print(f"    referred to platform: {d['referred_to_platform_percent']:.1f}%")
    print("    subject words: " + ", ".join(f"{w} {n:,}" for w, n in d["subject_words"][:10]))
    print(
        "    setting categories (Secondary): "
        + ", ".join(
            f"{k} {v:.1f}%"
            for k, v in list(d["setting_categories"].get("Secondary", {}).items())[:3]
        )
    )


async def main_async(args: argparse.Namespace) -> None:
    kinds: Sequence[str] = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    with tempfile.TemporaryDirectory(prefix="helpline-bench-report-csv-") as tmp:
        csv_path = Path(args.keep_csv) if args.keep_csv else Path(tmp) / "cases.csv"
        reset_peak_rss()
        start = time.perf_counter()
        generate(csv_path, args.cases, args.seed)
        generate_s = time.perf_counter() - start
        peaks = [peak_rss_mb()]
        size = csv_path.stat().st_size / 1e6
        print(
            f"generated {args.cases:,} cases as CSV in {generate_s:.1f} s "
            f"({size:,.0f} MB; not timed below; peak RSS {peaks[0]:,.0f} MB)"
        )
        outcomes = []
        for kind in kinds:
            outcome = await run_one(kind, csv_path, args.cases, args.postgres_url)
            print_outcome(outcome)
            outcomes.append(outcome)
            peaks += [outcome.import_rss_mb, outcome.report_rss_mb]
    print("\nsummary")
    for o in outcomes:
        scale = o.cases / TARGET_CASES
        print(
            f"  {o.kind:<8} import {o.import_s:7.2f} s (target {TARGET_IMPORT_S * scale:.1f} s)"
            f"   report {o.report_s:6.2f} s (target {TARGET_REPORT_S * scale:.2f} s)"
            f"   peak RSS {max(o.import_rss_mb, o.report_rss_mb):,.0f} MB"
        )
    print(f"  peak RSS of the whole run {max(peaks):,.0f} MB")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cases", type=int, default=TARGET_CASES)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--keep-csv", metavar="PATH", help="write the CSV here and keep it")
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
