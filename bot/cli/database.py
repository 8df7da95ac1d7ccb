"""``helpline db``: database maintenance (retention purge, schema upgrade)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.cli.base import Commands, needs_core
from bot.services.housekeeping import Housekeeping
from bot.settings import Settings
from storage import db

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
