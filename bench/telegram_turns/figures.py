"""The figures of one scenario, and how they are printed: per scenario, then side by side.

Nothing is asserted: each figure is printed with the issue's target beside it.
"""

from __future__ import annotations

import io
import os
import pstats
from dataclasses import dataclass, field

TARGET_UPDATES_PER_S = 500.0
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
# RSS after the second N finished conversations may exceed RSS after the first N by this
# much before we call it growth (allocator noise; a leak of 10 kB per chat is 2 MB at 200).
MEMORY_SLACK_KB = 2048


@dataclass
class Figures:
    """What one scenario measured (the service's, the drivers' and the machine's)."""

    name: str
    enquirers: int
    updates: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    intake_ms: list[float] | None = None
    solo_ms: list[float] = field(default_factory=list)
    solo_intake_ms: list[float] | None = None
    cpu_s: float = 0.0
    database_cpu_s: float = 0.0
    """PostgreSQL's server processes for this database (0 for SQLite, which is in ``cpu_s``)."""
    driver_cpu_s: float = 0.0
    machine_busy_s: float = 0.0
    maxrss_kb: int = 0
    rss_first_kb: int = 0
    rss_second_kb: int = 0
    objects_delta: int = 0
    blocks_delta: int = 0
    chat_data: int = 0
    profile: str | None = None
    failure: str | None = None

    @property
    def rate(self) -> float:
        """Updates per second over the two load phases."""
        return self.updates / self.wall_s if self.wall_s else 0.0


def per_update_cpu_ms(f: Figures) -> float:
    """The service's CPU time per update in the load phases, in milliseconds."""
    return f.cpu_s / f.updates * 1000 if f.updates else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN when there is nothing to rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def tick(ok: bool) -> str:
    """The mark printed beside a target."""
    return "✓" if ok else "✗"


def memory_grew(f: Figures) -> bool:
    """Whether the second batch of conversations left RSS higher than the slack allows."""
    return f.rss_second_kb - f.rss_first_kb > MEMORY_SLACK_KB


def _latency(label: str, values: list[float] | None, q: float, digits: int = 1) -> tuple[str, ...]:
    """A percentile row; p50 and p99 carry the issue's target and a ✓/✗."""
    if values is None:
        return (label, "—", "")
    value = percentile(values, q)
    target = {50: TARGET_P50_MS, 99: TARGET_P99_MS}.get(int(q))
    mark = f"≤ {target:g} ms  {tick(value <= target)}" if target is not None else ""
    return (label, f"{value:.{digits}f} ms", mark)


def rows_for(f: Figures) -> list[tuple[str, ...]]:
    """(figure, value, target) rows for one scenario."""
    n, mb = f.enquirers, 1024
    delta = f.rss_second_kb - f.rss_first_kb
    per_update = per_update_cpu_ms(f)
    wall = f.wall_s or float("nan")
    rate_target = f"≥ {TARGET_UPDATES_PER_S:.0f}  {tick(f.rate >= TARGET_UPDATES_PER_S)}"
    return [
        ("conversations completed", f"{f.completed} ({f.failed} failed)", ""),
        ("updates processed", f"{f.updates}", ""),
        ("wall time", f"{f.wall_s:.1f} s", ""),
        ("throughput", f"{f.rate:.0f} updates/s", rate_target),
        _latency(f"update p50, {n} at once", f.latency_ms, 50),
        _latency(f"update p95, {n} at once", f.latency_ms, 95),
        _latency(f"update p99, {n} at once", f.latency_ms, 99),
        _latency(f"  of which intake p50, {n} at once", f.intake_ms, 50),
        _latency(f"  of which intake p99, {n} at once", f.intake_ms, 99),
        _latency("update p50, one at a time", f.solo_ms, 50, 2),
        _latency("update p95, one at a time", f.solo_ms, 95, 2),
        _latency("update p99, one at a time", f.solo_ms, 99, 2),
        _latency("  of which intake p50, one at a time", f.solo_intake_ms, 50, 2),
        _latency("  of which intake p99, one at a time", f.solo_intake_ms, 99, 2),
        ("service CPU per update", f"{per_update:.2f} ms", ""),
        ("service CPU use (load phases)", f"{f.cpu_s / wall:.0%} of a core", ""),
        ("fake+drivers CPU use", f"{f.driver_cpu_s / wall:.0%} of a core", ""),
        (
            "machine CPU use (all processes)",
            f"{f.machine_busy_s / wall / (os.cpu_count() or 1):.0%} of {os.cpu_count()} cores",
            "",
        ),
        ("peak RSS (ru_maxrss)", f"{f.maxrss_kb / mb:.1f} MB", ""),
        (f"RSS after {n} conversations", f"{f.rss_first_kb / mb:.1f} MB", ""),
        (f"RSS after another {n}", f"{f.rss_second_kb / mb:.1f} MB", ""),
        (
            "RSS delta (second batch)",
            f"{delta / mb:+.2f} MB ({delta / max(n, 1):+.1f} kB/chat)",
            f"no growth  {tick(not memory_grew(f))}",
        ),
        ("  Python objects / blocks delta", f"{f.objects_delta:+d} / {f.blocks_delta:+d}", ""),
        ("  PTB chat_data entries kept", f"{f.chat_data}", ""),
    ]


LABEL_WIDTH, CELL_WIDTH = 38, 28
NOTES = (
    "notes: 'update' = from PTB handing the update to the processor until its handler returned,",
    "       incl. the chat lock and the replies sent over HTTP to the fake; 'intake' = the part",
    "       in IntakeService.handle (DB transaction + flow). 'N at once' is mostly queueing: with",
    "       N updates in flight on one event loop, latency ≈ N / throughput (Little's law).",
    "       'one at a time' is the cost of one update with nothing else running. RSS is read",
    "       after gc.collect() + malloc_trim(0); memory ✓ = second batch grew RSS ≤ "
    f"{MEMORY_SLACK_KB // 1024} MB.",
)


def print_scenario(f: Figures) -> None:
    """One scenario's figures, as soon as it has run."""
    print(f"\n== {f.name} ==")
    if f.failure:
        print(f"  not run: {f.failure}")
        return
    for label, value, target in rows_for(f):
        target = f"target {target}" if target else ""
        print(f"  {label:<{LABEL_WIDTH}}{value:<{CELL_WIDTH}}{target}".rstrip())
    for error in f.errors[:5]:
        print(f"  ! {error}")
    if f.profile:
        print_profile(f.profile)


def print_comparison(results: dict[str, Figures]) -> None:
    """Every scenario side by side, then ours as ratios to the baseline of the same run."""
    columns = list(results)
    table: dict[str, dict[str, str]] = {}
    targets: dict[str, str] = {}
    for column in columns:
        figures = results.get(column)
        if figures is None or figures.failure:
            continue
        for label, value, target in rows_for(figures):
            threshold, _, mark = target.rpartition("  ")
            table.setdefault(label, {})[column] = f"{value} {mark}".rstrip()
            targets[label] = threshold
    if not table:
        return
    print("\n== comparison ==")
    head = "".join(c.ljust(CELL_WIDTH) for c in columns)
    print(f"  {'figure':<{LABEL_WIDTH}}{head}target")
    for label, cells in table.items():
        row = "".join(cells.get(c, "—").ljust(CELL_WIDTH) for c in columns)
        print(f"  {label:<{LABEL_WIDTH}}{row}{targets[label]}".rstrip())
    print_ratios(results)
    print()
    print("\n".join("  " + line for line in NOTES))


BASELINE = "baseline-aiohttp"


def print_ratios(results: dict[str, Figures]) -> None:
    """Ours against the plain-PTB bot on our transport, measured in the same run: the
    machine's speed swings between runs, the ratio much less."""
    base = results.get(BASELINE)
    if base is None or base.failure or not base.updates:
        return
    ours = {n: f for n, f in results.items() if n.startswith("ours") and not f.failure}
    if not ours:
        return
    print(f"\n  ours as a multiple of {BASELINE} (same run):")
    print(f"  {'scenario':<22}{'throughput':>12}{'CPU/update':>12}{'p50 solo':>10}")
    base_p50 = percentile(base.solo_ms, 50)
    for name, f in ours.items():
        print(
            f"  {name:<22}{f.rate / base.rate:>11.2f}x"
            f"{per_update_cpu_ms(f) / per_update_cpu_ms(base):>11.2f}x"
            f"{percentile(f.solo_ms, 50) / base_p50:>9.2f}x"
        )


def print_profile(path: str, top: int = 25) -> None:
    """The profiled service's top functions by own time."""
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    print(f"\n  cProfile of the service during the measured phases ({path}), by own time:")
    print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()))
