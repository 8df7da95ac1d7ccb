"""Benchmark: our intake transaction alone, beside the floor under it (the driver by itself).

Run::

    python -m bench.intake_floor [--conversations 150] [--database sqlite|postgres|both]

No Telegram, no HTTP: ``IntakeService.handle`` is called directly with the same 18 turns as
``bench.telegram_turns`` (``bench.enquiry``; buttons pressed by their option ids), one at a
time, so the figures are the cost of one message's transaction plus the flow step. The flow
step is also measured alone (``IntakeService.step`` over the same turns, no database), so
the transaction's own share is the difference. Beside it, the floor: the same statements
(dedupe insert, the conversation row read (locked on PostgreSQL), two transcript rows, the
conversation saved) and a commit, sent straight through the driver (asyncpg, or aiosqlite
with our SQLite settings) with no SQLAlchemy and no flow. What is left between the two is
ours to shave; the floor is what any design with a durable per-message commit pays on this
machine. (The floor's values are not sealed; ours are, see ``storage.encryption``.)

It prints CPU per message (this process, all threads) and wall-time p50/p99. Nothing is
asserted. ``bench.ratios`` uses these functions for its ratio (b).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import postgres_url, prepare_postgres  # noqa: E402
from bench.enquiry import confirmation_mark, script  # noqa: E402
from bench.telegram_turns.figures import percentile  # noqa: E402

DEFAULT_POSTGRES_URL = postgres_url("floor")
WARM_UP = 10  # conversations not counted


@dataclass(frozen=True)
class PerMessage:
    """CPU seconds per message: over every message, and over the ordinary ones (all but
    the last turn of each conversation, which files the case: the floor's statements)."""

    every: float
    ordinary: float


class _Tally:
    """Adds up each message's CPU time (this process's), the case-filing turn apart."""

    def __init__(self) -> None:
        self.every: list[float] = []
        self.ordinary: list[float] = []

    def add(self, cpu_s: float, *, files_the_case: bool) -> None:
        self.every.append(cpu_s)
        if not files_the_case:
            self.ordinary.append(cpu_s)

    def per_message(self) -> PerMessage:
        return PerMessage(
            sum(self.every) / len(self.every), sum(self.ordinary) / len(self.ordinary)
        )


async def ours(url: str, conversations: int) -> tuple[PerMessage, list[float]]:
    """CPU seconds per message and each message's wall time, through IntakeService."""
    from bot.core import open_core
    from bot.settings import Settings

    settings = Settings(database_url=url, _env_file=None)
    turns = script()
    async with open_core(settings) as core:
        times: list[float] = []
        tally = _Tally()
        for chat in range(conversations + WARM_UP):
            if chat == WARM_UP:
                times, tally = [], _Tally()
            for n, turn in enumerate(turns):
                start, cpu = time.perf_counter(), time.process_time()
                handled = await core.intake.handle(
                    "bench", str(chat), turn.inbound(), dedupe=("bench", f"{chat}:{n}")
                )
                tally.add(time.process_time() - cpu, files_the_case=n == len(turns) - 1)
                times.append(time.perf_counter() - start)
            if not any(confirmation_mark() in r.text for r in handled.replies):
                raise RuntimeError("a conversation did not end in a case")
        return tally.per_message(), times


def flow_step(conversations: int) -> PerMessage:
    """CPU seconds per message of the flow step alone (``IntakeService.step``, the state
    restored from and saved to JSON as the store does), over the same turns: the part of
    :func:`ours` that is not the database."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.services.intake import IntakeService
    from flows.conversation import Conversation
    from flows.intake import IntakeFlow
    from storage.db import session_factory

    engine = create_async_engine("sqlite+aiosqlite://")  # never connects: step() does no I/O
    intake = IntakeService(engine=engine, sessions=session_factory(engine), flow=IntakeFlow())
    turns = [turn.inbound() for turn in script()]
    tally = _Tally()
    for chat in range(conversations + WARM_UP):
        if chat == WARM_UP:
            tally = _Tally()
        state: dict[str, object] = {}
        for n, inbound in enumerate(turns):
            cpu = time.process_time()
            stepped = intake.step(Conversation.from_json(state), inbound, datetime.now(UTC))
            state = stepped.result.conversation.to_json()
            tally.add(time.process_time() - cpu, files_the_case=n == len(turns) - 1)
    return tally.per_message()


# The floor's statements, as ours runs them, in each driver's parameter style.
FLOOR_SQL = {
    "postgresql": (
        "INSERT INTO processed_updates (source, key, at) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        "SELECT id, state FROM conversations WHERE channel = $1 AND chat_id = $2 FOR UPDATE",
        "INSERT INTO transcript (conversation_id, case_id, at, sender, text, kind) "
        "VALUES ($1, NULL, $2, $3, $4, 'text')",
        "UPDATE conversations SET state = $1, updated_at = $2 WHERE id = $3",
    ),
    "sqlite": (
        "INSERT INTO processed_updates (source, key, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        "SELECT id, state FROM conversations WHERE channel = ? AND chat_id = ?",
        "INSERT INTO transcript (conversation_id, case_id, at, sender, text, kind) "
        "VALUES (?, NULL, ?, ?, ?, 'text')",
        "UPDATE conversations SET state = ?, updated_at = ? WHERE id = ?",
    ),
}
FLOOR_STATE = '{"step": "role_group", "answers": {}}'
FLOOR_TURNS = (("enquirer", "Teacher"), ("bot", "Which setting?"))


async def floor(url: str, messages: int) -> tuple[float, list[float]]:
    """The same statements straight through asyncpg: CPU per message and wall times."""
    import asyncpg

    from storage.db import normalise_url

    dsn = normalise_url(url).replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    seen, load, add, save = FLOOR_SQL["postgresql"]
    now = datetime.now(UTC)
    try:
        row_id = await connection.fetchval(
            "INSERT INTO conversations (channel, chat_id, state, updated_at) "
            "VALUES ('floor', '1', $1, $2) RETURNING id",
            FLOOR_STATE,
            now,
        )
        times: list[float] = []
        cpu = time.process_time()
        for n in range(messages):
            start = time.perf_counter()
            async with connection.transaction():
                await connection.execute(seen, "floor", str(n), now)
                row = await connection.fetchrow(load, "floor", "1")
                await connection.executemany(add, [(row_id, now, *t) for t in FLOOR_TURNS])
                await connection.execute(save, row["state"], now, row_id)
            times.append(time.perf_counter() - start)
        return (time.process_time() - cpu) / messages, times
    finally:
        await connection.close()


async def floor_sqlite(url: str, messages: int) -> tuple[float, list[float]]:
    """The same statements straight through aiosqlite, with the pragmas and the
    ``BEGIN IMMEDIATE`` our engine uses (``storage.db``): CPU per message and wall times."""
    import aiosqlite
    from sqlalchemy import make_url

    from storage.db import SQLITE_BUSY_TIMEOUT_MS, SQLITE_PRAGMAS, normalise_url

    path = make_url(normalise_url(url)).database or ""
    seen, load, add, save = FLOOR_SQL["sqlite"]
    now = datetime.now(UTC).isoformat()
    async with aiosqlite.connect(path, isolation_level=None) as connection:
        for pragma in (*SQLITE_PRAGMAS, f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"):
            await connection.execute(f"PRAGMA {pragma}")
        cursor = await connection.execute(
            "INSERT INTO conversations (channel, chat_id, state, updated_at) "
            "VALUES ('floor', '1', ?, ?) RETURNING id",
            (FLOOR_STATE, now),
        )
        row_id = (await cursor.fetchone() or (0,))[0]
        await cursor.close()
        times: list[float] = []
        cpu = time.process_time()
        for n in range(messages):
            start = time.perf_counter()
            await connection.execute("BEGIN IMMEDIATE")
            await connection.execute(seen, ("floor", str(n), now))
            async with connection.execute(load, ("floor", "1")) as rows:
                row = await rows.fetchone()
            await connection.executemany(add, [(row_id, now, *t) for t in FLOOR_TURNS])
            await connection.execute(save, (row[1] if row else FLOOR_STATE, now, row_id))
            await connection.execute("COMMIT")
            times.append(time.perf_counter() - start)
        return (time.process_time() - cpu) / messages, times


def line(label: str, cpu: PerMessage | float, times: list[float] | None = None) -> str:
    """One measured row: CPU per message (every one / the ordinary ones) and wall-time
    percentiles."""
    every, ordinary = (cpu.every, cpu.ordinary) if isinstance(cpu, PerMessage) else (cpu, cpu)
    text = f"  {label:<44} CPU {every * 1000:5.2f} / {ordinary * 1000:5.2f} ms"
    if times:
        ms = [t * 1000 for t in times]
        text += f"   wall p50 {percentile(ms, 50):5.2f} ms   p99 {percentile(ms, 99):6.2f} ms"
    return text


async def bench(args: argparse.Namespace) -> None:
    """Ours on each store asked for, and the PostgreSQL floor."""
    from bot import logs

    logs.configure("WARNING")
    print("helpline-intake: the intake transaction alone, and the floor under it")
    print(f"  {args.conversations} conversations × {len(script())} messages, one at a time")
    print("  CPU per message: every message / the ordinary ones (all but the case-filing turn)")
    print(line("the flow step alone (IntakeService.step)", flow_step(args.conversations)))
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="helpline-floor-") as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/floor.db"
            ours_cpu, times = await ours(url, args.conversations)
            print(line("ours, SQLite (IntakeService.handle)", ours_cpu, times))
            floor_cpu, times = await floor_sqlite(url, len(times))
            print(line("floor, SQLite (aiosqlite, same statements)", floor_cpu, times))
    if args.database in ("postgres", "both"):
        await prepare_postgres(args.postgres_url)
        ours_cpu, times = await ours(args.postgres_url, args.conversations)
        print(line("ours, PostgreSQL (IntakeService.handle)", ours_cpu, times))
        floor_cpu, times = await floor(args.postgres_url, len(times))
        print(line("floor, PostgreSQL (asyncpg, same statements)", floor_cpu, times))


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
