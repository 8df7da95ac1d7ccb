"""The command line: which scenarios to run, running each, and the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import ServerCPU, postgres_url
from bench.enquiry import script
from bench.telegram_turns.drivers import BenchTelegram, run_phase
from bench.telegram_turns.figures import Figures, print_comparison, print_scenario
from bench.telegram_turns.service import KINDS, Kind, Mark, Replicas, serve_child

# Its own database (created if missing, wiped every run), so that running it beside the
# other benchmarks (bench.slack_burst uses "bench") does not wipe theirs.
DEFAULT_POSTGRES_URL = postgres_url("telegram")


@dataclass
class Started:
    """A scenario's fake Bot API and service(s), warmed up: measured as often as asked."""

    tg: BenchTelegram
    service: Replicas
    database_url: str

    def handled(self) -> int | None:
        """Updates the service must have handled once it catches up (None: with several
        replicas nobody knows which took what, so marks wait for a quiet moment)."""
        return None if self.service.webhooks else self.tg.updates

    async def mark(self, profile: str | None = None) -> Mark:
        """The service's figures since the last mark."""
        return await self.service.mark(profile, self.handled())

    async def load(
        self, figures: Figures, first_chat: int, enquirers: int, profile: str | None = None
    ) -> None:
        """N enquirers at once from chat ``first_chat`` on, then another N (new chats):
        ``figures`` of both phases (``profile``: where the profile started before goes)."""
        async with ServerCPU(self.database_url) as server:
            first = await run_phase(self.tg, first_chat, enquirers)
            first_mark = await self.mark()
            second = await run_phase(self.tg, first_chat + 1_000_000, enquirers)
            second_mark = await self.mark(profile)
        figures.database_cpu_s = server.seconds
        figures.updates = first_mark["updates"] + second_mark["updates"]
        figures.wall_s = first.wall_s + second.wall_s
        figures.completed = first.completed + second.completed
        figures.failed += first.failed + second.failed
        figures.errors = sorted(
            {*figures.errors, *(o.error for p in (first, second) for o in p.outcomes if o.error)}
        )
        figures.latency_ms = first_mark["latency_ms"] + second_mark["latency_ms"]
        if first_mark["intake_ms"] is not None:
            figures.intake_ms = first_mark["intake_ms"] + second_mark["intake_ms"]
        figures.cpu_s = first_mark["cpu_s"] + second_mark["cpu_s"]
        figures.driver_cpu_s = first.driver_cpu_s + second.driver_cpu_s
        figures.machine_busy_s = first.machine_busy_s + second.machine_busy_s
        figures.maxrss_kb = second_mark["maxrss_kb"]
        figures.rss_first_kb, figures.rss_second_kb = first_mark["rss_kb"], second_mark["rss_kb"]
        figures.objects_delta = second_mark["objects"] - first_mark["objects"]
        figures.blocks_delta = second_mark["blocks"] - first_mark["blocks"]
        figures.chat_data = second_mark["chat_data"]


@contextlib.asynccontextmanager
async def started(
    kind: Kind,
    database_url: str,
    replicas: int = 1,
    *,
    webhook: bool = False,
    warm_up: int = 3,
) -> AsyncIterator[Started]:
    """The fake and the service(s) for the length of the block, after ``warm_up``
    conversations one at a time (not counted).

    With ``replicas`` > 1 (or ``webhook``), that many service processes take webhooks in
    turn; their CPU, memory and samples are added up.
    """
    tg = BenchTelegram()
    async with (
        tg,
        Replicas.started(kind, database_url, tg.base_url, replicas, webhook=webhook) as service,
    ):
        tg.webhooks = service.webhooks
        ready = Started(tg, service, database_url)
        # Sequential first: the load phases leave the HTTP pool full of connections.
        await run_phase(tg, 1_000_000, warm_up, concurrent=False)
        await ready.mark()
        yield ready


async def run_scenario(
    name: str,
    kind: Kind,
    database_url: str,
    enquirers: int,
    solo: int,
    profile: str | None,
    replicas: int = 1,
) -> Figures:
    """Warm up, one at a time, N at once, another N at once; the service's figures for each
    (the profile, if any, is the first replica's, over the load phases). The database
    server's CPU (PostgreSQL's backends for this database) is measured over the load
    phases too.
    """
    figures = Figures(name, enquirers, profile=profile)
    async with started(kind, database_url, replicas) as scenario:
        solo_phase = await run_phase(scenario.tg, 2_000_000, solo, concurrent=False)
        solo_mark = await scenario.mark("start" if profile else None)
        figures.failed = solo_phase.failed
        figures.errors = sorted({o.error for o in solo_phase.outcomes if o.error})
        await scenario.load(figures, 3_000_000, enquirers, profile)
    figures.solo_ms = solo_mark["latency_ms"]
    if solo_mark["intake_ms"] is not None:
        figures.solo_intake_ms = solo_mark["intake_ms"]
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options (and the child process's internal ones)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.telegram_turns",
        description="Whole Telegram conversations through the service against a fake Bot API.",
    )
    parser.add_argument("--enquirers", type=int, default=200, help="concurrent enquirers")
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "both"), default="sqlite", help="our store"
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run a plain PTB ConversationHandler bot with in-memory state, on PTB's "
        "httpx transport and on ours (aiohttp)",
    )
    parser.add_argument(
        "--solo", type=int, default=10, help="conversations run one at a time for latency"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="cProfile the service during the measured phases (slows it down) into DIR",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="with PostgreSQL, also run this many webhook replicas sharing the load "
        "(round-robin); 1 to skip",
    )
    # The child process (internal).
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--webhook-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keep-database", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def print_header(args: argparse.Namespace) -> None:
    """What is about to run, and on what."""
    print("helpline-intake: Telegram turns benchmark")
    print(
        f"  per scenario: 3 warm-up conversations, {args.solo} one at a time (latency), then "
        f"{args.enquirers} enquirers at once × {len(script())} turns, then another "
        f"{args.enquirers} at once (memory)"
    )
    print(
        "  fake Bot API (aiohttp, loopback) + enquirers in this process; service in a child "
        "process (bot.app.build + running), polling"
    )
    print(
        "  PTB rate limiter OFF (rate_limited=False): the fake is local; production keeps "
        "AIORateLimiter at 30 messages/s"
    )
    print(versions())


def versions() -> str:
    """What the figures were measured with."""
    import sqlalchemy
    import telegram

    return (
        f"  Python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, {os.cpu_count()} CPUs"
    )


def quiet_and_stoppable() -> None:
    """Warnings only in the log, and SIGTERM stopping the run like Ctrl-C, cleaning up on
    the way out (call it in the benchmark's main task)."""
    from bot import logs

    logs.configure("WARNING")
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def bench(args: argparse.Namespace) -> None:
    """Every scenario asked for, one after another, then the comparison."""
    quiet_and_stoppable()
    print_header(args)
    scenarios: list[tuple[str, Kind, str, int]] = []
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        if args.database in ("sqlite", "both"):
            scenarios.append(("ours-sqlite", "ours", f"sqlite+aiosqlite:///{tmp}/bench.db", 1))
        if args.database in ("postgres", "both"):
            scenarios.append(("ours-postgres", "ours", args.postgres_url, 1))
            if args.replicas > 1:
                name = f"ours-postgres-{args.replicas}x"
                scenarios.append((name, "ours", args.postgres_url, args.replicas))
        if args.baseline:
            scenarios.append(("baseline", "baseline", "", 1))
            scenarios.append(("baseline-aiohttp", "baseline-aiohttp", "", 1))
        results: dict[str, Figures] = {}
        for name, kind, url, replicas in scenarios:
            profile = None
            if args.profile:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                profile = str(Path(args.profile).resolve() / f"{name}.prof")
            print(f"\nrunning {name} …", flush=True)
            try:
                figures = await run_scenario(
                    name, kind, url, args.enquirers, args.solo, profile, replicas
                )
            except (RuntimeError, OSError, TimeoutError) as error:
                figures = Figures(name, args.enquirers, failure=str(error) or repr(error))
            results[name] = figures
            print_scenario(figures)
        print_comparison(results)
        if args.profile:
            print(f"\n(profiled run: figures are slower than usual; stats in {args.profile})")


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.telegram_turns``: the benchmark, or (``--serve``) its child."""
    args = parse_args(argv)
    if args.serve:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
        try:
            asyncio.run(
                serve_child(
                    args.serve,
                    args.database_url or "",
                    args.base_url,
                    args.webhook_port,
                    wipe=not args.keep_database,
                )
            )
        except Exception as error:  # the parent reports that we stopped; say why, briefly
            print(f"bench service ({args.serve}): {type(error).__name__}: {error}", file=sys.stderr)
            sys.exit(1)
        return
    try:
        asyncio.run(bench(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; the service was stopped and temporary files removed")
        sys.exit(130)
