"""The mailbox poller alone, as its own process, for the kill -9 test.

``python -m tests.support.mail_poller IMAP_URL DATABASE_URL`` polls until killed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from bot.clock import utcnow
from bot.email.intake import EmailIntake
from bot.email.mailbox import MailPoller
from bot.email.servers import imap_server
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
from storage import db


async def main(imap_url: str, database_url: str) -> None:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    server = imap_server(imap_url)
    intake = EmailIntake(
        sessions=db.session_factory(engine),
        flow=IntakeFlow(),
        calendar=WorkingCalendar.default(),
        target=timedelta(hours=3),
        clock=utcnow,
        address=server.user,
    )
    print("polling", flush=True)
    await MailPoller(server=server, intake=intake, every=0.05).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
