"""What a database dump without the data key would show: every row as text, or the bytes
of a SQLite database's files. Tests look in them for what enquirers wrote."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine


async def dump(engine: AsyncEngine) -> str:
    """Every row of every table as text, as a database dump would show them."""
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: inspect(c).get_table_names())
        rows = []
        for name in names:
            result = await connection.execute(text(f'SELECT * FROM "{name}"'))
            rows += [repr(tuple(row)) for row in result]
    return "\n".join(rows)


def sqlite_files(path: Path) -> bytes:
    """The bytes of a SQLite database and its journal files (dispose its engine first: the
    last connection closing checkpoints the WAL into the file)."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
