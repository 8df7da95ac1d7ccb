"""The mailbox poller alone, as its own process, for the kill -9 test.

``python -m tests.support.mail_poller IMAP_URL DATABASE_URL`` polls until killed.
"""

from __future__ import annotations

import asyncio
import sys

from bot.email.mailbox import MailPoller
from bot.email.servers import imap_server
from storage import db
from tests.support.intake import email_intake


async def main(imap_url: str, database_url: str) -> None:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    server = imap_server(imap_url)
    intake = email_intake(db.session_factory(engine), server.user)
    print("polling", flush=True)
    await MailPoller(server=server, intake=intake, every=0.05).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
