"""Shared fixtures: databases (SQLite always, PostgreSQL when HELPLINE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import db


def _worker_url(url: str | None) -> str | None:
    """Each pytest-xdist worker gets a database of its own (``test_gw0``…), so tests
    running side by side never wipe each other's schema or share an advisory lock."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(False)


BASE_POSTGRES_URL = os.environ.get("HELPLINE_TEST_POSTGRES_URL")
POSTGRES_URL = _worker_url(BASE_POSTGRES_URL)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The worker's own PostgreSQL database, created once if it is missing."""
    if POSTGRES_URL and POSTGRES_URL != BASE_POSTGRES_URL:
        assert BASE_POSTGRES_URL
        asyncio.run(_create_database(BASE_POSTGRES_URL, make_url(POSTGRES_URL).database or ""))


async def _create_database(base_url: str, name: str) -> None:
    engine = db.create_engine(base_url)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not found:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection to a host other than this machine fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried to reach {host}: only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


async def _reset_postgres(url: str) -> None:
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def _database_params() -> list[object]:
    pg = pytest.param(
        "postgres",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="HELPLINE_TEST_POSTGRES_URL not set"),
    )
    return ["sqlite", pg]


@pytest.fixture(params=_database_params())
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL: a SQLite file, or a clean PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
        return
    assert POSTGRES_URL
    await _reset_postgres(POSTGRES_URL)
    yield POSTGRES_URL


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.session_factory(engine)
