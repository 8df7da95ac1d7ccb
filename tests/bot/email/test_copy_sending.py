"""A copy of an enquiry sent for real: the intake queues it, the outbox worker's email
sender delivers it over SMTP (aiosmtplib) to a real aiosmtpd server, on SQLite and
PostgreSQL. A resend after a timeout is the same email (one Message-ID); asking again sends
nothing more. The whole service with Telegram is in ``test_email_e2e.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.email.sending import EmailSender
from bot.email.servers import smtp_server
from bot.services.delivery import EnquirerDelivery
from bot.services.intake import IntakeService
from bot.services.leases import Leases
from bot.services.outbox import OutboxWorker
from flows.intake import IntakeFlow
from flows.messages import Inbound
from storage import outbox
from storage.models import OutboxMessage
from tests.support.audit import trail
from tests.support.conversations import PROFESSIONAL_TO_REVIEW
from tests.support.intake import email_intake
from tests.support.mail_servers import SmtpRecorder, html_of, text_of

pytestmark = pytest.mark.e2e
OWN = "helpline@helpline.test"
FLOW = IntakeFlow()
CORPUS = Path(__file__).parent / "corpus"
WROTE = "edited photos of staff with insulting captions"


def worker(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpRecorder, timeout: float = 10.0
) -> OutboxWorker:
    """The outbox worker with only the email sender, as ``helpline run`` wires it."""
    sender = EmailSender(
        sessions=sessions,
        server=smtp_server(smtp.url),
        address=OWN,
        flow=FLOW,
        clock=utcnow,
        timeout=timeout,
    )
    delivery = EnquirerDelivery(channels={}, clock=utcnow, row_channels={"email": sender})
    return OutboxWorker(
        sessions=sessions,
        senders={outbox.ENQUIRER_MESSAGE: delivery},
        clock=utcnow,
        leases=Leases(sessions=sessions, clock=utcnow, seconds=5),
        backoff_base=0.01,
        backoff_cap=0.05,
    )


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == outbox.ENQUIRER_MESSAGE)
        return list((await session.execute(query.order_by(OutboxMessage.id))).scalars())


async def drain(sessions: async_sessionmaker[AsyncSession], sending: OutboxWorker) -> None:
    """Run passes until every email row is sent (the limit only stops a hang)."""
    deadline = asyncio.get_running_loop().time() + 30
    while any(r.sent_at is None for r in await rows(sessions)):
        assert asyncio.get_running_loop().time() < deadline, "the email was not sent"
        await sending.drain_once()
        await asyncio.sleep(0.02)


async def chat_copy(sessions: async_sessionmaker[AsyncSession]) -> str:
    intake = IntakeService(engine=sessions.kw["bind"], sessions=sessions, flow=FLOW, email_from=OWN)
    for text in (*PROFESSIONAL_TO_REVIEW, "send"):
        handled = await intake.handle("telegram", "601", Inbound.typed(text))
    assert handled.case is not None
    await intake.handle("telegram", "601", Inbound.chose("copy"))
    await intake.handle("telegram", "601", Inbound.chose("copy"))  # asked twice: one email
    return handled.case.reference


async def test_a_chat_enquirers_copy_arrives_by_smtp_once(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpRecorder
) -> None:
    reference = await chat_copy(sessions)
    await drain(sessions, worker(sessions, smtp))
    (message,) = await smtp.wait_for(1)
    assert message["To"] == "dsl@school.example.org.uk"
    assert message["Subject"] == f"[{reference}] A copy of your enquiry"
    assert message["Message-ID"] == f"<hl-{reference}-copy@helpline.test>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert WROTE in text_of(message) and "Fake TikTok account using our school logo" in html_of(
        message
    )
    await worker(sessions, smtp).drain_once()
    assert len(smtp.messages) == 1, "nothing more to send"
    assert ("enquirer", "copy_emailed", "telegram", reference) in await trail(sessions)


async def test_a_copy_the_mail_server_refuses_is_not_audited_as_disclosed(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpRecorder
) -> None:
    smtp.handler.refuse_recipients.add("dsl@school.example.org.uk")
    reference = await chat_copy(sessions)
    await worker(sessions, smtp).drain_once()
    (row,) = await rows(sessions)
    assert row.failed_at is not None and row.sent_at is None and smtp.messages == []
    assert [a for _, a, _, _ in await trail(sessions)] == ["copy_shown", "copy_shown"], reference


async def test_a_resend_after_a_timeout_is_the_same_email(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpRecorder
) -> None:
    """The server took the copy but answered after the sender stopped waiting: the sender
    cannot know it arrived, so it sends again, with the same Message-ID (mail clients
    show one email)."""
    smtp.handler.stall_next, smtp.handler.stall_seconds = 1, 3.0
    reference = await chat_copy(sessions)
    await drain(sessions, worker(sessions, smtp, timeout=0.5))
    first, second = await smtp.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"] == f"<hl-{reference}-copy@helpline.test>"
    assert text_of(first) == text_of(second)
    (row,) = await rows(sessions)
    assert row.attempts == 2 and row.sent_at is not None


async def test_an_email_enquirer_who_replies_copy_gets_the_case_by_smtp(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpRecorder
) -> None:
    intake = email_intake(
        sessions, OWN, flow=FLOW, clock=lambda: datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    )
    await intake.handle((CORPUS / "outlook_new_dsl.eml").read_bytes(), mailbox_key="I:1:1")
    await drain(sessions, worker(sessions, smtp))
    (ack,) = await smtp.wait_for(1)
    reply = (CORPUS / "gmail_reply.eml").read_bytes()
    reply = reply.replace(b"<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>", ack["Message-ID"].encode())
    reply = reply.replace(
        b"Thanks. A second account has appeared: https://www.tiktok.com/@mrs_fake_two", b"COPY"
    )
    assert await intake.handle(reply, mailbox_key="I:1:2") == "copy"
    await drain(sessions, worker(sessions, smtp))
    _, copy = await smtp.wait_for(2)
    assert copy["To"] == "jane.smith@hilltop.sch.uk"
    assert copy["In-Reply-To"] == "<CAFx8zP4a1Bq=reply1@mail.gmail.com>"
    assert "A copy of your enquiry" in copy["Subject"]
    assert "mrs_fake_teacher" in text_of(copy) and "Here is a copy of what we recorded" in text_of(
        copy
    )
    (case_reference,) = {r for _, _, _, r in await trail(sessions)}
    assert await trail(sessions) == [("enquirer", "copy_emailed", "email", case_reference)]
