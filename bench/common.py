"""What the benchmarks share: a throwaway database to run against."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import normalise_url


def postgres_url(bench: str) -> str:
    """The PostgreSQL database of bench ``bench``: its own (``bench_<name>``, wiped at each
    run), on the server ``HELPLINE_BENCH_POSTGRES_URL`` names (this machine's by default)."""
    server = os.environ.get(
        "HELPLINE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"
    )
    return make_url(server).set(database=f"bench_{bench}").render_as_string(hide_password=False)


async def prepare_postgres(url: str) -> None:
    """Create the bench database if missing, then wipe its public schema."""
    target = make_url(normalise_url(url))
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("select 1 from pg_database where datname = :name"),
                {"name": target.database},
            )
            if not exists:
                await conn.execute(text(f'create database "{target.database}"'))
    finally:
        await admin.dispose()
    engine = create_async_engine(target)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def database(kind: str, postgres_url: str, prefix: str) -> AsyncIterator[str]:
    """A wiped PostgreSQL database, or a SQLite file in a temporary directory."""
    if kind == "postgres":
        await prepare_postgres(postgres_url)
        yield postgres_url
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield f"sqlite+aiosqlite:///{tmp}/bench.db"


def _backend_ticks(name: str) -> dict[int, int]:
    """CPU clock ticks used so far by each PostgreSQL backend serving database ``name``
    (Linux: a backend's title names its database)."""
    found: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().split()
            if title[:1] != ["postgres:"]:
                continue
            words = title[2:] if title[1:2] and title[1].endswith(":") else title[1:]
            if words[1:2] != [name]:  # "postgres: [cluster:] user database host state"
                continue
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except (OSError, UnicodeDecodeError):
            continue  # gone meanwhile, or not ours to read
        found[int(proc.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    return found


class ServerCPU:
    """CPU seconds the PostgreSQL backends serving ``url``'s database use during a block
    (0 for SQLite, whose work is done inside the service process).

    Sampled every ``every`` seconds, so backends that open and close meanwhile (a pool's
    overflow connections) count too, all but their last fraction of a sample; the
    server's shared writers (WAL, checkpoints) are not counted. Comparing the stores by
    the service's CPU alone would leave PostgreSQL's share out.
    """

    def __init__(self, url: str, every: float = 0.1) -> None:
        """Measure the database ``url`` names."""
        self._name = make_url(normalise_url(url)).database if url.startswith("postgres") else None
        self._every = every
        self._start: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def seconds(self) -> float:
        """CPU seconds used by the backends between entering the block and now."""
        ticks = sum(last - self._start.get(pid, 0) for pid, last in self._last.items())
        return ticks / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        if self._name is not None:
            self._last |= _backend_ticks(self._name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            self._sample()

    async def __aenter__(self) -> ServerCPU:
        self._sample()
        self._start = dict(self._last)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()
