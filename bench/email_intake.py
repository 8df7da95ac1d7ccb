"""Benchmark: a backlog of emails in a real IMAP mailbox, worked through into cases.

Run::

    python -m bench.email_intake [--emails 1000] [--database sqlite|postgres|both]
                                 [--postgres-url URL]

What it does, per database:

1. Starts a private Dovecot (Debian's ``dovecot-imapd``, the same throwaway configuration
   as the tests, ``tests/support/mail_servers.py``) and puts N emails in its inbox with IMAP
   APPEND: real-shaped enquiries from the test corpus (Outlook with a signature, HTML
   only, attachments, Windows-1252, base64, forwarded), each with its own sender and
   subject, plus one in ten an out-of-office reply. Not timed.
2. Baseline: the same mailbox read by imapclient alone, as our poller reads it (search for
   unhandled, sizes, then ``BODY.PEEK[]`` in chunks of 25): the cost of just fetching.
3. Ours: one ``MailPoller.poll_once`` with the real ``EmailIntake`` on a fresh database
   (schema from the migrations), timed until every email is handled and flagged, with
   each case's card and acknowledgement queued in the outbox. Peak RSS is read from the
   kernel (``ru_maxrss``) before and after.

It prints figures and asserts nothing: seconds, emails/s, the ratio to the baseline, the
cases, cards and acknowledgements queued, doubles (must be 0), and peak memory. Target:
1,000 emails in at most 60 s on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.common import database
from bot.clock import utcnow
from bot.email.intake import EmailIntake
from bot.email.mailbox import MailboxConnection, MailPoller
from bot.email.servers import imap_server
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
from storage import db
from storage import outbox as outbox_store
from storage.models import Case, EmailRecord, OutboxMessage
from tests.support.mail_servers import Dovecot

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "bot" / "email" / "corpus"
ENQUIRIES = (
    "outlook_new_dsl.eml",
    "html_only.eml",
    "multipart_images_pdf.eml",
    "windows1252.eml",
    "base64_body.eml",
    "forwarded_chain.eml",
    "inline_image.eml",
    "no_message_id.eml",
    "risk.eml",
)


def backlog(count: int) -> list[bytes]:
    """N distinct emails: enquiries from the corpus, and one in ten an out-of-office."""
    sources = [(CORPUS / name).read_bytes() for name in ENQUIRIES]
    ooo = (CORPUS / "out_of_office.eml").read_bytes()
    mails = []
    for i in range(count):
        raw = ooo if i % 10 == 9 else sources[i % len(sources)]
        raw = raw.replace(b"Message-ID: <", f"Message-ID: <b{i}.".encode(), 1)
        raw = raw.replace(b"Subject: ", f"Subject: [{i}] ".encode(), 1)
        head, _, body = raw.partition(b"\r\n\r\n")
        head = b"\r\n".join(
            f"From: Sender {i} <sender{i}@school{i % 97}.example>".encode()
            if line.lower().startswith(b"from:")
            else line
            for line in head.split(b"\r\n")
        )
        mails.append(head + b"\r\n\r\n" + body)
    return mails


def fetch_only(url: str) -> int:
    """The baseline: read the mailbox as the poller does, and nothing else."""
    mailbox = MailboxConnection(imap_server(url))
    mailbox.open()
    try:
        uids = mailbox.pending()
        fetched = 0
        for start in range(0, len(uids), 25):
            chunk = uids[start : start + 25]
            mailbox.sizes(chunk)
            fetched += len(mailbox.bodies(chunk))
        return fetched
    finally:
        mailbox.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_one(kind: str, postgres_url: str, count: int) -> None:
    dovecot = Dovecot()
    dovecot.start()
    try:
        mails = backlog(count)
        with dovecot.client() as client:
            client.multiappend("INBOX", mails)
        started = time.perf_counter()
        fetched = await asyncio.to_thread(fetch_only, dovecot.url)
        baseline = time.perf_counter() - started

        async with database(kind, postgres_url, "bench-email-") as url:
            engine = db.create_engine(url)
            await db.upgrade(engine)
            sessions = db.session_factory(engine)
            server = imap_server(dovecot.url)
            intake = EmailIntake(
                sessions=sessions,
                flow=IntakeFlow(),
                calendar=WorkingCalendar.default(),
                target=timedelta(hours=3),
                clock=utcnow,
                address=server.user,
            )
            poller = MailPoller(server=server, intake=intake)
            rss_before = peak_rss_mb()
            started = time.perf_counter()
            handled = await poller.poll_once()
            ours = time.perf_counter() - started
            rss_after = peak_rss_mb()
            async with sessions() as session:
                cases = await session.scalar(select(func.count()).select_from(Case))
                records = await session.scalar(
                    select(func.count())
                    .select_from(EmailRecord)
                    .where(EmailRecord.direction == "in")
                )
                kinds = dict(
                    (
                        await session.execute(
                            select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind)
                        )
                    ).all()
                )
            await engine.dispose()
        flagged = sum(b"$HelplineHandled" in f for f in dovecot.flags().values())
    finally:
        dovecot.close()
    people = sum(1 for i in range(count) if i % 10 != 9)
    print(f"\n== {kind}: {count} emails waiting in Dovecot ({people} enquiries, rest auto-replies)")
    print(f"baseline (imapclient fetch only): {baseline:6.2f} s for {fetched} emails")
    print(
        f"ours (fetch, parse, classify, understand, commit, flag): {ours:6.2f} s"
        f"  = {count / ours:6.1f} emails/s, {ours / max(baseline, 1e-9):5.1f} x the baseline"
        f"  (target <= 60 s)"
    )
    print(
        f"handled {handled}, flagged {flagged}, inbound records {records}, cases {cases}, "
        f"cards queued {kinds.get(outbox_store.SLACK_CARD, 0)}, "
        f"acknowledgements queued {kinds.get(outbox_store.ENQUIRER_MESSAGE, 0)}, "
        f"doubles {int(records or 0) - count}"
    )
    print(f"peak RSS: {rss_after:6.1f} MB (before the poll {rss_before:6.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "HELPLINE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"
        ),
    )
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    for kind in kinds:
        asyncio.run(run_one(kind, args.postgres_url, args.emails))


if __name__ == "__main__":
    main()
