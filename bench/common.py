"""What the benchmarks share: a throwaway database to run against."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import normalise_url


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


def database_cpu_s(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server processes serving ``url``'s database
    (Linux: each backend's title names its database; the server's shared writers are not
    counted); 0 for SQLite or elsewhere.

    SQLite does its work inside the service process, so comparing the two stores by the
    service's CPU alone would leave PostgreSQL's share out.
    """
    if not url.startswith("postgres"):
        return 0.0
    name = make_url(normalise_url(url)).database
    total = 0
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
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")
