"""Crashes while the mailbox is read: nothing lost, nothing doubled.

The commit always comes before the IMAP flag, so a crash can only leave a message that
is committed but unflagged; the next poll finds it recorded and only flags it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.email.intake import EmailIntake
from bot.email.mailbox import HANDLED, MailPoller
from bot.email.servers import imap_server
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
from storage.models import Case, OutboxMessage
from tests.support.intake import email_intake
from tests.support.mail_servers import Dovecot

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.e2e
CORPUS = Path(__file__).parent / "corpus"


def numbered(count: int) -> list[bytes]:
    raw = (CORPUS / "no_message_id.eml").read_bytes()
    return [
        raw.replace(
            b"Subject: Group chat bullying", f"Subject: Enquiry {i:03d} bullying".encode()
        ).replace(b"chris.lee@", f"teacher{i}@".encode())
        for i in range(count)
    ]


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def subjects(sessions: async_sessionmaker[AsyncSession]) -> list[str | None]:
    async with sessions() as session:
        return list((await session.execute(select(Case.subject).order_by(Case.id))).scalars())


def flagged(dovecot: Dovecot) -> int:
    return sum(HANDLED.encode() in f for f in dovecot.flags().values())


class StopsTheServer(EmailIntake):
    """The intake, with the IMAP server going down right after the second commit."""

    dovecot: Dovecot
    handled = 0

    async def handle(self, raw: bytes, *, mailbox_key: str, oversized: bool = False) -> str:
        outcome = await super().handle(raw, mailbox_key=mailbox_key, oversized=oversized)
        self.handled += 1
        if self.handled == 2:
            self.dovecot.stop()
        return outcome


async def test_imap_server_restarted_mid_poll_loses_and_doubles_nothing(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot
) -> None:
    dovecot.deliver(*numbered(5))
    server = imap_server(dovecot.url)
    failing = StopsTheServer(
        sessions=sessions,
        flow=IntakeFlow(),
        calendar=WorkingCalendar.default(),
        target=timedelta(hours=3),
        clock=utcnow,
        address=server.user,
    )
    failing.dovecot = dovecot
    poller = MailPoller(server=server, intake=failing)
    try:
        await poller.poll_once()
        raise AssertionError("the poll should have failed with the server gone")
    except Exception as error:
        assert not isinstance(error, AssertionError), error
    dovecot.start()
    assert flagged(dovecot) == 0, "nothing was flagged: the server went before the flags"
    # All five were fetched in one round trip, so the rest were handled before the flags
    # failed: the database has them all, once.
    assert await count(sessions, Case) == 5
    again = MailPoller(server=server, intake=email_intake(sessions, server.user))
    assert await again.poll_once() == 5
    assert flagged(dovecot) == 5
    assert await count(sessions, Case) == 5
    assert await count(sessions, OutboxMessage) == 10, "one card and one acknowledgement each"
    assert await again.poll_once() == 0


async def test_kill_9_during_a_poll_loses_and_doubles_nothing(
    database_url: str, sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot
) -> None:
    total = 60
    dovecot.deliver(*numbered(total))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mail_poller", dovecot.url, database_url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while await count(sessions, Case) < 3:
            assert process.poll() is None, "the poller died by itself"
            assert asyncio.get_running_loop().time() < deadline, "the poller never got going"
            await asyncio.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    committed, marked = await count(sessions, Case), flagged(dovecot)
    assert marked <= committed, "never flagged before it was committed"
    server = imap_server(dovecot.url)
    poller = MailPoller(server=server, intake=email_intake(sessions, server.user))
    await poller.poll_once()
    assert flagged(dovecot) == total
    assert await count(sessions, Case) == total
    assert await count(sessions, OutboxMessage) == 2 * total
    expected = [f"Enquiry {i:03d} bullying on WhatsApp" for i in range(total)]
    assert await subjects(sessions) == expected, "in the order they arrived, each once"
