"""The ``helpline`` command: one entry point for the service, the terminal chat and the desk.

Each command group lives in its own module under ``bot/cli/`` and adds itself to the
parser (see :mod:`bot.cli.base`). The settings are read here, once, and handed to the
command that runs; a command that needs the database gets the core opened for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import AliasChoices, ValidationError

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


def _cut_short() -> int:
    """The output was cut short (``| head``): stop quietly, as Unix tools do."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141


def _env_name(field_name: str) -> str:
    """The environment variable a setting is read from (what the README and users call it)."""
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field is not None else None
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else field_name


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
    from storage.db import key_file_used, sqlite_file
    from storage.encryption import key_file_in_use

    path = sqlite_file(settings.database_url)
    new = path is not None and not path.exists()
    # Like the service, a command keeps the keys it read at start: no rotation meanwhile
    # (the rotation itself takes the key file alone).
    rotating = args.command == "db" and getattr(args, "db_command", "") == "rotate-key"
    key_file = None if rotating else key_file_used(settings.database_url, settings.data_key_text)
    with key_file_in_use(key_file):
        async with open_core(settings) as core:
            if new and args.command not in ("chat", "run", "db", "import"):
                # The default file is found from where the command runs: say so, or a desk
                # command run elsewhere would seem to have lost every case.
                print(
                    f"No database was here, so an empty one was made: {path}. The cases "
                    "are where `helpline chat` or `helpline run` ran (or set "
                    "HELPLINE_DATABASE_URL).",
                    file=sys.stderr,
                )
            return await command(core, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``helpline`` command; its exit status."""
    try:
        settings = Settings()
    except ValidationError as error:
        # Each setting with what is wrong with it, never the value (it can be a secret).
        for problem in error.errors(include_input=False, include_url=False):
            name = _env_name(str(problem["loc"][0]) if problem["loc"] else "")
            said = str(problem["msg"]).removeprefix("Value error, ")
            print(f"The setting {name} is not valid: {said}.", file=sys.stderr)
        print("See the README's Configuration section.", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    if hasattr(args, "offline"):
        try:
            return int(args.offline(settings, args))
        except BrokenPipeError:
            return _cut_short()
        except UnicodeDecodeError:
            print("That input is not text (UTF-8), so it was not read.", file=sys.stderr)
            return 2
    try:
        logs.configure(settings.log_level if args.command != "chat" else "WARNING")
        return asyncio.run(_with_core(args.with_core, args, settings))
    except KeyboardInterrupt:
        return 130
    except ValueError as error:  # e.g. working hours that cannot be read
        print(f"The settings are not valid: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _cut_short()
    except OSError as error:
        if error.filename:  # a file the command was asked to read or write
            print(f"Cannot use {error.filename}: {error.strerror}.", file=sys.stderr)
            return 2
        log.error("cannot reach the database: %s", logs.kind(error))
        print(
            f"Cannot reach the database ({logs.kind(error)}). Check HELPLINE_DATABASE_URL.",
            file=sys.stderr,
        )
        return 2
    except Exception as error:  # never a traceback for the user; the kind says what it was
        log.debug("the command failed", exc_info=error)
        print(
            f"The command failed ({logs.kind(error)}). If it was the database, check "
            "HELPLINE_DATABASE_URL; otherwise run again with HELPLINE_LOG_LEVEL=DEBUG.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
