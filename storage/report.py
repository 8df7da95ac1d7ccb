"""The annual analysis, computed in the database: every table of the helpline's report.

Counts are GROUP BY queries over the period's cases; only the subject words need the
text, and those are streamed. Periods are whole days in the helpline's time zone.
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

from storage.models import Case, CaseCategory

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


def _in(period: Period) -> ColumnElement[bool]:
    return (Case.received_at >= period.start) & (Case.received_at < period.end)


async def _grouped(session: AsyncSession, column: Any, period: Period) -> dict[str, int]:
    query = (
        select(column, func.count())
        .where(_in(period), column.is_not(None))
        .group_by(column)
        .order_by(func.count().desc(), column)
    )
    return {str(label): int(n) for label, n in (await session.execute(query)).all()}


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 6) if whole else 0.0


async def subject_words(session: AsyncSession, period: Period, top: int = 20) -> list[list[Any]]:
    """Table 5: the most frequent words of the subject lines, streamed from the database."""
    counts: Counter[str] = Counter()
    spellings: defaultdict[str, Counter[str]] = defaultdict(Counter)
    query = select(Case.subject).where(_in(period), Case.subject.is_not(None))
    stream = await session.stream_scalars(query.execution_options(yield_per=5000))
    async for subject in stream:
        for word in WORD.findall(subject or ""):
            key = word.casefold().replace("’", "'")
            if key in STOP_WORDS:
                continue
            counts[key] += 1
            spellings[key][word] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [[_spelling(spellings[word]), n] for word, n in ranked]


def _spelling(seen: Counter[str]) -> str:
    """The most common way a word was written ("TikTok"), ties to the alphabetically first."""
    return sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


async def by_month(session: AsyncSession, period: Period) -> dict[str, int]:
    """Figure 2: cases per month (months in the helpline's time zone), every month listed."""
    months = period.months()
    bucket = case(*((Case.received_at < hi, label) for label, _, hi in months), else_=None).label(
        "month"
    )
    query = select(bucket, func.count()).where(_in(period)).group_by(bucket)
    found = {str(label): int(n) for label, n in (await session.execute(query)).all() if label}
    return {label: found.get(label, 0) for label, _, _ in months}


async def categories(
    session: AsyncSession, period: Period, labels: Sequence[str], total: int
) -> dict[str, dict[str, float | int]]:
    """Table 6: every category with its count and its percentage of all cases in the period."""
    query = (
        select(CaseCategory.category, func.count())
        .join(Case, Case.id == CaseCategory.case_id)
        .where(_in(period))
        .group_by(CaseCategory.category)
    )
    found = {str(label): int(n) for label, n in (await session.execute(query)).all()}
    return {
        label: {"count": found.get(label, 0), "percent": _percent(found.get(label, 0), total)}
        for label in labels
    }


async def setting_categories(session: AsyncSession, period: Period) -> dict[str, dict[str, float]]:
    """Figure 4: within each setting, the share of its cases carrying each category."""
    per_setting = await _grouped(session, Case.setting, period)
    query = (
        select(Case.setting, CaseCategory.category, func.count())
        .join(CaseCategory, Case.id == CaseCategory.case_id)
        .where(_in(period), Case.setting.is_not(None))
        .group_by(Case.setting, CaseCategory.category)
    )
    shares: dict[str, dict[str, float]] = {setting: {} for setting in per_setting}
    for setting, category, n in (await session.execute(query)).all():
        shares[str(setting)][str(category)] = _percent(int(n), per_setting[str(setting)])
    return {s: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for s, c in shares.items()}


async def analysis(
    session: AsyncSession, period: Period, category_labels: Sequence[str]
) -> dict[str, Any]:
    """The whole analysis as one JSON-ready object (keys in the report's order)."""
    total = int((await session.execute(select(func.count()).where(_in(period)))).scalar_one())
    referred = int(
        (
            await session.execute(
                select(func.count()).where(_in(period), Case.referred_to_platform.is_(True))
            )
        ).scalar_one()
    )
    cats = await categories(session, period, category_labels, total)
    top = sorted(
        (label for label in category_labels if cats[label]["count"]),
        key=lambda label: (-int(cats[label]["count"]), category_labels.index(label)),
    )[:5]
    return {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat()},
        "total_cases": total,
        "by_channel": await _grouped(session, Case.channel, period),
        "enquirer_type": await _grouped(session, Case.enquirer_type, period),
        "setting": await _grouped(session, Case.setting, period),
        "by_month": await by_month(session, period),
        "platform_type": await _grouped(session, Case.platform_type, period),
        "social_platform": await _grouped(session, Case.platform, period),
        "subject_words": await subject_words(session, period),
        "referred_to_platform_percent": _percent(referred, total),
        "categories": cats,
        "top_categories": top,
        "setting_categories": await setting_categories(session, period),
        "by_region": await _grouped(session, Case.region, period),
    }
