"""The `helpline` command facing hostile data: CSV cells that would run as formulas,
terminal escape sequences in what enquirers wrote, and files that never end."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import resource
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.conversation import CaseDraft, CaseStatus, ReplyVia
from storage import cases as case_store
from storage import conversations as convo_store
from storage import db, outbox
from tests.support.cli import command_line, helpline
from tests.support.paths import ROOT
from tests.support.report_data import HEADER

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+44 20 7946 0000", "-1+2", "@SUM(A1:A9)"]


def test_cli_export_defuses_formulas_and_imports_back_unchanged(tmp_path: Path) -> None:
    source = io.StringIO()
    writer = csv.writer(source)
    writer.writerow(HEADER.split(","))
    for n, text in enumerate(FORMULAS):
        row = [f"F{n}", f"2023-01-1{n}T10:00:00", "email", "Teacher", *[""] * 5, text, text]
        writer.writerow([*row, "", "", "new"])
    (tmp_path / "in.csv").write_text(source.getvalue(), encoding="utf-8")
    assert helpline("import", "in.csv", cwd=tmp_path).returncode == 0
    out = helpline("export", "--from", "2023-01-01", "--to", "2023-01-31", "out.csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    exported = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    for cells in exported:
        for column in ("subject", "description"):
            assert cells[column][0] == "'", cells[column]  # a spreadsheet shows it as text
    other = tmp_path / "other"
    other.mkdir()
    assert helpline("import", str(tmp_path / "out.csv"), cwd=other).returncode == 0
    listed = json.loads(helpline("cases", "list", "--json", cwd=other).stdout)
    assert sorted(c["subject"] for c in listed) == sorted(FORMULAS)


async def seed_case_with_escapes(path: Path) -> str:
    """Text from before input was cleaned (or written by anything else) still holds
    escape sequences: what the CLI prints must not obey them."""
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    await db.upgrade(engine)
    now = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    async with db.session_factory(engine)() as session, session.begin():
        record = await convo_store.load_for_update(session, "telegram", "1", now)
        draft = CaseDraft(
            "HL-ESCAPE",
            CaseStatus.NEW,
            now,
            subject="\x1b[2J\x1b[31mURGENT\x07 pay now",
            description="line one\x1b]8;;http://evil.example\x07link\x1b]8;;\x07",
            reply_via=ReplyVia.EMAIL,
            contact_name="Jo\x1b[8m hidden",
            contact_email="jo@example.org",
        )
        case = case_store.create_case(session, draft, channel="telegram", conversation_id=record.id)
        await session.flush()
        convo_store.add_turn(
            session,
            conversation_id=record.id,
            case_id=case.id,
            sender="enquirer",
            text="hi\u202eevil\r\x1b[1Aover",
            at=now,
        )
    await engine.dispose()
    return draft.reference


def test_cli_list_and_show_never_print_escape_sequences(tmp_path: Path) -> None:
    reference = asyncio.run(seed_case_with_escapes(tmp_path / "helpline.db"))
    listed = helpline("cases", "list", cwd=tmp_path)
    shown = helpline("cases", "show", reference, cwd=tmp_path)
    claimed = helpline("cases", "claim", reference, "--as", "Sam", cwd=tmp_path)
    for result in (listed, shown, claimed):
        assert result.returncode == 0, result.stderr
        for char in ("\x1b", "\x07", "\r", "\u202e"):
            assert char not in result.stdout
    assert "\\x1b[31mURGENT\\x07" in listed.stdout
    assert "\\u202e" in shown.stdout and "line one\\x1b]8;;" in shown.stdout
    assert "Jo\\x1b[8m hidden" in claimed.stdout


def run_limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``helpline`` with 1.5 GB of address space at most: a run that grows without bound
    fails here instead of taking the machine's memory."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    environment = {k: v for k, v in os.environ.items() if k != "HELPLINE_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, "PYTHONPATH": str(ROOT)},
        timeout=120,
        preexec_fn=limit,
    )


def test_cli_import_of_an_endless_file_stops_with_a_clear_error(tmp_path: Path) -> None:
    result = run_limited("import", "/dev/zero", cwd=tmp_path)
    assert result.returncode == 1
    assert "line 1: longer than 1,000,000 characters" in result.stderr
    assert "Nothing was imported" in result.stderr


def test_cli_import_refuses_short_rows_and_open_quotes(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(
        f"{HEADER}\nS1,2023-01-01T10:00:00,email,Teacher,Primary\n"
        'Q1,2023-01-02T10:00:00,email,Teacher,,,,,,"open quote,,,,new\n'
        "G1,2023-01-03T10:00:00,email,Teacher,,,,,,fine,,,,new\n",
        encoding="utf-8",
    )
    result = helpline("import", "bad.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert "line 2: 5 columns where the header has 14" in result.stderr
    assert "line 3: " in result.stderr
    assert json.loads(helpline("cases", "list", "--json", cwd=tmp_path).stdout) == []


async def seed_outbox(path: Path) -> None:
    """A card stuck for an hour (Slack refusing) and a reply given up."""
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    await db.upgrade(engine)
    now = datetime.now(UTC)
    async with db.session_factory(engine)() as session, session.begin():
        case = case_store.create_case(
            session, CaseDraft("HL-QUEUE1", CaseStatus.NEW, now), channel="telegram"
        )
        await session.flush()
        stuck = outbox.enqueue(
            session, outbox.SLACK_CARD, now=now - timedelta(hours=1), case_id=case.id
        )
        outbox.mark_retry(stuck, now, timedelta(minutes=5), "slack 503")
        given_up = outbox.enqueue(
            session, outbox.ENQUIRER_MESSAGE, now=now, payload={"text": "private words"}
        )
        outbox.mark_failed(given_up, now, "the enquirer has blocked the bot")
    await engine.dispose()


SLACK = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CHANNEL_ID": "C1", "SLACK_SIGNING_SECRET": "s"}


def test_cli_outbox_shows_stuck_and_given_up_rows_and_sends_them_again(tmp_path: Path) -> None:
    asyncio.run(seed_outbox(tmp_path / "helpline.db"))
    parked = helpline("outbox", cwd=tmp_path)  # the rows are the desk's: no Slack here
    assert parked.returncode == 0, "waiting for Slack to be set up is not being stuck"
    assert "0 waiting, 0 waiting for more than 600 s, 1 given up." in parked.stdout
    assert "1 for the Slack desk, which is not configured" in parked.stdout
    shown = helpline("outbox", cwd=tmp_path, env=SLACK)
    assert shown.returncode == 1  # something is stuck: a script can tell
    assert "1 waiting, 1 waiting for more than 600 s, 1 given up." in shown.stdout
    assert "HL-QUEUE1" in shown.stdout and "slack 503" in shown.stdout
    failed = helpline("outbox", "--failed", "--json", cwd=tmp_path)
    data = json.loads(failed.stdout)
    assert [r["state"] for r in data["rows"]] == ["given up"]
    assert "private words" not in failed.stdout + shown.stdout  # never what people wrote
    unknown = helpline("outbox", "retry", "999", cwd=tmp_path)
    assert unknown.returncode == 1 and "not given-up rows" in unknown.stderr
    again = helpline("outbox", "retry", "--all", cwd=tmp_path)
    assert again.returncode == 0 and "1 given-up row(s)" in again.stdout
    assert json.loads(helpline("outbox", "--json", cwd=tmp_path).stdout)["failed"] == 0


@pytest.mark.parametrize("url", ["mysql://root@db/x", "garbage", "postgresql://u:hunter2@h:x/db"])
def test_cli_a_database_url_it_cannot_use_is_named_without_repeating_it(
    tmp_path: Path, url: str
) -> None:
    result = helpline("cases", "list", cwd=tmp_path, env={"HELPLINE_DATABASE_URL": url})
    assert result.returncode == 2
    assert "The setting HELPLINE_DATABASE_URL is not valid" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "no database and no key file made for it"


def test_cli_a_file_it_cannot_write_is_named_as_such(tmp_path: Path) -> None:
    taken = tmp_path / "report"
    taken.write_text("already here")
    period = ("--from", "2026-01-01", "--to", "2026-12-31")
    result = helpline("report", *period, "--out", str(taken), cwd=tmp_path)
    assert result.returncode == 2 and f"Cannot use {taken}: File exists." in result.stderr
    assert "Cannot reach" not in result.stderr and "Traceback" not in result.stderr


def test_cli_output_cut_short_stops_quietly(tmp_path: Path) -> None:
    """``helpline understand < many | head -1``: the reader goes away, and so do we."""
    argv, environment = command_line("understand", env={})
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=environment,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        stdin = process.stdin

        def feed() -> None:  # beside the reading, or both ends wait on a full pipe
            with contextlib.suppress(BrokenPipeError):
                stdin.write(b"a fake tiktok account of our head\n" * 20_000)
                stdin.close()

        feeding = threading.Thread(target=feed)
        feeding.start()
        assert process.stdout.readline().startswith(b"under 18:")
        process.stdout.close()
        code = process.wait(timeout=60)
        feeding.join(timeout=60)
        stderr = process.stderr.read().decode()
    assert code == 141 and "Traceback" not in stderr, stderr


def test_cli_a_missing_reference_or_unknown_status_is_said_plainly(tmp_path: Path) -> None:
    empty = helpline("cases", "show", " ", cwd=tmp_path)
    assert empty.returncode == 2 and "give a case reference, like HL-ABC123" in empty.stderr
    status = helpline("cases", "list", "--status", "bogus", cwd=tmp_path)
    assert status.returncode == 2 and "choose from 'new', 'claimed'" in status.stderr
    lower = helpline("cases", "show", " hl-nope ", cwd=tmp_path)
    assert lower.returncode == 1 and "There is no case HL-NOPE." in lower.stderr


def test_cli_a_desk_command_where_there_is_no_database_says_so(tmp_path: Path) -> None:
    """The default file is found from where the command runs: run elsewhere, it says an
    empty one was made rather than seeming to have lost every case."""
    listed = helpline("cases", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "No cases yet." in listed.stdout
    assert "No database was here, so an empty one was made: helpline.db." in listed.stderr
    again = helpline("cases", "list", cwd=tmp_path)
    assert "No database was here" not in again.stderr


def test_cli_a_database_that_cannot_be_reached_is_named_as_such(tmp_path: Path) -> None:
    key = helpline("db", "new-key", cwd=tmp_path).stdout.split()[-1]
    env = {"HELPLINE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x", "HELPLINE_DATA_KEY": key}
    result = helpline("cases", "list", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "Cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr
