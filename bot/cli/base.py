"""What every ``helpline`` command module shares: how a command is declared, and the
few argument types and terminal helpers more than one of them uses.

A command group is a module with ``register(commands, settings)``. A command either
needs the database (:func:`needs_core`: it gets an opened :class:`~bot.core.Core`) or
not (:func:`offline`: it gets the settings). ``main`` reads the settings once and opens
the core once, for the command that runs.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, TypeAlias
from zoneinfo import ZoneInfo

from bot.settings import Settings
from bot.text import for_terminal

if TYPE_CHECKING:
    from bot.core import Core

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``register`` adds its commands to (argparse's own type for it)."""
CoreCommand: TypeAlias = "Callable[[Core, argparse.Namespace], Awaitable[int]]"
OfflineCommand: TypeAlias = Callable[[Settings, argparse.Namespace], int]


def needs_core(parser: argparse.ArgumentParser, command: CoreCommand) -> None:
    """``command`` runs with the database open (schema brought up to date first)."""
    parser.set_defaults(with_core=command)


def disclosed_as(parser: argparse.ArgumentParser) -> None:
    """``--as NAME`` on a command that shows personal data: who the audit trail names
    (your login name if not given; commands that act require it instead)."""
    parser.add_argument(
        "--as",
        dest="actor",
        default=f"cli:{getpass.getuser()}",
        metavar="NAME",
        help="who you are, for the audit trail (default: your login name)",
    )


def offline(parser: argparse.ArgumentParser, command: OfflineCommand) -> None:
    """``command`` runs without the database."""
    parser.set_defaults(offline=command)


def moment_in(zone: str) -> Callable[[str], datetime]:
    """An argument type: an ISO date-time, read in ``zone`` when it names none."""

    def moment(text: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))

    return moment


def day(text: str) -> date:
    """An argument type: a date as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def reference(text: str) -> str:
    """An argument type: a case reference, as typed ("hl-abc123 " is HL-ABC123)."""
    found = text.strip().upper()
    if not found or len(found) > 40 or not found.isprintable() or " " in found:
        raise argparse.ArgumentTypeError("give a case reference, like HL-ABC123")
    return found


def one_line(text: str) -> str:
    """A value for one line of a listing: breaks folded, controls shown, not obeyed."""
    return for_terminal(" ".join(text.splitlines()))
