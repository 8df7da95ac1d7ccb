"""The ``helpline`` command run as a user runs it: a real process in a directory of its own.

A test whose service runs in its own event loop must not wait for a command by blocking
that loop: a service task caught inside a transaction would keep it open, and on SQLite
its write lock, until the command had given up waiting for it ("database is locked").
Such tests await :func:`helpline_async`; :func:`helpline` refuses to run beside them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT


def command_line(*args: str, env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The command and environment of ``helpline ARGS``: a clean database setting (plus ``env``)."""
    environment = {k: v for k, v in os.environ.items() if k != "HELPLINE_DATABASE_URL"}
    environment.update(env or {})
    return [sys.executable, "-m", "bot.cli.main", *args], {**environment, "PYTHONPATH": str(ROOT)}


def helpline(
    *args: str, cwd: Path, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command in ``cwd`` and wait for it (never beside tasks of this event loop)."""
    _refuse_to_block_other_tasks()
    argv, environment = command_line(*args, env=env)
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=60,
    )


async def helpline_async(
    *args: str, cwd: Path, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """:func:`helpline` awaited: a service sharing this event loop carries on meanwhile."""
    return await asyncio.to_thread(helpline, *args, cwd=cwd, stdin=stdin, env=env)


def _refuse_to_block_other_tasks() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # a plain test, or helpline_async's thread
    others = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task(loop)]
    if others:
        raise AssertionError(
            f"helpline() would freeze {len(others)} other task(s) of this event loop (a service "
            "running in the test?) while the command runs: await helpline_async() instead"
        )
