"""Benchmark: the issue's performance targets, as ratios measured side by side in one run.

Run::

    python -m bench.ratios [--rounds 3] [--enquirers 10] [--conversations 20]
                           [--postgres-url URL]

This 2-core machine is shared and its speed swings between runs, so every target is a ratio
of two figures measured within the same round, never an absolute time. Every Telegram
service is started once, with a database of its own, and warmed up; then each round runs,
one after the other:

* Telegram (``bench.telegram_turns``' own scenarios, each service in a child process against
  a fake Bot API of its own, N enquirers at once, twice; the services not being measured
  sit idle meanwhile): the plain PTB ``ConversationHandler`` bot
  with its state in memory on our aiohttp transport (``baseline-aiohttp``); ours on
  PostgreSQL and on SQLite, polling like the baseline; ours on PostgreSQL as one webhook
  replica and as two taking the webhooks in turn.
* The intake transaction (``bench.intake_floor``, in this process, no Telegram): the flow
  step alone, ``IntakeService.handle`` on each store, and the floor under it: the driver
  (asyncpg, aiosqlite) running the same statements with no SQLAlchemy and no flow.

The ratios, each a median over the rounds:

(a) our service's CPU per update over the plain bot's, same transport, both polling; and
    beneath it the least it could be: the plain bot's plus the driver's floor and the flow
    step, with everything else of ours free;
(b) the intake transaction's CPU per message over the floor's. The floor runs the
    statements of an ordinary message and no flow, so the target compares the ordinary
    messages' transaction alone (``handle`` minus the flow step measured by itself, over
    all turns but the one that files the case); beneath it, the same over every turn (the
    case-filing one creates the case, its links and its desk card), and that with the flow
    step;
(c) SQLite against PostgreSQL, higher is better: throughput (updates/s with the same N
    enquirers at once; what the target compares), and updates per CPU-second of the service
    and the database server together (PostgreSQL's backends for the benchmark database);
(d) CPU per update of two webhook replicas over one (the replicas' CPU added up); beneath
    it, the same split in two: two single replicas that share nothing (a database and a
    fake each) taking half the enquirers each at the same time, over one replica (what
    the machine adds when two service processes are busy at once on its two cores), and
    the two sharing replicas over those two (what sharing one database adds).

Nothing is asserted: the table prints each ratio beside its target, then the figures the
ratios are made of.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url  # noqa: E402

from bench import intake_floor  # noqa: E402
from bench.common import postgres_url, prepare_postgres  # noqa: E402
from bench.enquiry import script  # noqa: E402
from bench.intake_floor import PerMessage  # noqa: E402
from bench.telegram_turns.cli import (  # noqa: E402
    Started,
    quiet_and_stoppable,
    started,
    versions,
)
from bench.telegram_turns.figures import Figures, per_update_cpu_ms  # noqa: E402
from bench.telegram_turns.service import Kind  # noqa: E402
from storage.db import normalise_url  # noqa: E402
from storage.encryption import new_key  # noqa: E402

DEFAULT_POSTGRES_URL = postgres_url("ratios")
BASELINE, PG, SQLITE, HOOK_1, HOOK_2 = "baseline", "postgres", "sqlite", "webhook-1", "webhook-2"
HOOK_APART = "webhook-1-apart"
"""The control for (d): two single replicas on databases of their own, at the same time."""
FLOOR_PG, FLOOR_SQLITE = "floor-postgres", "floor-sqlite"
WARM_UP = 1
"""Conversations each Telegram service has before it is measured (its first-use costs)."""


@dataclass(frozen=True)
class Scenario:
    """One Telegram scenario of a round: what runs, on which store, how updates arrive."""

    name: str
    kind: Kind
    store: str | None
    replicas: int = 1
    webhook: bool = False
    apart: bool = False
    """Two single replicas that share nothing (databases, fakes) take half the enquirers
    each at the same time: the machine as loaded as with two sharing replicas, the design's
    sharing (one database, a chat's turns on either process) left out."""


SCENARIOS = (
    Scenario(BASELINE, "baseline-aiohttp", None),
    Scenario(PG, "ours", "postgres"),
    Scenario(SQLITE, "ours", "sqlite"),
    Scenario(HOOK_1, "ours", "postgres", 1, webhook=True),
    Scenario(HOOK_2, "ours", "postgres", 2, webhook=True),
    Scenario(HOOK_APART, "ours", "postgres", 2, webhook=True, apart=True),
)


@dataclass
class Round:
    """What one round measured: Telegram scenarios and the intake's CPU per message (s)."""

    telegram: dict[str, Figures] = field(default_factory=dict)
    intake: dict[str, PerMessage] = field(default_factory=dict)

    def cpu_ms(self, name: str) -> float:
        """A Telegram scenario's service CPU per update (NaN if it did not run)."""
        figures = self.telegram.get(name)
        return per_update_cpu_ms(figures) if figures and not figures.failure else float("nan")

    def rate(self, name: str) -> float:
        """A Telegram scenario's throughput, updates/s (NaN if it did not run)."""
        figures = self.telegram.get(name)
        return figures.rate if figures and not figures.failure else float("nan")

    def all_cpu_ms(self, name: str) -> float:
        """CPU per update of the service and the database server together."""
        figures = self.telegram.get(name)
        if figures is None or figures.failure or not figures.updates:
            return float("nan")
        return (figures.cpu_s + figures.database_cpu_s) / figures.updates * 1000

    def transaction(self, store: str, *, ordinary: bool = True) -> float:
        """The intake transaction's CPU per message without the flow step: over the
        ordinary messages (what the floor runs), or over every one (``ordinary=False``:
        the case-filing turn included)."""
        return self._of(store, ordinary) - self._of("flow", ordinary)

    def intake_ms(self, name: str, *, ordinary: bool = True) -> float:
        """An intake figure (a store, ``flow`` or a floor), ms per message."""
        return self._of(name, ordinary) * 1000

    def _of(self, name: str, ordinary: bool) -> float:
        found = self.intake[name]
        return found.ordinary if ordinary else found.every


Measure = Callable[[Round], float]


@dataclass(frozen=True)
class Ratio:
    """One row of the table: how it is computed per store, and its target."""

    label: str
    target: float | None
    higher_is_better: bool = False
    sqlite: Measure | None = None
    postgres: Measure | None = None

    def met(self, value: float) -> str:
        """✓ or ✗ against the target (nothing when the row has none)."""
        if self.target is None or value != value:
            return ""
        ok = value >= self.target if self.higher_is_better else value <= self.target
        return "✓" if ok else "✗"

    @property
    def goal(self) -> str:
        """The target as printed."""
        if self.target is None:
            return ""
        return f"{'≥' if self.higher_is_better else '≤'} {self.target:g}"


RATIOS = (
    Ratio(
        "(a) our turn's CPU / the plain in-memory PTB bot's (same transport)",
        1.5,
        sqlite=lambda r: r.cpu_ms(SQLITE) / r.cpu_ms(BASELINE),
        postgres=lambda r: r.cpu_ms(PG) / r.cpu_ms(BASELINE),
    ),
    Ratio(
        "    its floor: (the plain bot + the driver's floor + the flow step) / the plain bot",
        None,
        sqlite=lambda r: _floor_of_a(r, FLOOR_SQLITE),
        postgres=lambda r: _floor_of_a(r, FLOOR_PG),
    ),
    Ratio(
        "(b) intake transaction's CPU / the driver's floor (the target)",
        2.0,
        sqlite=lambda r: r.transaction(SQLITE) / r.intake_ms(FLOOR_SQLITE) * 1000,
        postgres=lambda r: r.transaction(PG) / r.intake_ms(FLOOR_PG) * 1000,
    ),
    Ratio(
        "    every turn's, the one filing the case included / the floor",
        None,
        sqlite=lambda r: r.transaction(SQLITE, ordinary=False) / r.intake_ms(FLOOR_SQLITE) * 1000,
        postgres=lambda r: r.transaction(PG, ordinary=False) / r.intake_ms(FLOOR_PG) * 1000,
    ),
    Ratio(
        "    every turn's, with its flow step / the floor",
        None,
        sqlite=lambda r: _every(r, SQLITE) / r.intake_ms(FLOOR_SQLITE),
        postgres=lambda r: _every(r, PG) / r.intake_ms(FLOOR_PG),
    ),
    Ratio(
        "(c) SQLite / PostgreSQL, throughput (the target)",
        0.8,
        higher_is_better=True,
        sqlite=lambda r: r.rate(SQLITE) / r.rate(PG),
    ),
    Ratio(
        "    SQLite / PostgreSQL, updates per CPU-second incl. the server",
        None,
        higher_is_better=True,
        sqlite=lambda r: r.all_cpu_ms(PG) / r.all_cpu_ms(SQLITE),
    ),
    Ratio(
        "(d) CPU per update, 2 webhook replicas / 1",
        1.1,
        postgres=lambda r: r.cpu_ms(HOOK_2) / r.cpu_ms(HOOK_1),
    ),
    Ratio(
        "    the machine's share: 2 replicas sharing nothing, at once / 1",
        None,
        postgres=lambda r: r.cpu_ms(HOOK_APART) / r.cpu_ms(HOOK_1),
    ),
    Ratio(
        "    the design's share: 2 replicas sharing the database / 2 sharing nothing",
        None,
        postgres=lambda r: r.cpu_ms(HOOK_2) / r.cpu_ms(HOOK_APART),
    ),
)

FIGURES: tuple[tuple[str, Measure], ...] = (
    ("plain PTB bot, CPU per update (ms)", lambda r: r.cpu_ms(BASELINE)),
    ("ours, PostgreSQL, CPU per update (ms)", lambda r: r.cpu_ms(PG)),
    ("ours, SQLite, CPU per update (ms)", lambda r: r.cpu_ms(SQLITE)),
    ("ours, PostgreSQL, 1 webhook replica (ms)", lambda r: r.cpu_ms(HOOK_1)),
    ("ours, PostgreSQL, 2 webhook replicas (ms)", lambda r: r.cpu_ms(HOOK_2)),
    ("ours, PostgreSQL, 2 replicas sharing nothing (ms)", lambda r: r.cpu_ms(HOOK_APART)),
    ("  PostgreSQL server's CPU per update, polling (ms)", lambda r: _server_ms(r, PG)),
    ("throughput, plain PTB bot (updates/s)", lambda r: r.rate(BASELINE)),
    ("throughput, ours on PostgreSQL (updates/s)", lambda r: r.rate(PG)),
    ("throughput, ours on SQLite (updates/s)", lambda r: r.rate(SQLITE)),
    ("intake, ordinary turn: the flow step alone (ms)", lambda r: r.intake_ms("flow")),
    ("intake, ordinary turn on PostgreSQL, with flow (ms)", lambda r: r.intake_ms(PG)),
    ("intake, ordinary turn on SQLite, with flow (ms)", lambda r: r.intake_ms(SQLITE)),
    ("intake, every turn: the flow step alone (ms)", lambda r: _every(r, "flow")),
    ("intake, every turn on PostgreSQL, with flow (ms)", lambda r: _every(r, PG)),
    ("intake, every turn on SQLite, with flow (ms)", lambda r: _every(r, SQLITE)),
    ("floor: asyncpg, same statements (ms)", lambda r: r.intake_ms(FLOOR_PG)),
    ("floor: aiosqlite, same statements (ms)", lambda r: r.intake_ms(FLOOR_SQLITE)),
)


def _floor_of_a(r: Round, floor: str) -> float:
    """What (a) would be if our turn cost the plain bot's plus nothing but the driver's
    floor and the flow step: the least a durable turn with this flow can cost."""
    base = r.cpu_ms(BASELINE)
    return (base + r.intake_ms(floor) + r.intake_ms("flow")) / base


def _every(r: Round, name: str) -> float:
    return r.intake_ms(name, ordinary=False)


def _server_ms(r: Round, name: str) -> float:
    figures = r.telegram.get(name)
    if figures is None or figures.failure or not figures.updates:
        return float("nan")
    return figures.database_cpu_s / figures.updates * 1000


def scenario_url(scenario: Scenario, args: argparse.Namespace, tmp: str) -> str:
    """Each scenario's own database (they all run at once): a SQLite file, or a PostgreSQL
    database named after ``--postgres-url``'s with the scenario's name added."""
    if scenario.store == "sqlite":
        return f"sqlite+aiosqlite:///{tmp}/telegram.db"
    if scenario.store != "postgres":
        return ""
    url = make_url(normalise_url(args.postgres_url))
    return url.set(database=f"{url.database}_{scenario.name.replace('-', '_')}").render_as_string(
        hide_password=False
    )


@dataclass(frozen=True)
class Apart:
    """Two single replicas sharing nothing, loaded at the same time: :data:`HOOK_APART`."""

    halves: tuple[Started, Started]

    async def load(self, figures: Figures, first_chat: int, enquirers: int) -> None:
        """Half the enquirers on each at once; ``figures`` of both added up (the wall time
        and the machine's busy time are the longer half's: they ran side by side)."""
        parts = [Figures(figures.name, n) for n in (enquirers // 2, enquirers - enquirers // 2)]
        pairs = zip(self.halves, parts, strict=True)
        await asyncio.gather(*(half.load(part, first_chat, part.enquirers) for half, part in pairs))
        for part in parts:
            for name in ("updates", "completed", "failed", "cpu_s", "database_cpu_s"):
                setattr(figures, name, getattr(figures, name) + getattr(part, name))
            figures.driver_cpu_s = max(figures.driver_cpu_s, part.driver_cpu_s)
            figures.wall_s = max(figures.wall_s, part.wall_s)
            figures.machine_busy_s = max(figures.machine_busy_s, part.machine_busy_s)
            figures.latency_ms += part.latency_ms
            figures.errors = sorted({*figures.errors, *part.errors})


@contextlib.asynccontextmanager
async def start(scenario: Scenario, url: str) -> AsyncIterator[Started | Apart]:
    """A scenario's service(s), warmed up, for the length of the block."""
    if not scenario.apart:
        async with started(
            scenario.kind, url, scenario.replicas, webhook=scenario.webhook, warm_up=WARM_UP
        ) as one:
            yield one
        return
    base = make_url(url)
    urls = [
        base.set(database=f"{base.database}_{half}").render_as_string(hide_password=False)
        for half in "ab"
    ]
    async with (
        started(scenario.kind, urls[0], webhook=True, warm_up=WARM_UP) as a,
        started(scenario.kind, urls[1], webhook=True, warm_up=WARM_UP) as b,
    ):
        yield Apart((a, b))


async def telegram_round(
    running: Mapping[str, Started | Apart], enquirers: int, n: int
) -> dict[str, Figures]:
    """Round ``n`` of the Telegram scenarios: N enquirers at once, twice, in each."""
    results: dict[str, Figures] = {}
    for name, scenario in running.items():
        print(f"  round {n + 1}: telegram, {name} …", flush=True)
        figures = results[name] = Figures(name, enquirers)
        try:
            await scenario.load(figures, 3_000_000 + n * 2_000_000, enquirers)
        except (RuntimeError, OSError, TimeoutError) as error:
            figures.failure = str(error) or repr(error)
        if figures.failure or figures.failed:
            print(f"    ! {figures.failure or f'{figures.failed} conversations failed'}")
    return results


async def intake_round(args: argparse.Namespace, tmp: str, n: int) -> dict[str, PerMessage]:
    """The intake transaction on each store, the flow step alone, and the floors."""
    print(f"  round {n + 1}: the intake transaction and its floor …", flush=True)
    found = {"flow": intake_floor.flow_step(args.conversations)}
    url = f"sqlite+aiosqlite:///{tmp}/intake-{n}.db"
    found[SQLITE], times = await intake_floor.ours(url, args.conversations)
    floor, _ = await intake_floor.floor_sqlite(url, len(times))
    found[FLOOR_SQLITE] = PerMessage(floor, floor)
    await prepare_postgres(args.postgres_url)
    found[PG], times = await intake_floor.ours(args.postgres_url, args.conversations)
    floor, _ = await intake_floor.floor(args.postgres_url, len(times))
    found[FLOOR_PG] = PerMessage(floor, floor)
    return found


def median(values: Sequence[float]) -> float:
    """The median of the figures that exist (NaN when none does)."""
    real = [v for v in values if v == v]
    return statistics.median(real) if real else float("nan")


def cell(values: Sequence[float], digits: int = 2) -> str:
    """A median, with each round's figure when there were several."""
    if not values or all(v != v for v in values):
        return "—"
    text = f"{median(values):.{digits}f}"
    if len(values) > 1:
        text += " (" + " ".join(f"{v:.{digits}f}" for v in values) + ")"
    return text


def report(rounds: list[Round]) -> None:
    """The ratios beside their targets, then the figures they are made of."""
    count = len(rounds)
    print(f"\n== the ratios (median of {count} round{'s' if count > 1 else ''}) ==")
    width = 72
    print(f"  {'ratio':<{width}}{'target':<8}{'SQLite':<22}{'PostgreSQL':<22}")
    for ratio in RATIOS:
        cells = []
        for measure in (ratio.sqlite, ratio.postgres):
            if measure is None:
                cells.append("—")
                continue
            values = [_safely(measure, r) for r in rounds]
            value = median(values)
            cells.append(f"{value:.2f} {ratio.met(value)}".rstrip() if value == value else "—")
        print(f"  {ratio.label:<{width}}{ratio.goal:<8}{cells[0]:<22}{cells[1]:<22}")
    print("\n== the figures (median, then each round's) ==")
    for label, measure in FIGURES:
        print(f"  {label:<52}{cell([_safely(measure, r) for r in rounds])}")
    print(
        "\n  CPU is the service process's (all threads), in the two load phases of "
        f"{rounds[0].telegram[BASELINE].enquirers if BASELINE in rounds[0].telegram else '?'}"
        " enquirers at once; the intake's is this process's, one message at a time."
    )


def _safely(measure: Measure, r: Round) -> float:
    try:
        return measure(r)
    except (KeyError, ZeroDivisionError):
        return float("nan")


async def bench(args: argparse.Namespace) -> None:
    """Every round, then the report."""
    quiet_and_stoppable()
    print("helpline-intake: the performance targets as ratios, all measured in this run")
    print(versions())
    print(
        f"  {args.rounds} round(s); Telegram: {args.enquirers} enquirers at once × "
        f"{len(script())} turns, twice, per scenario (PTB rate limiter off; the fake is "
        f"local); intake: {args.conversations} conversations one message at a time per store"
    )
    # The services read it (PostgreSQL requires one); no key file is left behind.
    os.environ.setdefault("HELPLINE_DATA_KEY", new_key())
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="helpline-ratios-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            running: dict[str, Started | Apart] = {}
            for scenario in SCENARIOS:
                print(f"  starting {scenario.name} …", flush=True)
                running[scenario.name] = await stack.enter_async_context(
                    start(scenario, scenario_url(scenario, args, tmp))
                )
            for n in range(args.rounds):
                measured = Round()
                measured.telegram = await telegram_round(running, args.enquirers, n)
                measured.intake = await intake_round(args, tmp, n)
                rounds.append(measured)
    report(rounds)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ratios",
        description="The performance targets as ratios, measured side by side in one run.",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is printed")
    parser.add_argument("--enquirers", type=int, default=10, help="Telegram enquirers at once")
    parser.add_argument(
        "--conversations", type=int, default=20, help="intake conversations per store"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.ratios``."""
    try:
        asyncio.run(bench(parse_args(argv)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; the services were stopped and temporary files removed")
        sys.exit(130)


if __name__ == "__main__":
    main()
