"""Desk and privacy commands from another process while the service is writing (SQLite).

SQLite has one writer: a command that finds the service mid-transaction must wait for it
(the busy timeout) and then do its work, never fail with "database is locked". PostgreSQL
locks rows, not the database, so there is nothing to wait for there unless both touch the
same row: these tests are SQLite's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text

from storage import db
from storage import desk as desk_store
from storage.models import Case
from tests.support import intake
from tests.support.cli import command_line, helpline, helpline_async
from tests.support.keys import DATA_KEY

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"

WRITES = {
    "reply": ("cases", "reply", "{ref}", "Could you send the link again?", "--as", "sam"),
    "claim": ("cases", "claim", "{ref}", "--as", "sam"),
    "release": ("cases", "release", "{ref}", "--as", "sam"),
    "resolve": ("cases", "resolve", "{ref}", "--outcome", "advice", "--as", "sam"),
    "hold": ("privacy", "hold", "{ref}", "--reason", "police request", "--as", "dpo"),
    "erase": ("privacy", "erase", "--reference", "{ref}", "--as", "dpo"),
    "purge": ("db", "purge"),
}
"""Every command that writes, as a practitioner or the DPO types it."""
CLAIMED_FIRST = {"release", "resolve"}
DONE: dict[str, Callable[[Case, list[str], str], bool]] = {
    "reply": lambda case, actions, out: actions[-1] == "reply",
    "claim": lambda case, actions, out: actions[-1] == "claim" and case.claimed_by == "sam",
    "release": lambda case, actions, out: actions[-1] == "release" and case.claimed_by is None,
    "resolve": lambda case, actions, out: actions[-1] == "resolve" and case.resolved_at is not None,
    "hold": lambda case, actions, out: case.hold_reason == "police request",
    "erase": lambda case, actions, out: case.erased_at is not None,
    "purge": lambda case, actions, out: "from 0 case(s)" in out and case.erased_at is None,
}
"""How each command's work shows in the database (or, for the purge, in what it says)."""


def _waits_for_the_lock(pid: int) -> bool:
    """Whether a thread of process ``pid`` sleeps in SQLite's busy handler (Linux).

    The command runs SQLite in aiosqlite's thread; nothing else in it sleeps, so a thread
    asleep in ``nanosleep`` is one waiting for the database to be free.
    """
    try:
        return any("nanosleep" in t.joinpath("wchan").read_text() for t in _threads(pid))
    except OSError:  # a thread, or the process, ended meanwhile
        return False


def _threads(pid: int) -> list[Path]:
    return list(Path(f"/proc/{pid}/task").iterdir())


async def _write_beside_a_transaction(url: str, cwd: Path, *args: str) -> tuple[int, str, str]:
    """Run ``helpline ARGS`` while this process holds the write lock, as the service mid-turn
    does, and let go only once the command is waiting for it; its exit status and output."""
    argv, env = command_line(
        *args, env={"HELPLINE_DATABASE_URL": url, "HELPLINE_DATA_KEY": DATA_KEY}
    )
    engine = db.create_engine(url, data_key=DATA_KEY)
    try:
        async with engine.begin() as held:  # BEGIN IMMEDIATE: the database's one writer
            await held.execute(text("UPDATE cases SET subject = subject"))
            command = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            while not _waits_for_the_lock(command.pid):
                if command.returncode is not None:
                    said = (await command.communicate())[1].decode()[-400:]
                    raise AssertionError(f"the command ended without waiting: {said}")
                await asyncio.sleep(0.02)
        out, err = await asyncio.wait_for(command.communicate(), 60)
    finally:
        await engine.dispose()
    assert command.returncode is not None
    return command.returncode, out.decode(), err.decode()


async def _case_and_actions(url: str, reference: str) -> tuple[Case, list[str]]:
    engine = db.create_engine(url, data_key=DATA_KEY)
    try:
        async with db.session_factory(engine)() as session:
            query = select(Case).where(Case.reference == reference)
            case = (await session.execute(query)).scalar_one()
            return case, [e.action for e in await desk_store.events(session, case.id)]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("name", list(WRITES))
async def test_cli_write_waits_for_the_service_transaction_then_succeeds(
    name: str, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    reference = await intake.submit(url, "4242", data_key=DATA_KEY)
    if name in CLAIMED_FIRST:
        env = {"HELPLINE_DATABASE_URL": url, "HELPLINE_DATA_KEY": DATA_KEY}
        claimed = await helpline_async(
            "cases", "claim", reference, "--as", "sam", cwd=tmp_path, env=env
        )
        assert claimed.returncode == 0, claimed.stderr
    args = [a.format(ref=reference) for a in WRITES[name]]
    code, out, err = await _write_beside_a_transaction(url, tmp_path, *args)
    assert code == 0, err
    case, actions = await _case_and_actions(url, reference)
    assert DONE[name](case, actions, out)


async def test_helpline_refuses_to_block_an_event_loop_a_service_shares(tmp_path: Path) -> None:
    # The harness bug behind the follow-ups scenario's "database is locked": the service's
    # tasks stood still, one inside its transaction, while the command waited for it.
    stop = asyncio.Event()
    service = asyncio.create_task(stop.wait())
    try:
        with pytest.raises(AssertionError, match="helpline_async"):
            helpline("cases", "list", cwd=tmp_path)
    finally:
        stop.set()
        await service
