"""The few statements every message runs, compiled once and sent straight to the driver.

SQLAlchemy Core caches what it compiles, but each execution still pays for the cache
lookup, an execution context, the type processing set up anew and a result object: about
0.25 ms per statement on the benchmark machine, several times what the driver itself costs
(``python -m bench.intake_floor``). On SQLite its aiosqlite adapter also crosses to the
database thread three or four times per statement, where one crossing does.

A :class:`Prepared` statement is a Core statement compiled by SQLAlchemy once per dialect,
so its SQL, the order of its parameters and the processing of its columns' types (sealing,
UTC datetimes, JSON, booleans) are exactly what Core would run; it is then executed with
none of that per call:

* PostgreSQL: on the asyncpg connection itself once its transaction has begun (asyncpg
  says so); the transaction's first statement goes through the connection's DBAPI adapter
  (``exec_driver_sql``), which begins it as Core would and, if the connection turns out
  to be dead, invalidates the pool as Core would;
* SQLite: on the aiosqlite connection itself, one crossing per statement, inside the
  transaction the connection began with ``BEGIN IMMEDIATE`` (``storage.db``).

Errors the drivers raise are raised as SQLAlchemy's (``DBAPIError`` and its kinds).

Only for statements with plain bound parameters (no ``IN`` lists, nothing rendered at
execution time, no column left to its Python-side default): anything else is refused when
it is first compiled, and runs through Core as usual.

:func:`transaction` is ``engine.begin()`` for the same hot path: it begins and commits on
the driver (one call each), where Core's transaction adds its own bookkeeping and a trip
through the greenlet bridge for each; Core statements and ORM sessions (:func:`session_in`)
run inside it join the driver's transaction as they would join Core's.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]
    fixed: Mapping[str, Any]
    """Values the statement binds itself (literals such as a LIKE pattern)."""


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        raise TypeError("a prepared statement needs a dialect with positional parameters")
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise TypeError("a prepared statement cannot have parameters rendered at execution")
    if compiled.insert_prefetch or compiled.update_prefetch:  # Core would compute these
        raise TypeError("a prepared statement must give a value to every column with a default")
    names = tuple(compiled.positiontup)
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    fixed = {
        name: bind.effective_value
        for name, bind in compiled.binds.items()
        if name in names and not bind.required
    }
    # What comes back: the selected columns, or what an INSERT/UPDATE/DELETE returns
    # (including the primary key a dialect returns by itself).
    dml = compiled.isinsert or compiled.isupdate or compiled.isdelete
    selected = getattr(statement, "selected_columns", ())
    columns = (compiled.effective_returning or ()) if dml else selected
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return _Compiled(compiled.string, names, binds, results, fixed)


class Prepared:
    """A Core statement (or one per dialect) run at the driver's cost (module docstring)."""

    def __init__(self, statement: ClauseElement | Mapping[str, ClauseElement]) -> None:
        """``statement``, or ``{dialect name: statement}`` where the dialects differ."""
        self._statements = statement
        # By engine (its dialect), not by dialect name: each engine's dialect carries the
        # keys its sealed columns use, and the processors compiled for it use those.
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect)
        if found is None:
            statement = self._statements
            if isinstance(statement, Mapping):
                statement = statement[dialect.name]
            found = self._compiled[dialect] = _compile(statement, dialect)
        return found

    @staticmethod
    def _bound(compiled: _Compiled, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = (
            params[name] if name in params or name not in compiled.fixed else compiled.fixed[name]
            for name in compiled.names
        )
        return tuple(
            value if process is None else process(value)
            for value, process in zip(values, compiled.binds, strict=True)
        )

    async def rows(self, connection: AsyncConnection, params: Mapping[str, Any]) -> list[Row]:
        """Run it once; the rows it returns (none for a statement without RETURNING)."""
        compiled = self._for(connection.dialect)
        bound = self._bound(compiled, params)
        if connection.dialect.name == "sqlite":
            raw = await _sqlite(connection, compiled, lambda db: db.execute_fetchall, bound)
        else:
            raw = await _postgres(connection, compiled, bound, many=False)
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, compiled.results, strict=True)
            )
            for row in raw or ()
        ]

    async def many(self, connection: AsyncConnection, params: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per parameter set, in one call to the driver (no rows returned)."""
        if not params:
            return
        compiled = self._for(connection.dialect)
        bound = [self._bound(compiled, p) for p in params]
        if connection.dialect.name == "sqlite":
            await _sqlite(connection, compiled, lambda db: db.executemany, bound)
        else:
            await _postgres(connection, compiled, bound, many=True)


async def _driver(connection: AsyncConnection) -> Any:
    """The driver's own connection under ``connection`` (asyncpg's, aiosqlite's).

    A connection in use holds it already: reading it then needs no trip through the
    greenlet that ``get_raw_connection`` takes (which would also reconnect one that was
    invalidated)."""
    sync = connection.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection.driver_connection
    return (await connection.get_raw_connection()).driver_connection


async def _postgres(
    connection: AsyncConnection, compiled: _Compiled, bound: Any, *, many: bool
) -> Sequence[Sequence[Any]]:
    """On the asyncpg connection, once the adapter has begun the transaction."""
    driver = await _driver(connection)
    if driver is None or not driver.is_in_transaction():
        result = await connection.exec_driver_sql(compiled.sql, bound)
        return result.all() if result.returns_rows else []
    try:
        if many:
            await driver.executemany(compiled.sql, bound)
            return []
        return list(await driver.fetch(compiled.sql, *bound))
    except Exception as error:  # asyncpg's own errors, as SQLAlchemy's
        raise await _as_sqlalchemys(connection, compiled.sql, error) from error


async def _sqlite(
    connection: AsyncConnection,
    compiled: _Compiled,
    method: Callable[[Any], Callable[[str, Any], Any]],
    bound: Any,
) -> Any:
    """Run on the aiosqlite connection, in a transaction as Core would (it begins one)."""
    driver = await _driver(connection)
    if not driver.in_transaction:  # neither Core's nor :func:`transaction`'s
        await connection.begin()
    try:
        return await method(driver)(compiled.sql, bound)
    except sqlite3.Error as error:
        raise DBAPIError.instance(
            compiled.sql, None, error, sqlite3.Error, hide_parameters=True
        ) from error


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction begun on the driver, committed when the block ends
    and rolled back if it raises, as ``engine.begin()`` would (module docstring).

    SQLite's begins ``IMMEDIATE`` as the engine's own do (``storage.db``). On PostgreSQL
    it is begun through SQLAlchemy's asyncpg adapter, with the adapter's settings, so the
    adapter knows it: a Core statement joins it rather than beginning another, and the
    rollback on the way back to the pool ends it. A dead connection fails as Core's
    would (``connection_invalidated``, the pool's older connections renewed).
    """
    async with engine.connect() as connection:
        driver = await _driver(connection)
        if connection.dialect.name == "sqlite":
            await _on_sqlite(driver, "BEGIN IMMEDIATE")
        else:
            try:
                await _adapter(connection)._start_transaction()
            except Exception as error:
                raise await _as_sqlalchemys(connection, "BEGIN", error) from error
        try:
            yield connection
        except BaseException:
            # Core rolls back its own when the connection closes, the asyncpg adapter its
            # transaction on the way back to the pool; SQLite's pool does not (storage.db).
            sqlite = connection.dialect.name == "sqlite"
            if sqlite and not connection.in_transaction() and driver.in_transaction:
                await _on_sqlite(driver, "ROLLBACK")
            raise
        if connection.in_transaction():  # Core joined (a statement, a session): it commits
            await connection.commit()
        elif connection.dialect.name == "sqlite":
            await _on_sqlite(driver, "COMMIT")
        else:
            adapter = _adapter(connection)
            try:
                await adapter._call_and_discard(adapter._transaction.commit)
            except Exception as error:
                raise await _as_sqlalchemys(connection, "COMMIT", error) from error


@asynccontextmanager
async def session_in(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """An ORM session inside the connection's transaction (:func:`transaction`'s too),
    which its end neither commits nor rolls back: the transaction's owner does.

    A session given a connection that Core thinks has no transaction would begin one
    and roll it back when it closed, and with it the driver's, the turn's statements
    too; so Core is told of the transaction first (no statement: ``storage.db`` skips
    the ``BEGIN`` on SQLite, and the asyncpg adapter already holds it).
    """
    if not connection.in_transaction():
        await connection.begin()
    async with AsyncSession(bind=connection, expire_on_commit=False) as session:
        yield session


def _adapter(connection: AsyncConnection) -> Any:
    """SQLAlchemy's DBAPI adapter around the driver's connection (its transaction's keeper)."""
    sync = connection.sync_connection
    assert sync is not None
    return sync.connection.dbapi_connection


async def _on_sqlite(driver: Any, sql: str) -> None:
    try:
        await driver.execute_fetchall(sql)
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, None, error, sqlite3.Error, hide_parameters=True) from error


async def _as_sqlalchemys(connection: AsyncConnection, sql: str, error: Exception) -> DBAPIError:
    """An asyncpg error as Core would raise it: translated by the adapter (a foreign key
    or unique violation is an ``IntegrityError``) and, if the connection died, with the
    connection invalidated and the pool's older ones renewed, as Core does."""
    adapter = _adapter(connection)
    try:
        adapter._handle_exception(error)  # raises the DBAPI-style error it maps to
    except Exception as translated:
        error = translated
    dialect = connection.dialect
    dead = bool(dialect.is_disconnect(error, adapter, None))  # type: ignore[arg-type]
    if dead:
        sync = connection.sync_connection
        assert sync is not None
        sync.engine.pool._invalidate(sync.connection, error, _checkin=False)
        await connection.invalidate(error)
    wrapped = DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=dead,
        dialect=dialect,
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped
