"""``helpline understand`` and ``helpline diagram``: looking into the conversation itself."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.cli.base import Commands, offline, one_line
from bot.settings import Settings


def _understand(settings: Settings, args: argparse.Namespace) -> int:
    """What the bot takes from each message: for checking the lexicons, and for tests."""
    from flows.understanding import default_understander

    understander = default_understander()
    messages = [" ".join(args.text)] if args.text else (line.rstrip("\n") for line in sys.stdin)
    for message in messages:
        said = understander.read(message).to_json(understander.taxonomy)
        print(json.dumps(said, ensure_ascii=False) if args.json else _describe(said))
        sys.stdout.flush()
    return 0


def _describe(said: dict[str, Any]) -> str:
    """One line a person can read: each field and what was found for it."""
    yes_no = {True: "yes", False: "no", None: "can't tell"}
    where = said["platform_type"] or "-"
    if said["platform"]:
        where += f" ({said['platform']})"
    parts = [
        f"under 18: {yes_no[said['under_18']]}",
        f"role: {said['enquirer_type'] or '-'}",
        f"setting: {said['setting'] or '-'}",
        f"region: {said['region'] or '-'}",
        f"where: {where}",
        f"about: {', '.join(said['categories']) or '-'}",
        f"risks: {', '.join(said['risks']) or 'none'}",
        f"links: {' '.join(said['links']) or '-'}",
    ]
    return one_line(" | ".join(parts))


def _diagram(settings: Settings, args: argparse.Namespace) -> int:
    from flows.diagram import mermaid

    print(mermaid())
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``understand [TEXT] [--json]`` and ``diagram``."""
    diagram = commands.add_parser(
        "diagram", help="print the conversation's state diagram (Mermaid)"
    )
    offline(diagram, _diagram)
    understand = commands.add_parser(
        "understand", help="show what the bot takes from a message (one per line on stdin)"
    )
    understand.add_argument("text", nargs="*", help="the message (else read stdin, a line each)")
    understand.add_argument("--json", action="store_true", help="one JSON object per message")
    offline(understand, _understand)
