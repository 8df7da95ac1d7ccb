"""The ``helpline`` command run as a user runs it: a real process in a directory of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT


def helpline(
    *args: str, cwd: Path, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command in ``cwd`` with a clean database setting (plus ``env``)."""
    environment = {k: v for k, v in os.environ.items() if k != "HELPLINE_DATABASE_URL"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
