"""Backup and restore with PostgreSQL's own tools, as deploy/README.md says to do it: a
database holding cases is dumped with ``pg_dump``, restored into an empty database with
``pg_restore``, and the service carries on there with every case."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.encryption import new_key
from tests.conftest import POSTGRES_URL, _reset_postgres
from tests.support.cli import helpline
from tests.support.conversations import PROFESSIONAL_TO_REVIEW

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="HELPLINE_TEST_POSTGRES_URL not set"),
    pytest.mark.skipif(not shutil.which("pg_dump"), reason="pg_dump is not installed"),
]


def libpq(url: str) -> list[str]:
    """``-h -p -U -d`` for PostgreSQL's command-line tools, from a SQLAlchemy URL."""
    parsed = make_url(url)
    return [
        "-h",
        parsed.host or "127.0.0.1",
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "postgres",
        "-d",
        parsed.database or "",
    ]


def run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


async def test_backup_dump_restored_into_an_empty_database_carries_on_with_every_case(
    tmp_path: Path,
) -> None:
    assert POSTGRES_URL
    source = POSTGRES_URL
    target_url = make_url(source).set(database=f"{make_url(source).database}_restore")
    target = target_url.render_as_string(hide_password=False)
    await _reset_postgres(source)
    # On PostgreSQL the key is given, as in production: a restore needs the same key.
    key = new_key()
    env = {"HELPLINE_DATABASE_URL": source, "HELPLINE_DATA_KEY": key}
    for _ in range(2):
        lines = "\n".join([*PROFESSIONAL_TO_REVIEW[1:], "submit"]) + "\n"
        chat = helpline("chat", "--json", "--session", f"s{_}", cwd=tmp_path, stdin=lines, env=env)
        assert chat.returncode == 0, chat.stderr
    listed = json.loads(helpline("cases", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert len(listed) == 2
    first = listed[0]["reference"]
    assert helpline("cases", "claim", first, "--as", "sam", cwd=tmp_path, env=env).returncode == 0
    before = helpline("cases", "list", cwd=tmp_path, env=env).stdout
    shown = json.loads(helpline("cases", "show", first, "--json", cwd=tmp_path, env=env).stdout)
    linked = helpline("cases", "linked", first, "--json", cwd=tmp_path, env=env).stdout

    dump = tmp_path / "helpline.dump"
    run("pg_dump", *libpq(source), "--format=custom", f"--file={dump}")
    admin = [*libpq(source)[:-2], "-d", "postgres"]
    run("psql", *admin, "-c", f'DROP DATABASE IF EXISTS "{target_url.database}"')
    run("psql", *admin, "-c", f'CREATE DATABASE "{target_url.database}"')
    run("pg_restore", *libpq(target), "--no-owner", "--exit-on-error", str(dump))

    env = {"HELPLINE_DATABASE_URL": target, "HELPLINE_DATA_KEY": key}
    assert helpline("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert helpline("cases", "list", cwd=tmp_path, env=env).stdout == before
    again = json.loads(helpline("cases", "show", first, "--json", cwd=tmp_path, env=env).stdout)
    assert again == shown and again["transcript"] and again["actions"][0]["action"] == "claim"
    assert helpline("cases", "linked", first, "--json", cwd=tmp_path, env=env).stdout == linked
    assert json.loads(linked)  # the two cases report the same account: still linked
    # ... and the restored desk carries on: the case can be resolved there.
    resolved = helpline(
        "cases", "resolve", first, "--outcome", "advice", "--as", "sam", cwd=tmp_path, env=env
    )
    assert resolved.returncode == 0, resolved.stderr
    after = json.loads(helpline("cases", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert {c["reference"]: c["status"] for c in after}[first] == "resolved"
    run("psql", *admin, "-c", f'DROP DATABASE "{target_url.database}"')
