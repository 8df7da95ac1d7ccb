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
from datetime import UTC, date, datetime
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
        if parsed.tzinfo:
            return parsed
        first, second = (parsed.replace(tzinfo=ZoneInfo(zone), fold=f) for f in (0, 1))
        if first.astimezone(UTC).astimezone(first.tzinfo).replace(tzinfo=None) != parsed:
            raise argparse.ArgumentTypeError(
                f"{text} does not exist in {zone} (the clocks go forward then): "
                "give a time before or after the hour they skip"
            )
        if first.utcoffset() != second.utcoffset():
            raise argparse.ArgumentTypeError(
                f"{text} happens twice in {zone} (the clocks go back then): add the offset, "
                f"{_offset(first)} for the first time or {_offset(second)} for the second"
            )
        return first

    return moment


def _offset(moment: datetime) -> str:
    """``moment``'s UTC offset as ISO writes it after a time: +01:00."""
    return moment.isoformat()[-6:]


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
