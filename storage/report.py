"""The annual analysis, computed in the database: every table of the helpline's report.

Counts are GROUP BY queries over the period's cases; the subject words come from the
tally kept as cases are written (:mod:`storage.subject_words`), so no sealed subject is
opened and erasure leaves the figures as they were. Periods are whole days in the
helpline's time zone.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from storage.models import Case, CaseCategory, SubjectWord

# A standard English stop-word list (NLTK's), plus reply/forward prefixes.
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be been
    being have has had having do does did doing a an the and but if or because as until while of at
    by for with about against between into through during before after above below to from up down
    in out on off over under again further then once here there when where why how all any both
    each few more most other some such no nor not only own same so than too very s t can will just
    don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
    doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't
    needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
    fw fwd""".split()
)
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days ``first``..``last`` (inclusive) in the helpline's time zone."""

    first: date
    last: date
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")

    @property
    def start(self) -> datetime:
        """The first moment of the period (midnight at the start of its first day)."""
        return datetime.combine(self.first, time(), self.zone)

    @property
    def end(self) -> datetime:
        """The first moment after the period (midnight after its last day)."""
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone)

    def months(self) -> list[tuple[str, datetime, datetime]]:
        """Every calendar month the period touches, clipped to it: (YYYY-MM, start, end)."""
        out = []
        year, month = self.first.year, self.first.month
        while (year, month) <= (self.last.year, self.last.month):
            nxt = (year + (month == 12), month % 12 + 1)
            lo = max(self.start, datetime(year, month, 1, tzinfo=self.zone))
            hi = min(self.end, datetime(nxt[0], nxt[1], 1, tzinfo=self.zone))
            out.append((f"{year:04d}-{month:02d}", lo, hi))
            year, month = nxt
        return out


# On SQLite, a period holding more than this share of all cases is read by scanning the
# table: looking each of them up through the received_at index costs several times more.
SQLITE_SCAN_SHARE = 0.1


def _in(period: Period) -> ColumnElement[bool]:
    return (Case.received_at >= period.start) & (Case.received_at < period.end)


@dataclass(frozen=True, slots=True)
class _Scope:
    """The period's cases, and whether to find them by scanning rather than by index."""

    period: Period
    scan: bool = False

    def where(self) -> ColumnElement[bool]:
        if not self.scan:
            return _in(self.period)
        # SQLite's unary plus: the same value, but the planner will not use the index for it.
        at = UnaryExpression(
            Case.__table__.c.received_at,
            operator=operators.custom_op("+"),
            type_=Case.received_at.type,
        )
        return (at >= self.period.start) & (at < self.period.end)


async def _scope(session: AsyncSession, period: Period) -> _Scope:
    """How to read the period: SQLite has no statistics to choose a plan by, so count here."""
    if session.get_bind().dialect.name != "sqlite":
        return _Scope(period)
    in_period = (await session.execute(select(func.count()).where(_in(period)))).scalar_one()
    everything = (await session.execute(select(func.count()).select_from(Case))).scalar_one()
    return _Scope(period, int(in_period) > SQLITE_SCAN_SHARE * int(everything))


async def _grouped(session: AsyncSession, column: Any, scope: _Scope) -> dict[str, int]:
    query = (
        select(column, func.count())
        .where(scope.where(), column.is_not(None))
        .group_by(column)
        .order_by(func.count().desc(), column)
    )
    return {str(label): int(n) for label, n in (await session.execute(query)).all()}


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 6) if whole else 0.0


async def subject_words(session: AsyncSession, period: Period, top: int = 20) -> list[list[Any]]:
    """Table 5: the most frequent words of the subject lines, streamed from the database."""
    return await _subject_words(session, await _scope(session, period), top)


async def _subject_words(session: AsyncSession, scope: _Scope, top: int) -> list[list[Any]]:
    # The words were counted as each case was written (storage.subject_words), by
    # spelling; folding spellings together comes here, once per distinct spelling.
    written: Counter[str] = Counter()
    period = scope.period
    counted = (
        select(SubjectWord.word, func.sum(SubjectWord.count))
        .where(SubjectWord.hour >= period.start, SubjectWord.hour < period.end)
        .group_by(SubjectWord.word)
    )
    for word, n in (await session.execute(counted)).all():
        written[word] += int(n)
    counts: Counter[str] = Counter()
    spellings: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for word, n in written.items():
        key = word.casefold().replace("’", "'")
        if key in STOP_WORDS:
            continue
        counts[key] += n
        spellings[key][word] += n
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [[_spelling(spellings[word]), n] for word, n in ranked]


def _spelling(seen: Counter[str]) -> str:
    """The most common way a word was written ("TikTok"), ties to the alphabetically first."""
    return sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


async def by_month(session: AsyncSession, period: Period) -> dict[str, int]:
    """Figure 2: cases per month (months in the helpline's time zone), every month listed."""
    return await _by_month(session, _Scope(period))  # received_at alone: the index covers it


async def _by_month(session: AsyncSession, scope: _Scope) -> dict[str, int]:
    months = scope.period.months()
    bucket = case(*((Case.received_at < hi, label) for label, _, hi in months), else_=None).label(
        "month"
    )
    query = select(bucket, func.count()).where(scope.where()).group_by(bucket)
    found = {str(label): int(n) for label, n in (await session.execute(query)).all() if label}
    return {label: found.get(label, 0) for label, _, _ in months}


async def categories(
    session: AsyncSession, period: Period, labels: Sequence[str], total: int
) -> dict[str, dict[str, float | int]]:
    """Table 6: every category with its count and its percentage of all cases in the period."""
    return _categories(await _tagged(session, await _scope(session, period)), labels, total)


async def _tagged(session: AsyncSession, scope: _Scope) -> dict[str | None, dict[str, int]]:
    """Categories counted per setting (None: cases with no setting): Table 6 and Figure 4."""
    query = (
        select(Case.setting, CaseCategory.category, func.count())
        .select_from(CaseCategory)
        .join(Case, Case.id == CaseCategory.case_id)
        .where(scope.where())
        .group_by(Case.setting, CaseCategory.category)
    )
    tagged: defaultdict[str | None, dict[str, int]] = defaultdict(dict)
    for setting, category, n in (await session.execute(query)).all():
        tagged[None if setting is None else str(setting)][str(category)] = int(n)
    return tagged


def _categories(
    tagged: dict[str | None, dict[str, int]], labels: Sequence[str], total: int
) -> dict[str, dict[str, float | int]]:
    found: Counter[str] = Counter()
    for counts in tagged.values():
        found.update(counts)
    return {
        label: {"count": found.get(label, 0), "percent": _percent(found.get(label, 0), total)}
        for label in labels
    }


async def setting_categories(session: AsyncSession, period: Period) -> dict[str, dict[str, float]]:
    """Figure 4: within each setting, the share of its cases carrying each category."""
    scope = await _scope(session, period)
    per_setting = await _grouped(session, Case.setting, scope)
    return _setting_categories(await _tagged(session, scope), per_setting)


def _setting_categories(
    tagged: dict[str | None, dict[str, int]], per_setting: dict[str, int]
) -> dict[str, dict[str, float]]:
    shares: dict[str, dict[str, float]] = {setting: {} for setting in per_setting}
    for setting, counts in tagged.items():
        if setting is None:
            continue
        for category, n in counts.items():
            shares[setting][category] = _percent(n, per_setting[setting])
    return {s: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for s, c in shares.items()}


async def analysis(
    session: AsyncSession, period: Period, category_labels: Sequence[str]
) -> dict[str, Any]:
    """The whole analysis as one JSON-ready object (keys in the report's order)."""
    scope = await _scope(session, period)
    counted = select(func.count(), func.count().filter(Case.referred_to_platform.is_(True))).where(
        scope.where()
    )
    total, referred = (int(n) for n in (await session.execute(counted)).one())
    tagged = await _tagged(session, scope)
    cats = _categories(tagged, category_labels, total)
    top = sorted(
        (label for label in category_labels if cats[label]["count"]),
        key=lambda label: (-int(cats[label]["count"]), category_labels.index(label)),
    )[:5]
    settings = await _grouped(session, Case.setting, scope)
    return {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat()},
        "total_cases": total,
        "by_channel": await _grouped(session, Case.channel, scope),
        "enquirer_type": await _grouped(session, Case.enquirer_type, scope),
        "setting": settings,
        "by_month": await _by_month(session, _Scope(period)),
        "platform_type": await _grouped(session, Case.platform_type, scope),
        "social_platform": await _grouped(session, Case.platform, scope),
        "subject_words": await _subject_words(session, scope, 20),
        "referred_to_platform_percent": _percent(referred, total),
        "categories": cats,
        "top_categories": top,
        "setting_categories": _setting_categories(tagged, settings),
        "by_region": await _grouped(session, Case.region, scope),
    }
