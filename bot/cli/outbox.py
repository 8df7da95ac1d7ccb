"""``helpline outbox``: what waits to go to Slack and to enquirers, and sending again."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.cli.base import Commands, needs_core
from bot.settings import Settings
from bot.text import for_terminal
from storage import outbox_status

if TYPE_CHECKING:
    from bot.core import Core


async def _outbox(core: Core, args: argparse.Namespace) -> int:
    """What is waiting to be sent (or was given up), without anything anyone wrote."""
    from bot.core import outbox_kinds

    stuck_after = timedelta(seconds=core.settings.outbox_stuck_seconds)
    now = core.clock()
    async with core.readers() as session:
        summary = await outbox_status.summary(
            session, now, stuck_after, sent=outbox_kinds(core.settings)
        )
        listed = await outbox_status.rows(session, failed=args.failed)
    if args.json:
        data = {
            "pending": summary.pending,
            "stuck": summary.stuck,
            "failed": summary.failed,
            "parked": summary.parked,
            "rows": [_outbox_row(row, now) for row in listed],
        }
        print(json.dumps(data, indent=2))
        return 1 if summary.stuck else 0
    print(
        f"{summary.pending} waiting, {summary.stuck} waiting for more than "
        f"{stuck_after.total_seconds():.0f} s, {summary.failed} given up."
    )
    if summary.parked:
        print(
            f"{summary.parked} for the Slack desk, which is not configured in this "
            "environment: kept, and posted once the service has SLACK_BOT_TOKEN and "
            "SLACK_CHANNEL_ID (run this with the service's settings to see them as it does)."
        )
    for row in listed:
        shown = _outbox_row(row, now)
        print(
            f"  #{shown['id']:<6} {shown['kind']:<17} {shown['case'] or '-':<10} "
            f"{shown['age_seconds']:>8.0f} s old  {shown['attempts']} attempt(s), "
            f"{shown['failures']} failure(s)  {shown['state']}  {shown['last_error'] or ''}"
        )
    if summary.failed and not args.failed:
        print("Given-up rows: helpline outbox --failed; send them again: helpline outbox retry")
    return 1 if summary.stuck else 0


def _outbox_row(row: outbox_status.Listed, now: datetime) -> dict[str, Any]:
    if row.failed_at is not None:
        state = "given up"
    elif row.leased_by:
        state = "sending"
    elif row.available_at > now:
        state = f"retry in {(row.available_at - now).total_seconds():.0f} s"
    else:
        state = "due"
    return {
        "id": row.id,
        "kind": row.kind,
        "case": row.reference,
        "age_seconds": round((now - row.created_at).total_seconds(), 1),
        "attempts": row.attempts,
        "failures": row.failures,
        "state": state,
        "last_error": for_terminal(row.last_error or "") or None,
    }


async def _outbox_retry(core: Core, args: argparse.Namespace) -> int:
    if not args.ids and not args.all:
        print("Name the rows to send again (helpline outbox --failed lists them), or --all.")
        return 2
    async with core.sessions() as session, session.begin():
        count = await outbox_status.retry_failed(
            session, core.clock(), None if args.all else args.ids
        )
    print(f"{count} given-up row(s) will be sent again by the running service.")
    if args.ids and count < len(set(args.ids)):
        print(
            "The others named are not given-up rows (sent already, still waiting, or no "
            "such row): helpline outbox --failed lists those that are.",
            file=sys.stderr,
        )
        return 1
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``outbox [--failed]`` and ``outbox retry``."""
    queue = commands.add_parser("outbox", help="what is waiting to go to Slack and to enquirers")
    queue.add_argument("--failed", action="store_true", help="list the rows given up instead")
    queue.add_argument("--json", action="store_true")
    needs_core(queue, _outbox)
    actions = queue.add_subparsers(dest="outbox_command", metavar="ACTION")
    again = actions.add_parser("retry", help="send given-up rows again")
    again.add_argument("ids", nargs="*", type=int, metavar="ID")
    again.add_argument("--all", action="store_true", help="every given-up row")
    needs_core(again, _outbox_retry)
