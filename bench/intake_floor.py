"""Benchmark: our intake transaction alone, beside the floor under it (the driver by itself).

Run::

    python -m bench.intake_floor [--conversations 150] [--database sqlite|postgres|both]

No Telegram, no HTTP: ``IntakeService.handle`` is called directly with the same 18 turns as
``bench.telegram_turns`` (``bench.enquiry``; buttons pressed by their option ids), one at a
time, so the figures are the cost of one message's transaction plus the flow step. Beside it, the
PostgreSQL floor: the same five statements (dedupe insert, the conversation row locked,
two transcript rows, the conversation saved) and a commit, sent straight through asyncpg
with no SQLAlchemy and no flow. What is left between the two is ours to shave; the floor
is what any design with a durable per-message commit pays on this machine.

It prints CPU per message (this process, all threads) and wall-time p50/p99. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import prepare_postgres  # noqa: E402
from bench.enquiry import confirmation_mark, script  # noqa: E402
from bench.telegram_turns.figures import percentile  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_floor"
WARM_UP = 10  # conversations not counted


async def ours(url: str, conversations: int) -> tuple[float, list[float]]:
    """CPU seconds per message and each message's wall time, through IntakeService."""
    from bot.core import open_core
    from bot.settings import Settings

    settings = Settings(database_url=url, _env_file=None)
    async with open_core(settings) as core:
        times: list[float] = []
        cpu = 0.0
        for chat in range(conversations + WARM_UP):
            if chat == WARM_UP:
                times, cpu = [], time.process_time()
            for n, turn in enumerate(script()):
                start = time.perf_counter()
                handled = await core.intake.handle(
                    "bench", str(chat), turn.inbound(), dedupe=("bench", f"{chat}:{n}")
                )
                times.append(time.perf_counter() - start)
            if not any(confirmation_mark() in r.text for r in handled.replies):
                raise RuntimeError("a conversation did not end in a case")
        return (time.process_time() - cpu) / len(times), times


async def floor(url: str, messages: int) -> tuple[float, list[float]]:
    """The same statements straight through asyncpg: CPU per message and wall times."""
    import asyncpg

    from storage.db import normalise_url

    dsn = normalise_url(url).replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    state = '{"step": "role_group", "answers": {}}'
    now = datetime.now(UTC)
    try:
        row_id = await connection.fetchval(
            "INSERT INTO conversations (channel, chat_id, state, updated_at) "
            "VALUES ('floor', '1', $1, $2) RETURNING id",
            state,
            now,
        )
        times: list[float] = []
        cpu = time.process_time()
        for n in range(messages):
            start = time.perf_counter()
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO processed_updates (source, key, at) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    "floor",
                    str(n),
                    now,
                )
                row = await connection.fetchrow(
                    "SELECT id, state FROM conversations WHERE channel = $1 AND chat_id = $2 "
                    "FOR UPDATE",
                    "floor",
                    "1",
                )
                await connection.executemany(
                    "INSERT INTO transcript (conversation_id, case_id, at, sender, text, kind) "
                    "VALUES ($1, NULL, $2, $3, $4, 'text')",
                    [(row_id, now, "enquirer", "Teacher"), (row_id, now, "bot", "Which setting?")],
                )
                await connection.execute(
                    "UPDATE conversations SET state = $1, updated_at = $2 WHERE id = $3",
                    row["state"],
                    now,
                    row_id,
                )
            times.append(time.perf_counter() - start)
        return (time.process_time() - cpu) / messages, times
    finally:
        await connection.close()


def line(label: str, cpu_s: float, times: list[float]) -> str:
    """One measured row: CPU per message and wall-time percentiles."""
    ms = [t * 1000 for t in times]
    return (
        f"  {label:<44} CPU {cpu_s * 1000:5.2f} ms/message   "
        f"wall p50 {percentile(ms, 50):5.2f} ms   p99 {percentile(ms, 99):6.2f} ms"
    )


async def bench(args: argparse.Namespace) -> None:
    """Ours on each store asked for, and the PostgreSQL floor."""
    from bot import logs

    logs.configure("WARNING")
    print("helpline-intake: the intake transaction alone, and the floor under it")
    print(f"  {args.conversations} conversations × {len(script())} messages, one at a time")
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="helpline-floor-") as tmp:
            cpu, times = await ours(f"sqlite+aiosqlite:///{tmp}/floor.db", args.conversations)
        print(line("ours, SQLite (IntakeService.handle)", cpu, times))
    if args.database in ("postgres", "both"):
        await prepare_postgres(args.postgres_url)
        cpu, times = await ours(args.postgres_url, args.conversations)
        print(line("ours, PostgreSQL (IntakeService.handle)", cpu, times))
        cpu, times = await floor(args.postgres_url, len(times))
        print(line("floor, PostgreSQL (asyncpg, same statements)", cpu, times))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake_floor",
        description="Our intake transaction alone, beside asyncpg running the same statements.",
    )
    parser.add_argument("--conversations", type=int, default=150)
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "both"), default="both", help="our store"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.intake_floor``."""
    asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    main()
