"""The terminal chat: play an enquirer from a shell, by hand or with piped input.

Options are numbered; answer by number, label or id (several, comma-separated, for a
multiple choice). ``--json`` prints one JSON object per bot message for scripts.
End of input ends the session; progress is saved and the next run resumes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from bot.cli.base import Commands, needs_core
from bot.services.intake import Handled, IntakeService
from bot.settings import Settings
from bot.text import normalise
from flows.messages import Command, Inbound, Reply

if TYPE_CHECKING:
    from bot.core import Core

CHANNEL = "terminal"
MAX_LINE = 20_000


def render_text(reply: Reply) -> str:
    """A reply as plain text with numbered options."""
    lines = [reply.text]
    for number, option in enumerate(reply.options, start=1):
        tick = ""
        if reply.multiple:
            tick = "[x] " if option.id in reply.selected else "[ ] "
        help_text = f": {option.help}" if option.help else ""
        lines.append(f"  {number}. {tick}{option.label}{help_text}")
    if reply.multiple:
        lines.append("  (type the numbers, separated by commas)")
    return "\n".join(lines)


def render_json(handled: Handled) -> list[str]:
    """One JSON line per reply; the last carries the case when one was created."""
    out = []
    for index, reply in enumerate(handled.replies):
        data = reply.to_json()
        if handled.case and index == len(handled.replies) - 1:
            data["case"] = {"reference": handled.case.reference, "status": handled.case.status}
        out.append(json.dumps(data, ensure_ascii=False))
    return out


async def run_chat(
    intake: IntakeService,
    *,
    session_id: str = "local",
    as_json: bool = False,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    interactive: bool | None = None,
) -> None:
    """Talk to the intake flow over stdin/stdout until end of input."""
    interactive = stdin.isatty() if interactive is None else interactive

    def show(handled: Handled) -> None:
        if as_json:
            for line in render_json(handled):
                print(line, file=stdout)
        else:
            for reply in handled.replies:
                print(render_text(reply) + "\n", file=stdout)
            if handled.case:
                print(f"[case {handled.case.reference}: {handled.case.status}]\n", file=stdout)
        stdout.flush()

    if resumed := await intake.where_we_are(CHANNEL, session_id):
        show(Handled(replies=resumed))
    else:
        show(await intake.handle(CHANNEL, session_id, Inbound.commanded(Command.START)))
    read: Callable[[], str] = stdin.readline
    while True:
        if interactive and not as_json:
            print("> ", end="", file=stdout, flush=True)
        line = await asyncio.to_thread(read)
        if not line:
            return
        text = normalise(line.rstrip("\r\n")[:MAX_LINE])
        if not text.strip():
            continue
        show(await intake.handle(CHANNEL, session_id, Inbound.typed(text)))


async def _chat(core: Core, args: argparse.Namespace) -> int:
    await run_chat(core.intake, session_id=args.session, as_json=args.json)
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``chat [--session NAME] [--json]``."""
    chat = commands.add_parser(
        "chat", help="chat with the intake bot in this terminal (as an enquirer)"
    )
    chat.add_argument("--json", action="store_true", help="one JSON object per bot message")
    chat.add_argument("--session", default="local", help="resume or start this named chat")
    needs_core(chat, _chat)
