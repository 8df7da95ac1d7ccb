"""What the benchmarks share: a throwaway database to run against."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator

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
