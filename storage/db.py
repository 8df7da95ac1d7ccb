"""Engines, sessions and schema upgrades for SQLite (the default) and PostgreSQL.

SQLite is set up for a service: WAL, a busy timeout, foreign keys, and every
transaction started with ``BEGIN IMMEDIATE`` so two writers queue instead of failing
when both try to upgrade a read lock (but those of :func:`reader_factory`'s sessions,
which only read).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_

from storage import encryption

DEFAULT_URL = "sqlite+aiosqlite:///helpline.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL")
"""Set on every SQLite connection (WAL only for a file database). With WAL, ``synchronous
=NORMAL`` syncs the log at checkpoints rather than at every commit: a commit survives the
service crashing, but the last few may be lost if the machine itself loses power."""


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs and pick the async driver."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
"""The databases this service runs on (a plain ``sqlite://`` or ``postgresql://`` picks these)."""


def supported_url(url: str) -> bool:
    """Whether ``url`` names SQLite or PostgreSQL in a form SQLAlchemy can read."""
    try:
        return make_url(normalise_url(url)).drivername in DRIVERS
    except exc.ArgumentError:
        return False


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def key_file_for(url: str) -> Path | None:
    """Where the embedded default keeps the data key when HELPLINE_DATA_KEY is not set.

    Beside a SQLite file (``helpline.db`` -> ``helpline.db.key``); for a server database,
    in the user's state directory, one file per server and database (fine for a
    developer; a service on PostgreSQL must be given HELPLINE_DATA_KEY, see the README).
    None for an in-memory database, whose key lives and dies with the process.
    """
    if (path := sqlite_file(url)) is not None:
        return path.with_name(path.name + ".key")
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        return None  # in memory
    place = f"{parsed.host}:{parsed.port}/{parsed.database}".encode()
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "helpline" / f"{hashlib.sha256(place).hexdigest()[:16]}.key"


def key_file_used(url: str, data_key: str | None) -> Path | None:
    """The key file the keys of ``url`` come from: None when ``data_key`` is configured
    (HELPLINE_DATA_KEY) or the database is in memory."""
    return None if data_key and data_key.strip() else key_file_for(url)


def data_keys_for(url: str, data_key: str | None) -> encryption.DataKeys:
    """The keys for ``url``: the configured ones, else the key file (made on first use)."""
    if data_key and data_key.strip():
        return encryption.DataKeys.parse(data_key, source="HELPLINE_DATA_KEY")
    path = key_file_for(url)
    if path is None:
        return encryption.DataKeys.parse(encryption.new_key(), source="memory")
    return encryption.load_key_file(path)


def create_engine(
    url: str = DEFAULT_URL, *, data_key: str | None = None, **kwargs: Any
) -> AsyncEngine:
    """An async engine for ``url`` with the per-dialect settings this service relies on.

    Its sealed columns use ``data_key`` (HELPLINE_DATA_KEY), or the key file of
    :func:`key_file_for` when none is given.
    """
    url = normalise_url(url)
    keys = data_keys_for(url, data_key)
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer anyway, and waiting for the pool queues
        # callers in order instead of leaving them to sleep in SQLite's busy handler.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        # The pool's ROLLBACK on every return stays, though every transaction here ends
        # itself: a caller cancelled while aiosqlite's thread still had its BEGIN queued
        # (waiting for the lock) leaves a transaction opening after the connection came
        # back, and only a ROLLBACK queued behind it closes it before the next user.
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,  # errors must not quote what enquirers wrote
            **kwargs,
        )
        _configure_sqlite(engine)
    else:
        engine = create_async_engine(url, hide_parameters=True, **kwargs)
        _ping_when_idle(engine)
    encryption.attach(engine.dialect, keys)
    return engine


IDLE_BEFORE_PING_S = 2.0
"""A pooled PostgreSQL connection that sat unused this long is pinged before it is lent."""


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only when it has been idle for a while.

    A connection can die unseen while it waits in the pool (the server restarted, a
    firewall dropped it), so it is pinged before it is lent again, as SQLAlchemy's
    ``pool_pre_ping`` does; but that pings on every checkout, and the asyncpg dialect's
    ping is three round trips (a transaction around an empty query), paid again by every
    message. A connection given back moments ago is used as it is; if it died in that
    moment, the statement fails as a disconnect, the pool is invalidated, and the intake
    service runs the message again on a fresh connection (``IntakeService``).
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool drops it and connects afresh
            raise exc.DisconnectionError("a pooled connection did not answer its ping") from error


def data_keys(engine: AsyncEngine) -> encryption.DataKeys:
    """The keys ``engine`` seals and opens personal fields with."""
    return encryption.keys_of(engine.dialect)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        pragmas = SQLITE_PRAGMAS
        if ":memory:" in str(engine.url) or not engine.url.database:
            pragmas = tuple(p for p in pragmas if not p.startswith("journal_mode"))
        for pragma in (*pragmas, f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight on the aiosqlite connection: one crossing to its thread, where a Core
        # statement takes three and its execution machinery (a third of an empty
        # transaction's cost). Its errors are SQLAlchemy's, as Core's would be.
        driver: Any = connection.connection.driver_connection
        if driver.in_transaction:  # begun on the driver (``storage.prepared.transaction``)
            return
        begin = "BEGIN" if connection.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
        try:
            await_(driver.execute_fetchall(begin))
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(
                begin, None, error, sqlite3.Error, hide_parameters=True
            ) from error


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """One session per unit of work; objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


READ_ONLY = "helpline_read_only"
"""The execution option :func:`reader_factory` sets (read by SQLite's begin hook)."""


def reader_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for work that only reads (reports, listings, exports, health, metrics).

    On SQLite their transactions begin ``DEFERRED``: WAL lets them read beside the one
    writer, so a long ``helpline report`` in another process never holds the write lock
    that the service's turns wait for (``BEGIN IMMEDIATE`` takes it at once). They must
    not write: a read transaction that tries to would fail if another process was writing.
    On PostgreSQL they are ordinary sessions."""
    return session_factory(engine.execution_options(**{READ_ONLY: True}))


def _alembic_config() -> Config:
    migrations = resources.files("storage").joinpath("migrations")
    config = Config()
    config.set_main_option("script_location", str(Path(str(migrations))))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; safe on every start)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at (None when it has no schema at all)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def head_revision() -> str | None:
    """The revision this code's migrations end at: what a working database is at."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def single_process(engine: AsyncEngine) -> bool:
    """Whether only one service process can use this database (a SQLite file)."""
    return engine.dialect.name == "sqlite"


async def ping(engine: AsyncEngine) -> bool:
    """Whether the database answers (for health checks)."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def reseal_all(engine: AsyncEngine) -> int:
    """Re-encrypt every personal field with the engine's current key, and recompute the
    blind indexes (``helpline db rotate-key``); how many values were re-encrypted."""
    from storage.models import Base

    keys = data_keys(engine)
    tables = encryption.sealed_columns(Base.metadata.sorted_tables)

    def run(connection: Connection) -> int:
        changed = encryption.reseal(connection, keys, tables)
        encryption.reindex(connection, keys)
        return changed

    async with engine.begin() as connection:
        return await connection.run_sync(run)
