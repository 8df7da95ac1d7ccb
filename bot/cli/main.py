"""The ``helpline`` command: one entry point for the service, the terminal chat and the desk.

Each command group lives in its own module under ``bot/cli/`` and adds itself to the
parser (see :mod:`bot.cli.base`). The settings are read here, once, and handed to the
command that runs; a command that needs the database gets the core opened for it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot import logs
from bot.cli import (
    analysis,
    audit,
    cases,
    chat,
    conversation,
    database,
    hours,
    outbox,
    privacy,
    service,
)
from bot.cli.base import CoreCommand
from bot.settings import Settings

log = logging.getLogger(__name__)
GROUPS = (hours, service, chat, cases, analysis, outbox, database, conversation, audit, privacy)
"""The command modules, in the order ``helpline --help`` lists them."""


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The whole command line (argument types that read times use the helpline's zone)."""
    parser = argparse.ArgumentParser(
        prog="helpline", description="Helpline Intake: chat intake for the online-safety helpline."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands, settings)
    return parser


async def _with_core(command: CoreCommand, args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import open_core  # not imported for offline commands: they start faster

    async with open_core(settings) as core:
        return await command(core, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``helpline`` command; its exit status."""
    try:
        settings = Settings()
    except ValidationError as error:
        names = ", ".join(str(e["loc"][0]) for e in error.errors() if e.get("loc"))
        print(f"Some settings are not valid: {names}. See the README.", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    if hasattr(args, "offline"):
        return int(args.offline(settings, args))
    logs.configure(settings.log_level if args.command != "chat" else "WARNING")
    try:
        return asyncio.run(_with_core(args.with_core, args, settings))
    except KeyboardInterrupt:
        return 130
    except ValueError as error:  # e.g. working hours that cannot be read
        print(f"The settings are not valid: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        log.error("cannot reach the database: %s", logs.kind(error))
        print(
            f"Cannot reach the database ({logs.kind(error)}). Check HELPLINE_DATABASE_URL.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
