"""``helpline db``: database maintenance (retention purge, schema upgrade, data keys)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.base import Commands, needs_core, offline
from bot.services.housekeeping import Housekeeping
from bot.settings import Settings
from storage import db, encryption

if TYPE_CHECKING:
    from bot.core import Core


async def _db_purge(core: Core, args: argparse.Namespace) -> int:
    chores = Housekeeping(
        sessions=core.sessions, clock=core.clock, retention_days=core.settings.retention_days
    )
    purged = await chores.purge_expired()
    print(
        f"Erased personal data from {purged.cases} case(s) and {purged.conversations} idle "
        f"conversation(s) older than {core.settings.retention_days} days."
    )
    return 0


async def _db_rotate_key(core: Core, args: argparse.Namespace) -> int:
    """Re-encrypt with the newest key: the first of HELPLINE_DATA_KEY, or a new key file."""
    path = db.key_file_used(core.settings.database_url, core.settings.data_key_text)
    if path is None:
        return await _reseal(core, None)
    with encryption.key_file_alone(path) as alone:
        if not alone:
            print(SERVICE_RUNNING.format(path=path), file=sys.stderr)
            return 1
        return await _reseal(core, path)


SERVICE_RUNNING = """A helpline service is running with the key file {path}.
Stop it first (helpline run keeps the keys it read when it started), then run this again."""


async def _reseal(core: Core, path: Path | None) -> int:
    """Re-encrypt every value with the newest key (a new one first, for a key file)."""
    if path is not None:
        # Newest first, the old key kept until every value is re-encrypted: a crash
        # half-way leaves a file that still opens everything.
        lines = [encryption.new_key(), *path.read_text(encoding="ascii").split()]
        encryption.write_key_file(path, lines)
        encryption.attach(core.engine.dialect, encryption.DataKeys.parse("\n".join(lines)))
    changed = await db.reseal_all(core.engine)
    current = db.data_keys(core.engine).current_id
    print(f"Re-encrypted {changed} value(s) with key {current}.")
    if path is not None:
        encryption.write_key_file(path, lines[:1])
        print(f"The key file {path} now holds only the new key: back it up again.")
    else:
        print(
            "Every value now opens with the first key: older keys may be removed from "
            "HELPLINE_DATA_KEY."
        )
    return 0


def _db_new_key(settings: Settings, args: argparse.Namespace) -> int:
    print(encryption.new_key())
    return 0


async def _db_upgrade(core: Core, args: argparse.Namespace) -> int:
    print(f"Database schema is at revision {await db.current_revision(core.engine)}.")
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``db purge`` and ``db upgrade`` (every command upgrades first; this only says so)."""
    database = commands.add_parser("db", help="database maintenance")
    actions = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    purge = actions.add_parser(
        "purge", help="erase personal data older than HELPLINE_RETENTION_DAYS (also runs hourly)"
    )
    needs_core(purge, _db_purge)
    needs_core(actions.add_parser("upgrade", help="bring the schema up to date"), _db_upgrade)
    rotate = actions.add_parser(
        "rotate-key",
        help="re-encrypt personal data with the newest key (put it first in HELPLINE_DATA_KEY, "
        "or, with the embedded key file, a new key is made)",
    )
    needs_core(rotate, _db_rotate_key)
    offline(actions.add_parser("new-key", help="print a new data key"), _db_new_key)
