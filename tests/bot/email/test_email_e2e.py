"""Email end to end: the real service reading a real Dovecot mailbox over IMAP, sending
through a real SMTP server (aiosmtpd), with the Slack desk on the fake Slack Web API.

Nothing is mocked: mail goes into Dovecot with IMAP APPEND, the service's poller reads it
with imapclient, cards and thread notes go to the fake Slack through slack_sdk, and what
the helpline sends arrives at aiosmtpd by aiosmtplib. Waits are for effects (with a
generous safety limit), never for a time.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import Settings
from storage import db
from storage.models import Case, EmailRecord, OutboxMessage
from tests.fakes.slack_api import FakeSlack, block_action_body, post_signed
from tests.fakes.telegram_api import FakeTelegram
from tests.support.conversations import PROFESSIONAL_TO_REVIEW
from tests.support.mail_servers import USER, Dovecot, SmtpRecorder, html_of, text_of
from tests.support.slack_desk import reply_values, submission
from tests.support.telegram import next_handled, replies_settle, running, say, settings_for

pytestmark = pytest.mark.e2e
CORPUS = Path(__file__).parent / "corpus"
SECRET = "slack-signing-secret"
DESK = "C0DESK"
HANDLED = b"$HelplineHandled"


def eml(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


async def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    """Wait for an effect (the limit only stops a hang)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Mail:
    settings: Settings
    slack: FakeSlack
    dovecot: Dovecot
    smtp: SmtpRecorder
    telegram: FakeTelegram

    def cards(self) -> list[dict[str, Any]]:
        return self.slack.messages(DESK)

    def card_of(self, reference: str) -> dict[str, Any] | None:
        return next((c for c in self.cards() if reference in json.dumps(c.get("blocks"))), None)

    def thread_texts(self, reference: str) -> list[str]:
        card = self.card_of(reference)
        return [m.get("text", "") for m in self.slack.thread(DESK, card["ts"])] if card else []

    async def cases(self) -> list[Case]:
        engine = db.create_engine(self.settings.database_url)
        async with db.session_factory(engine)() as session:
            found = list((await session.execute(select(Case).order_by(Case.id))).scalars())
        await engine.dispose()
        return found

    async def scalars(self, query: Any) -> list[Any]:
        engine = db.create_engine(self.settings.database_url)
        async with db.session_factory(engine)() as session:
            found = list((await session.execute(query)).scalars())
        await engine.dispose()
        return found

    async def handled(self, count: int) -> None:
        """Wait until ``count`` messages in the inbox are flagged as handled.

        Up to 60 s: mail that lands in the instant between the poller's look and its IDLE
        is announced only at Dovecot's own check of an idling mailbox (every 30 s), still
        long before the next poll (600 s in the IDLE test)."""

        # The IMAP look runs in a thread: the service shares this event loop.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            flags = await asyncio.to_thread(self.dovecot.flags)
            if sum(HANDLED in f for f in flags.values()) >= count:
                return
            assert asyncio.get_running_loop().time() < deadline, f"{count} emails not flagged"
            await asyncio.sleep(0.05)

    async def press(self, action: str, reference: str) -> int:
        card = self.card_of(reference)
        assert card is not None
        body = block_action_body(
            action, reference, user_id="U1", user_name="sam", channel_id=DESK, message_ts=card["ts"]
        )
        url = f"http://127.0.0.1:{self.settings.http_port}/slack/events"
        return (await post_signed(url, body, SECRET)).status

    async def submit(self, callback: str, values: dict[str, Any], reference: str) -> int:
        body = submission(callback, values, reference)
        url = f"http://127.0.0.1:{self.settings.http_port}/slack/events"
        return (await post_signed(url, body, SECRET)).status


@asynccontextmanager
async def service(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder, **changes: Any
) -> AsyncIterator[Mail]:
    changes = {"imap_poll_seconds": 0.1, **changes}
    async with FakeTelegram() as tg, FakeSlack() as slack:
        settings = settings_for(
            tg,
            database_url,
            slack_bot_token=slack.token,
            slack_signing_secret=SECRET,
            slack_channel_id=DESK,
            slack_api_url=slack.base_url,
            outbox_poll_seconds=0.05,
            outbox_backoff_seconds=0.05,
            outbox_backoff_cap_seconds=0.2,
            timer_seconds=0.05,
            imap_url=dovecot.url,
            smtp_url=smtp.url,
            **changes,
        )
        async with running(settings, tg):
            yield Mail(settings, slack, dovecot, smtp, tg)


def only_ack(smtp: SmtpRecorder) -> EmailMessage:
    (message,) = smtp.messages
    return message


async def test_new_email_becomes_a_case_a_card_and_an_acknowledgement(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    dovecot.deliver(eml("outlook_new_dsl.eml"))
    async with service(database_url, dovecot, smtp) as m:
        await m.handled(1)
        (case,) = await m.cases()
        await until(lambda: m.card_of(case.reference) is not None, "the case's card")
        blob = json.dumps(m.card_of(case.reference))
        assert "Fake TikTok account impersonating a member of staff" in blob
        assert "jane.smith" not in blob, "the card never shows contact details"
        await smtp.wait_for(1)
        ack = only_ack(smtp)
        assert ack["To"] == "jane.smith@hilltop.sch.uk"
        assert ack["From"].addresses[0].addr_spec == USER
        assert (
            ack["Subject"]
            == f"Re: [{case.reference}] Fake TikTok account impersonating a member of staff"
        )
        assert ack["Auto-Submitted"] == "auto-replied"
        assert ack["In-Reply-To"] == "<DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.outlook.com>"
        stored = await m.scalars(
            select(EmailRecord.message_id).where(EmailRecord.direction == "out")
        )
        assert stored == [ack["Message-ID"]]
        body = text_of(ack)
        assert "You are: DSL" in body and "Setting: Primary" in body
        assert "reply by" in body, "an honest reply time from the working calendar"
        assert "TikTok" in body.split("Reported to the platform")[1], "self-help for TikTok"
    assert b"\\Seen" not in dovecot.flags()[1], "people reading the mailbox still see it unread"


async def test_reply_is_a_follow_up_and_the_practitioner_answers_by_email(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    dovecot.deliver(eml("outlook_new_dsl.eml"))
    async with service(database_url, dovecot, smtp) as m:
        ack = (await smtp.wait_for(1))[0]
        (case,) = await m.cases()
        await until(lambda: m.card_of(case.reference) is not None, "the card")
        reply = (
            eml("gmail_reply.eml")
            .replace(b"<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>", ack["Message-ID"].encode())
            .replace(b"HL-ABCDEF", case.reference.encode())
        )
        await asyncio.to_thread(dovecot.deliver, reply)
        await until(
            lambda: any("mrs_fake_two" in t for t in m.thread_texts(case.reference)),
            "the follow-up in the case's thread",
        )
        assert not any("wrote:" in t for t in m.thread_texts(case.reference))
        assert len(await m.cases()) == 1 and len(m.cards()) == 1

        assert await m.press("claim", case.reference) == 200
        await until(lambda: any("Claimed" in json.dumps(c) for c in m.cards()), "the claim")
        assert await m.press("reply", case.reference) == 200
        await m.slack.wait_for(lambda s: s.last_view is not None)
        text = "Thanks <Jane> & team: we've asked TikTok to remove both accounts."
        values = reply_values(text)
        assert await m.submit("reply_modal", values, case.reference) == 200
        await smtp.wait_for(2)
        answer = smtp.messages[1]
        assert answer["To"] == "jane.smith@hilltop.sch.uk"
        assert (
            answer["Subject"]
            == f"Re: [{case.reference}] Fake TikTok account impersonating a member of staff"
        )
        assert answer["In-Reply-To"] == "<CAFx8zP4a1Bq=reply1@mail.gmail.com>"
        references = answer["References"].split()
        assert references[0] == "<DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.outlook.com>"
        assert ack["Message-ID"] in references
        assert answer["Auto-Submitted"] is None, "a person wrote this one"
        assert text in text_of(answer)
        assert "Thanks &lt;Jane&gt; &amp; team" in html_of(answer), "escaped in the HTML part"
        await until(
            lambda: any("Sent to the enquirer" in t for t in m.thread_texts(case.reference)),
            "the reply logged in the thread",
        )
        await asyncio.sleep(0)  # the claimed notice is not sent by email unless asked for
        assert len(smtp.messages) == 2


async def test_robots_are_never_acknowledged_and_the_backlog_goes_in_order(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    dovecot.deliver(
        eml("out_of_office.eml"),
        eml("no_message_id.eml"),
        eml("mailing_list.eml"),
        eml("bounce_dsn.eml"),
        eml("html_only.eml"),
        eml("ooo_x_autoreply.eml"),
        eml("windows1252.eml"),
    )
    async with service(database_url, dovecot, smtp) as m:
        await m.handled(7)
        cases = await m.cases()
        assert [c.subject for c in cases] == [
            "Group chat bullying on WhatsApp",
            "Hate speech video about our college on YouTube",
            "Pupil’s photo shared on Facebook – café group",
        ]
        await smtp.wait_for(3)
        await until(lambda: len(m.cards()) == 3, "three cards")
        sent = [msg["To"] for msg in smtp.messages]
        assert sent == [
            "chris.lee@hillside.sch.uk",
            "priya.patel@northfield.ac.uk",
            "renee@stmarys.sch.uk",
        ]


async def test_moved_to_a_done_folder_when_configured(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    dovecot.deliver(eml("no_message_id.eml"))
    async with service(database_url, dovecot, smtp, imap_done_folder="Handled"):
        deadline = asyncio.get_running_loop().time() + 30
        while await asyncio.to_thread(dovecot.count, "Handled") != 1:
            assert asyncio.get_running_loop().time() < deadline, "the email was not moved"
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(dovecot.count, "INBOX") == 0
        await smtp.wait_for(1)


async def test_smtp_refusing_then_accepting_sends_once(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    smtp.handler.refuse_next = 3
    dovecot.deliver(eml("no_message_id.eml"))
    async with service(database_url, dovecot, smtp) as m:
        await smtp.wait_for(1)

        async def ack_done() -> bool:
            rows = await m.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "enquirer.message")
            )
            return bool(rows) and all(r.sent_at is not None for r in rows)

        deadline = asyncio.get_running_loop().time() + 20
        while not await ack_done():
            assert asyncio.get_running_loop().time() < deadline, "the outbox row was not closed"
            await asyncio.sleep(0.05)
        (row,) = await m.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "enquirer.message")
        )
        assert row.attempts == 4
    assert len(smtp.messages) == 1
    assert smtp.handler.refuse_next == 0


async def test_reply_to_an_address_that_does_not_exist_is_marked_in_the_thread(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    smtp.handler.refuse_recipients.add("chris.lee@hillside.sch.uk")
    dovecot.deliver(eml("no_message_id.eml"))
    async with service(database_url, dovecot, smtp) as m:
        await m.handled(1)
        (case,) = await m.cases()
        await until(lambda: m.card_of(case.reference) is not None, "the card")
        assert await m.press("claim", case.reference) == 200
        await until(lambda: any("Claimed" in json.dumps(c) for c in m.cards()), "the claim")
        assert await m.press("reply", case.reference) == 200
        await m.slack.wait_for(lambda s: s.last_view is not None)
        values = reply_values("Can you call us?")
        assert await m.submit("reply_modal", values, case.reference) == 200
        await until(
            lambda: any("Could not deliver" in t for t in m.thread_texts(case.reference)),
            "the failed reply noted in the thread",
        )
    assert smtp.messages == []


async def test_a_20_mb_email_is_refused_politely_without_being_downloaded(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    raw = eml("multipart_images_pdf.eml")
    head, _, _ = raw.partition(b"\r\n\r\n")
    huge = head.replace(b'boundary="mixed"', b'boundary="big"') + (
        b"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b"--big\r\nContent-Type: video/mp4\r\nContent-Disposition: attachment; filename=v.mp4\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUFB" * 5_000_000 + b"\r\n--big--\r\n"
    )
    assert len(huge) > 20_000_000
    dovecot.deliver(huge)
    async with service(database_url, dovecot, smtp) as m:
        await m.handled(1)
        (refusal,) = await smtp.wait_for(1)
        assert refusal["To"] == "mark.jones@oakwood.sch.uk"
        assert "too large" in text_of(refusal)
        assert await m.cases() == []
    # Dovecot's own account of each session: no message body was ever fetched.
    fetched = [int(n) for n in re.findall(r"body_bytes=(\d+)", dovecot.log())]
    assert fetched and not any(fetched), fetched


async def test_claimed_and_resolved_notices_go_by_email_when_asked_for(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    dovecot.deliver(eml("no_message_id.eml"))
    async with service(database_url, dovecot, smtp, email_notices=True) as m:
        await m.handled(1)
        (case,) = await m.cases()
        await until(lambda: m.card_of(case.reference) is not None, "the card")
        await smtp.wait_for(1)
        assert await m.press("claim", case.reference) == 200
        (_, claimed) = await smtp.wait_for(2)
        assert "picked up your enquiry" in text_of(claimed)
        assert claimed["Subject"] == f"Re: [{case.reference}] Group chat bullying on WhatsApp"
        outcome = {
            "outcome": {"value": {"type": "static_select", "selected_option": {"value": "advice"}}},
            "note": {"text": {"type": "plain_text_input", "value": ""}},
        }
        assert await m.submit("resolve_modal", outcome, case.reference) == 200
        resolved = (await smtp.wait_for(3))[2]
        assert "reply to this email" in text_of(resolved)
        assert "type start" not in text_of(resolved)


async def test_new_mail_is_read_at_once_with_idle_not_at_the_next_poll(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    # A poll interval far longer than the wait below: only IDLE can bring the mail in.
    async with service(database_url, dovecot, smtp, imap_poll_seconds=600) as m:
        await asyncio.to_thread(dovecot.deliver, eml("no_message_id.eml"))
        await m.handled(1)
        await smtp.wait_for(1)
        await asyncio.to_thread(dovecot.deliver, eml("html_only.eml"))
        await m.handled(2)
        assert len(await m.cases()) == 2


async def ask_for_copy(tg: FakeTelegram, chat: int) -> list[str]:
    """Press "Send me a copy" on the latest message offering it (the confirmation; the
    "while you wait" advice follows it)."""
    for message in reversed(tg.bot_messages(chat)):
        markup = message.get("reply_markup") or {}
        for button in [b for row in markup.get("inline_keyboard", []) for b in row]:
            if button["text"] == "Send me a copy":
                before, handled = len(tg.sent_texts(chat)), next_handled(tg)
                tg.push_callback(chat, button["callback_data"])
                return await replies_settle(tg, chat, before, handled)
    raise AssertionError("no message offers a copy")


async def test_a_telegram_enquirer_gets_their_copy_by_email_and_can_answer_it(
    database_url: str, dovecot: Dovecot, smtp: SmtpRecorder
) -> None:
    async with service(database_url, dovecot, smtp) as m:
        chat = 5150
        for text in (*PROFESSIONAL_TO_REVIEW, "send"):
            await say(m.telegram, chat, text)
        (case,) = await m.cases()
        said = await ask_for_copy(m.telegram, chat)
        assert "I'm emailing it to d…@school.example.org.uk too." in said[-1]
        (copy,) = await smtp.wait_for(1)
        assert copy["To"] == "dsl@school.example.org.uk"
        assert copy["Message-ID"] == f"<hl-{case.reference}-copy@helpline.test>"
        assert "edited photos of staff" in text_of(copy)
        said = await ask_for_copy(m.telegram, chat)
        assert "It was emailed to d…@school.example.org.uk already." in said[-1]

        # "To add to your enquiry, reply to this email": the reply reaches the case's thread.
        reply = EmailMessage()
        reply["From"] = "Sam Jones <dsl@school.example.org.uk>"
        reply["To"] = USER
        reply["Subject"] = f"Re: {copy['Subject']}"
        reply["Message-ID"] = "<sam-reply-1@school.example.org.uk>"
        reply["In-Reply-To"] = copy["Message-ID"]
        reply.set_content("The account has changed its name to @fake_school_two.")
        await asyncio.to_thread(dovecot.deliver, reply.as_bytes())
        await until(
            lambda: any("fake_school_two" in t for t in m.thread_texts(case.reference)),
            "the answer to the copy in the case's thread",
        )
        assert len(await m.cases()) == 1
    assert len(smtp.messages) == 1
