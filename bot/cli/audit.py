"""``helpline audit``: who looked at or acted on which case, when, through what."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.cli.base import Commands, day, needs_core, one_line
from bot.settings import Settings
from storage import audit as audit_store

if TYPE_CHECKING:
    from bot.core import Core


async def _audit(core: Core, args: argparse.Namespace) -> int:
    since = (
        datetime.combine(args.since, time(), tzinfo=ZoneInfo(core.settings.timezone))
        if args.since
        else None
    )
    async with core.readers() as session:
        found = await audit_store.entries(
            session, case_reference=args.case, actor=args.by, since=since
        )
        rows = [audit_store.entry_to_dict(e) for e in found]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No audit entries match.")
        return 0
    for row in rows:
        print(
            f"{(row['at'] or '')[:19].replace('T', ' ')}  {one_line(row['actor'] or '-'):<20} "
            f"{row['action']:<22} {row['case'] or '-':<10} {row['channel']}"
        )
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``audit [--case REF] [--by NAME] [--since DATE] [--json]``."""
    audit = commands.add_parser("audit", help="the audit trail of actions and disclosures")
    audit.add_argument("--case", metavar="REF")
    audit.add_argument("--by", metavar="NAME")
    audit.add_argument("--since", type=day, metavar="YYYY-MM-DD")
    audit.add_argument("--json", action="store_true")
    needs_core(audit, _audit)
