"""The `helpline` command as a user runs it: a real process, piped input, JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL
from tests.support.cli import helpline
from tests.support.conversations import PROFESSIONAL_TO_REVIEW

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_cli_chat_json_submits_a_case_into_helpline_db(workdir: Path) -> None:
    lines = "\n".join([*PROFESSIONAL_TO_REVIEW[1:], "submit"]) + "\n"
    result = helpline("chat", "--json", cwd=workdir, stdin=lines)
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert all({"text", "options", "multiple"} <= set(m) for m in messages)
    assert any(m["multiple"] for m in messages)
    created = [m["case"] for m in messages if "case" in m]
    assert len(created) == 1 and created[0]["status"] == "new"
    assert (workdir / "helpline.db").exists()

    listed = json.loads(helpline("cases", "list", "--json", cwd=workdir).stdout)
    assert [c["reference"] for c in listed] == [created[0]["reference"]]
    shown = json.loads(
        helpline("cases", "show", created[0]["reference"], "--json", cwd=workdir).stdout
    )
    assert shown["platform"] == "TikTok"
    assert shown["categories"] == ["Online Reputation", "Cyberbullying"]
    assert shown["transcript"][0]["sender"] == "enquirer"


def test_cli_cases_list_heads_its_columns_and_lines_them_up(workdir: Path) -> None:
    lines = "\n".join([*PROFESSIONAL_TO_REVIEW[1:], "submit"]) + "\n"
    assert helpline("chat", "--json", cwd=workdir, stdin=lines).returncode == 0
    header, *rows = helpline("cases", "list", cwd=workdir).stdout.splitlines()
    assert header.split() == ["Reference", "Received", "Status", "Enquirer", "About", "Subject"]
    assert len(rows) == 1 and rows[0].startswith("HL-")
    for column in ("Status", "Enquirer", "About", "Subject"):
        start = header.index(column)
        assert rows[0][start - 2 : start] == "  " and rows[0][start] != " ", (column, rows[0])


def test_cli_chat_end_of_input_saves_progress_and_resumes(workdir: Path) -> None:
    first = helpline("chat", "--json", cwd=workdir, stdin="1\n1\n")
    assert first.returncode == 0, first.stderr
    second = helpline("chat", "--json", cwd=workdir, stdin="")
    last = json.loads(second.stdout.splitlines()[-1])
    assert "setting" in last["text"]


def test_cli_chat_run_again_after_sending_adds_what_is_written_to_the_case(
    workdir: Path,
) -> None:
    """Coming back takes no turn (no "/start" in the transcript, no new enquiry begun), so
    "one more thing" still reaches the case, as the confirmation promised."""
    lines = "\n".join([*PROFESSIONAL_TO_REVIEW[1:], "submit"]) + "\n"
    sent = helpline("chat", "--json", cwd=workdir, stdin=lines).stdout
    reference = next(json.loads(m)["case"] for m in sent.splitlines() if '"case"' in m)["reference"]
    again = helpline("chat", "--json", cwd=workdir, stdin="One more thing: it started on Friday\n")
    said = [json.loads(line)["text"] for line in again.stdout.splitlines()]
    assert said[0] == "Welcome back. Here's where we were:"
    assert reference in said[1], "the enquiry they sent, and what they can do now"
    assert f"I've added that to your enquiry {reference}" in said[-1]
    shown = json.loads(helpline("cases", "show", reference, "--json", cwd=workdir).stdout)
    texts = [t["text"] for t in shown["transcript"]]
    assert "One more thing: it started on Friday" in texts
    assert texts.count("/start") == 1, "only the first run's, when the chat began"


def test_cli_chat_plain_text_numbers_options(workdir: Path) -> None:
    result = helpline("chat", cwd=workdir, stdin="hi\n")
    assert "  1. School or college staff" in result.stdout


def test_cli_child_is_signposted_and_listed_as_such(workdir: Path) -> None:
    out = helpline("chat", "--json", cwd=workdir, stdin="I'm under 18\n").stdout
    case = next(json.loads(line) for line in out.splitlines() if '"case"' in line)["case"]
    assert case["status"] == "signposted"
    listed = json.loads(
        helpline("cases", "list", "--status", "signposted", "--json", cwd=workdir).stdout
    )
    assert listed[0]["enquirer_type"] == "Child (12-18)"
    assert listed[0]["contact_email"] is None


def test_cli_show_unknown_reference_fails_kindly(workdir: Path) -> None:
    result = helpline("cases", "show", "HL-NOPE00", cwd=workdir)
    assert result.returncode == 1
    assert "There is no case HL-NOPE00." in result.stderr


def test_cli_uses_helpline_database_url(workdir: Path) -> None:
    url = f"sqlite+aiosqlite:///{workdir / 'other.db'}"
    helpline("chat", "--json", cwd=workdir, stdin="police\n", env={"HELPLINE_DATABASE_URL": url})
    assert (workdir / "other.db").exists() and not (workdir / "helpline.db").exists()


@pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL")
def test_cli_works_on_postgresql(workdir: Path) -> None:
    import asyncio

    from tests.conftest import _reset_postgres

    url = POSTGRES_URL
    assert url
    asyncio.run(_reset_postgres(url))
    env = {"HELPLINE_DATABASE_URL": url}
    lines = "\n".join([*PROFESSIONAL_TO_REVIEW[1:], "submit"]) + "\n"
    result = helpline("chat", "--json", cwd=workdir, stdin=lines, env=env)
    assert result.returncode == 0, result.stderr
    listed = json.loads(helpline("cases", "list", "--json", cwd=workdir, env=env).stdout)
    assert len(listed) == 1


def test_cli_desk_claim_reply_resolve_go_through_the_desk(workdir: Path) -> None:
    lines = "\n".join([*PROFESSIONAL_TO_REVIEW[1:], "submit"]) + "\n"
    out = helpline("chat", "--json", cwd=workdir, stdin=lines).stdout
    reference = next(json.loads(line) for line in out.splitlines() if '"case"' in line)["case"][
        "reference"
    ]

    claimed = helpline("cases", "claim", reference, "--as", "Sam", cwd=workdir)
    assert claimed.returncode == 0, claimed.stderr
    assert "dsl@school.example.org.uk" in claimed.stdout  # the holder sees how to reach them
    other = helpline("cases", "claim", reference, "--as", "Kim", cwd=workdir)
    assert other.returncode == 1 and "already claimed by Sam" in other.stderr
    replied = helpline(
        "cases", "reply", reference, "We", "are", "on", "it", "--as", "Sam", cwd=workdir
    )
    assert replied.returncode == 0, replied.stderr
    bad = helpline(
        "cases", "resolve", reference, "--outcome", "bananas", "--as", "Sam", cwd=workdir
    )
    assert bad.returncode == 1 and "Unknown outcome" in bad.stderr
    done = helpline(
        "cases",
        "resolve",
        reference,
        "--outcome",
        "advice",
        "--note",
        "reported via the",
        "--as",
        "Sam",
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(helpline("cases", "show", reference, "--json", cwd=workdir).stdout)
    assert shown["status"] == "resolved" and shown["outcome"] == "Advice given"
    assert shown["outcome_note"] == "reported via the"
    again = helpline(
        "cases", "resolve", reference, "--outcome", "advice", "--as", "Sam", cwd=workdir
    )
    assert again.returncode == 1 and f"{reference} is already resolved." in again.stderr
    assert [(a["actor"], a["action"]) for a in shown["actions"]] == [
        ("Sam", "claim"),
        ("Sam", "reply"),
        ("Sam", "resolve"),
    ]


UNDERSTAND_KEYS = {
    "under_18",
    "enquirer_type",
    "setting",
    "region",
    "platform_type",
    "platform",
    "categories",
    "risks",
    "links",
}


def test_cli_understand_json_prints_the_documented_object(workdir: Path) -> None:
    result = helpline(
        "understand",
        "--json",
        "I'm the DSL at a secondary in York, a fake snap account https://snapchat.com/add/x",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    assert set(said) == UNDERSTAND_KEYS
    assert said["enquirer_type"] == "DSL" and said["setting"] == "Secondary"
    assert said["region"] == "Yorkshire and the Humber" and said["platform"] == "Snapchat"
    assert said["links"] == ["https://snapchat.com/add/x"]
    assert not (workdir / "helpline.db").exists()  # no database needed


def test_cli_understand_reads_stdin_one_message_a_line(workdir: Path) -> None:
    lines = "im 14 and scared\nshe wants to take her own life\nthis is killing our reputation\n"
    result = helpline("understand", "--json", cwd=workdir, stdin=lines)
    said = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["under_18"] for s in said] == [True, None, None]
    assert [s["risks"] for s in said] == [[], ["self_harm"], []]


def test_cli_understand_plain_output_is_one_safe_line_a_message(workdir: Path) -> None:
    result = helpline("understand", cwd=workdir, stdin="see https://evil.example/\x1b[2Jx\nDSL\n")
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "\x1b" not in result.stdout
    assert "role: DSL" in lines[1]


def test_cli_chat_first_message_reaches_a_case_in_eight_answers(workdir: Path) -> None:
    answers = [
        "Hi, I'm the DSL at a secondary in York, a fake Snapchat account is posting our "
        "staff's photos with vile captions, we reported it and nothing happened",
        "That's right",
        "Fake Snapchat account",
        "No links",
        "No",
        "here",
        "no thanks",
        "send",
    ]
    result = helpline("chat", "--json", cwd=workdir, stdin="\n".join(answers) + "\n")
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    created = [m["case"] for m in messages if "case" in m]
    assert len(created) == 1, result.stdout[-2000:]
    shown = json.loads(
        helpline("cases", "show", created[0]["reference"], "--json", cwd=workdir).stdout
    )
    assert shown["enquirer_type"] == "DSL" and shown["region"] == "Yorkshire and the Humber"
    assert shown["platform"] == "Snapchat" and shown["already_reported"] is True
    assert shown["description"].startswith("Hi, I'm the DSL")
