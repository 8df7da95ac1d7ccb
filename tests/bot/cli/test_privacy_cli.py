"""``helpline privacy`` and ``helpline audit`` as a DPO runs them: real processes, JSON out,
on SQLite and PostgreSQL, with cases that arrived through the Telegram intake."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core import open_core
from bot.services.housekeeping import Housekeeping
from bot.settings import Settings
from storage.encryption import key_file_alone
from tests.support import intake
from tests.support.cli import command_line, helpline
from tests.support.telegram import free_port

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"

CHAT = "424242"
EMAIL = "dsl@school.example.org.uk"
WORDS = ("insulting", "Sam Jones", "fake_school_account", "Fake TikTok account")


async def submit(url: str, chat: str = CHAT, data_key: str | None = None) -> str:
    return await intake.submit(url, chat, data_key)


def run(url: str, cwd: Path, *args: str) -> str:
    result = helpline(*args, cwd=cwd, env={"HELPLINE_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_json(url: str, cwd: Path, *args: str) -> Any:
    return json.loads(run(url, cwd, *args, "--json"))


async def test_privacy_find_lists_the_records_by_every_identifier(
    database_url: str, tmp_path: Path
) -> None:
    url = database_url
    reference = await submit(url)
    other = await submit(url, chat="999")
    by_chat = run_json(url, tmp_path, "privacy", "find", "--telegram-user", CHAT)
    assert by_chat == {"cases": [reference], "conversations": 1, "messages": by_chat["messages"]}
    assert by_chat["messages"] > 10
    by_email = run_json(url, tmp_path, "privacy", "find", "--email", EMAIL.upper())
    assert by_email["cases"] == sorted([reference, other], key=[reference, other].index)
    by_reference = run_json(url, tmp_path, "privacy", "find", "--reference", reference.lower())
    assert by_reference["cases"] == [reference]
    nobody = run_json(url, tmp_path, "privacy", "find", "--phone", "07700 900123")
    assert nobody == {"cases": [], "conversations": 0, "messages": 0}


async def test_privacy_export_writes_a_readable_bundle_and_records_the_request(
    database_url: str, tmp_path: Path
) -> None:
    url = database_url
    reference = await submit(url)
    out = tmp_path / "sar"
    said = run(
        url,
        tmp_path,
        "privacy",
        "export",
        "--telegram-user",
        CHAT,
        "--out",
        str(out),
        "--received",
        "2026-10-31",
        "--as",
        "dpo",
    )
    assert "due 2026-11-30" in said
    text = (out / "your-data.txt").read_text(encoding="utf-8")
    assert reference in text and "insulting captions" in text and "Sam Jones" in text
    assert "You: Teacher" in text
    bundle = json.loads((out / "your-data.json").read_text(encoding="utf-8"))
    assert [c["reference"] for c in bundle["cases"]] == [reference]
    assert bundle["cases"][0]["contact_email"] == EMAIL

    (request,) = run_json(url, tmp_path, "privacy", "requests")
    assert request["kind"] == "access" and request["due_on"] == "2026-11-30"
    assert request["overdue"] is True  # today is past 30 November 2026
    extended = run(
        url, tmp_path, "privacy", "requests", "--extend", request["reference"], "--as", "dpo"
    )
    assert "due 2027-01-31" in extended or "due 2027-02-01" in extended  # 31 Jan 2027 is a Sunday
    run(url, tmp_path, "privacy", "requests", "--close", request["reference"], "--as", "dpo")
    assert run_json(url, tmp_path, "privacy", "requests") == []

    trail = run_json(url, tmp_path, "audit", "--case", reference)
    assert {"at", "actor", "action", "case", "channel"} == set(trail[0])
    assert ("dpo", "sar_export", "cli") in {(e["actor"], e["action"], e["channel"]) for e in trail}
    by_dpo = run_json(url, tmp_path, "audit", "--by", "dpo")
    assert {e["action"] for e in by_dpo} == {"sar_export", "request_extended", "request_closed"}


async def test_privacy_erase_previews_then_erases_keeping_labels_and_report(
    database_url: str, tmp_path: Path
) -> None:
    url = database_url
    reference = await submit(url)
    received = datetime.now(UTC).date()
    period = (
        "report",
        "--from",
        str(received - timedelta(days=1)),
        "--to",
        str(received),
        "--format",
        "json",
    )
    before = run(url, tmp_path, *period)

    preview = run_json(
        url, tmp_path, "privacy", "erase", "--email", EMAIL, "--as", "dpo", "--dry-run"
    )
    assert preview["done"] is False
    (planned,) = preview["cases"]
    assert planned["reference"] == reference
    assert {"subject", "description", "links", "contact_email", "contact_name"} <= set(
        planned["fields"]
    )
    assert planned["transcript"] > 10
    assert run_json(url, tmp_path, "privacy", "find", "--email", EMAIL)["cases"] == [reference]

    erased = run_json(url, tmp_path, "privacy", "erase", "--email", EMAIL, "--as", "dpo")
    assert erased["done"] is True and erased["request"].startswith("ERA-")
    assert run_json(url, tmp_path, "privacy", "find", "--telegram-user", CHAT) == {
        "cases": [],
        "conversations": 0,
        "messages": 0,
    }
    shown = run_json(url, tmp_path, "cases", "show", reference, "--as", "dpo")
    assert shown["description"] is None and shown["subject"] is None
    assert shown["contact_email"] is None and shown["links"] == [] and shown["transcript"] == []
    assert shown["platform"] == "TikTok" and shown["categories"]  # the labels stay
    assert run(url, tmp_path, *period) == before  # the yearly figures are unchanged

    trail = run(url, tmp_path, "audit", "--case", reference, "--json")
    actions = [e["action"] for e in json.loads(trail)]
    assert actions == ["erase_previewed", "erased", "case_exported"]
    for word in WORDS:
        assert word not in trail


async def test_a_legal_hold_keeps_a_case_past_its_retention_date(
    database_url: str, tmp_path: Path
) -> None:
    url = database_url
    reference = await submit(url)
    said = run(
        url, tmp_path, "privacy", "hold", reference, "--reason", "police request", "--as", "dpo"
    )
    assert "on hold" in said

    async def sweep() -> int:
        later = datetime.now(UTC) + timedelta(days=400)
        async with open_core(Settings(database_url=url)) as core:
            chores = Housekeeping(sessions=core.sessions, clock=lambda: later, retention_days=365)
            return (await chores.purge_expired()).cases

    assert await sweep() == 0
    assert run_json(url, tmp_path, "privacy", "find", "--reference", reference)["cases"]
    run(url, tmp_path, "privacy", "hold", reference, "--lift", "--as", "dpo")
    assert await sweep() == 1
    assert run_json(url, tmp_path, "privacy", "find", "--reference", reference)["cases"] == []
    actions = [e["action"] for e in run_json(url, tmp_path, "audit", "--case", reference)]
    assert actions == ["hold_placed", "hold_lifted", "erased_by_retention"]


def test_privacy_commands_that_disclose_or_erase_need_a_name(tmp_path: Path) -> None:
    result = helpline("privacy", "erase", "--email", EMAIL, cwd=tmp_path)
    assert result.returncode == 2 and "--as" in result.stderr
    result = helpline("privacy", "find", cwd=tmp_path)
    assert result.returncode == 2


async def test_db_rotate_key_with_the_key_file_leaves_only_a_new_key(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    reference = await submit(url)
    key_file = tmp_path / "helpline.db.key"
    old = key_file.read_text().split()
    said = run(url, tmp_path, "db", "rotate-key")
    assert "Re-encrypted" in said and "now holds only the new key" in said
    new = key_file.read_text().split()
    assert len(new) == 1 and new != old
    assert run_json(url, tmp_path, "privacy", "find", "--email", EMAIL)["cases"] == [reference]


async def test_db_rotate_key_with_configured_keys(database_url: str, tmp_path: Path) -> None:
    from storage.encryption import new_key

    old, new = new_key(), new_key()
    url = database_url
    reference = await submit(url, data_key=old)
    both = {"HELPLINE_DATABASE_URL": url, "HELPLINE_DATA_KEY": f"{new},{old}"}
    rotated = helpline("db", "rotate-key", cwd=tmp_path, env=both)
    assert rotated.returncode == 0, rotated.stderr
    assert "older keys may be removed" in rotated.stdout
    only_new = {"HELPLINE_DATABASE_URL": url, "HELPLINE_DATA_KEY": new}
    found = helpline(
        "privacy", "find", "--telegram-user", CHAT, "--json", cwd=tmp_path, env=only_new
    )
    assert json.loads(found.stdout)["cases"] == [reference]
    shown = helpline("cases", "show", reference, "--json", "--as", "t", cwd=tmp_path, env=only_new)
    assert "insulting captions" in json.loads(shown.stdout)["description"]


def test_run_on_postgresql_needs_a_data_key() -> None:
    settings = Settings(database_url="postgresql+asyncpg://u@127.0.0.1/h", telegram_bot_token="1:x")
    assert "HELPLINE_DATA_KEY" in settings.missing_for_run()
    keyed = Settings(
        database_url="postgresql+asyncpg://u@127.0.0.1/h", telegram_bot_token="1:x", data_key="k"
    )
    assert "HELPLINE_DATA_KEY" not in keyed.missing_for_run()
    assert "HELPLINE_DATA_KEY" not in Settings(telegram_bot_token="1:x").missing_for_run()


@pytest.mark.parametrize("running", ["run", "chat"])
def test_db_rotate_key_refuses_while_a_service_runs_with_the_key_file(
    tmp_path: Path, running: str
) -> None:
    """The service (or a chat in the terminal, waiting for its next line) keeps the keys it
    read at start: rotating the file under it would leave it sealing new messages with a
    key the file no longer holds."""
    argv, env = command_line(running, env={"HELPLINE_HTTP_PORT": str(free_port())})
    service = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    key_file = tmp_path / "helpline.db.key"
    try:
        deadline = time.monotonic() + 60
        while not key_file.exists() or key_file_free(key_file):
            assert service.poll() is None, "the service stopped by itself"
            assert time.monotonic() < deadline, "the service never took its key file"
            time.sleep(0.1)
        before = key_file.read_text()
        refused = helpline("db", "rotate-key", cwd=tmp_path)
        assert refused.returncode == 1
        assert "A helpline service is running with the key file" in refused.stderr
        assert key_file.read_text() == before
    finally:
        service.kill()
        service.wait(timeout=10)
    rotated = helpline("db", "rotate-key", cwd=tmp_path)
    assert rotated.returncode == 0 and "now holds only the new key" in rotated.stdout


def key_file_free(path: Path) -> bool:
    with key_file_alone(path) as alone:
        return alone
