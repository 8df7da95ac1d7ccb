"""One email, one transaction: what each kind of email becomes in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.email.intake import EmailIntake
from storage import outbox
from storage.models import Case, EmailRecord, OutboxMessage, TranscriptEntry
from tests.support.audit import trail
from tests.support.intake import email_intake

CORPUS = Path(__file__).parent / "corpus"
OWN = "helpline@helpline.test"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # a Wednesday, open

    def __call__(self) -> datetime:
        return self.now


def intake_for(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, **changes: object
) -> EmailIntake:
    return email_intake(sessions, OWN, clock=clock, **changes)


def eml(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


Row = TypeVar("Row", Case, EmailRecord, OutboxMessage, TranscriptEntry)


async def rows(sessions: async_sessionmaker[AsyncSession], model: type[Row]) -> list[Row]:
    async with sessions() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def acknowledgements(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    return [r for r in await rows(sessions, OutboxMessage) if r.kind == outbox.ENQUIRER_MESSAGE]


async def dsl_case_acknowledged(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[EmailIntake, OutboxMessage]:
    """Jane's new email (a DSL at a primary) made into a case, and our acknowledgement."""
    intake = intake_for(sessions, Clock())
    await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="I:1:1")
    (ack,) = await acknowledgements(sessions)
    return intake, ack


async def test_new_email_becomes_a_case_with_card_and_acknowledgement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    assert await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="INBOX:1:1") == "case"
    (case,) = await rows(sessions, Case)
    assert case.channel == "email" and case.status == "new"
    assert case.subject == "Fake TikTok account impersonating a member of staff"
    assert (case.enquirer_type, case.setting, case.platform) == ("DSL", "Primary", "TikTok")
    assert case.contact_email == "jane.smith@hilltop.sch.uk"
    assert "https://www.tiktok.com/@mrs_fake_teacher" in case.links
    assert case.due_at is not None and case.conversation_id is not None
    kinds = [r.kind for r in await rows(sessions, OutboxMessage)]
    assert kinds == [outbox.SLACK_CARD, outbox.ENQUIRER_MESSAGE]
    (ack,) = await acknowledgements(sessions)
    assert ack.payload["to"] == "jane.smith@hilltop.sch.uk" and ack.payload["automatic"]
    assert ack.payload["subject"].startswith(f"Re: [{case.reference}] Fake TikTok")
    assert (
        ack.payload["in_reply_to"] == "<DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.outlook.com>"
    )
    records = await rows(sessions, EmailRecord)
    assert {(r.direction, r.outcome) for r in records} == {
        ("out", "acknowledgement"),
        ("in", "case"),
    }
    assert all("hilltop" not in (r.sender_key or "") for r in records), "addresses only hashed"


async def test_the_same_email_twice_is_one_case(sessions: async_sessionmaker[AsyncSession]) -> None:
    intake = intake_for(sessions, Clock())
    assert await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="INBOX:1:1") == "case"
    assert await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="INBOX:1:1") == "duplicate"
    # The same Message-ID under another UID (copied back, or a second delivery) too.
    assert await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="INBOX:1:7") == "duplicate"
    assert len(await rows(sessions, Case)) == 1
    assert len(await acknowledgements(sessions)) == 1


async def test_reply_to_our_acknowledgement_is_a_follow_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake, ack = await dsl_case_acknowledged(sessions)
    reply = eml("gmail_reply.eml").replace(
        b"<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>", ack.payload["message_id"].encode()
    )
    assert await intake.handle(reply, mailbox_key="INBOX:1:2") == "follow_up"
    assert len(await rows(sessions, Case)) == 1
    notes = [r for r in await rows(sessions, OutboxMessage) if r.kind == outbox.SLACK_THREAD]
    assert len(notes) == 1
    assert "mrs_fake_two" in notes[0].payload["values"]["text"]
    assert "wrote:" not in notes[0].payload["values"]["text"], "quoted history stripped"
    assert len(await acknowledgements(sessions)) == 1, "a follow-up is not acknowledged again"


async def test_reference_in_subject_threads_only_from_the_same_sender(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="INBOX:1:1")
    (case,) = await rows(sessions, Case)
    outlook = eml("outlook_reply.eml").replace(b"HL-ABCDEF", case.reference.encode())
    assert await intake.handle(outlook, mailbox_key="INBOX:1:2") == "follow_up"
    stranger = outlook.replace(b"jane.smith@hilltop.sch.uk", b"someone@else.example").replace(
        b"<DB9PR01MB5678@", b"<other@"
    )
    assert await intake.handle(stranger, mailbox_key="INBOX:1:3") == "case"
    assert len(await rows(sessions, Case)) == 2


async def test_robots_are_recorded_never_answered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    expected = {
        "out_of_office.eml": "auto_reply",
        "ooo_x_autoreply.eml": "auto_reply",
        "bounce_dsn.eml": "bounce",
        "mailing_list.eml": "list",
        "bulk_newsletter.eml": "list",
        "own_mail.eml": "own",
        "malformed_headers.eml": "no_sender",
    }
    for uid, (name, outcome) in enumerate(expected.items(), start=1):
        assert await intake.handle(eml(name), mailbox_key=f"INBOX:1:{uid}") == outcome
    assert await rows(sessions, Case) == []
    assert await rows(sessions, OutboxMessage) == []
    assert len(await rows(sessions, EmailRecord)) == len(expected)


async def test_bounce_of_our_mail_is_noted_in_the_case_thread(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake, ack = await dsl_case_acknowledged(sessions)
    bounce = eml("bounce_dsn.eml").replace(
        b"<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>", ack.payload["message_id"].encode()
    )
    assert await intake.handle(bounce, mailbox_key="INBOX:1:2") == "bounce"
    notes = [r for r in await rows(sessions, OutboxMessage) if r.kind == outbox.SLACK_THREAD]
    assert [n.payload["say"] for n in notes] == ["email.bounced_thread"]


async def test_acknowledgements_are_limited_per_sender_per_hour(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    intake = intake_for(sessions, clock, acks_per_hour=2)
    raw = eml("no_message_id.eml")
    for uid in range(1, 5):
        await intake.handle(
            raw.replace(b"Year 8", f"Year {uid}".encode()), mailbox_key=f"I:1:{uid}"
        )
    assert len(await rows(sessions, Case)) == 4, "every email is still a case"
    assert len(await acknowledgements(sessions)) == 2
    clock.now += timedelta(hours=1, minutes=1)
    await intake.handle(raw, mailbox_key="I:1:9")
    assert len(await acknowledgements(sessions)) == 3


async def test_child_gets_a_signpost_and_only_a_signposted_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    assert await intake.handle(eml("child.eml"), mailbox_key="INBOX:1:1") == "signposted"
    (case,) = await rows(sessions, Case)
    assert case.status == "signposted" and case.enquirer_type == "Child (12-18)"
    assert (case.description, case.contact_email, case.subject) == (None, None, None)
    assert await rows(sessions, TranscriptEntry) == []
    (ack,) = await acknowledgements(sessions)
    assert "0800 1111" in ack.payload["text"] and "childline.org.uk/remove" in ack.payload["text"]
    kinds = [r.kind for r in await rows(sessions, OutboxMessage)]
    assert outbox.SLACK_CARD not in kinds


async def test_risk_makes_the_case_urgent_with_999_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    await intake.handle(eml("risk.eml"), mailbox_key="INBOX:1:1")
    (case,) = await rows(sessions, Case)
    assert case.urgent
    (ack,) = await acknowledgements(sessions)
    assert ack.payload["text"].startswith("If a child is in immediate danger, call 999")


async def test_attachments_are_counted_never_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    await intake.handle(eml("multipart_images_pdf.eml"), mailbox_key="INBOX:1:1")
    turns = await rows(sessions, TranscriptEntry)
    refused = [t for t in turns if t.kind == "attachment_refused"]
    assert [t.text for t in refused] == ["2"]
    assert not any("PNG" in t.text or "PDF-1.4" in t.text for t in turns)
    (ack,) = await acknowledgements(sessions)
    assert "2 attachment(s)" in ack.payload["text"]


async def test_oversized_email_is_refused_politely(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    head = eml("no_message_id.eml").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert await intake.handle(head, mailbox_key="INBOX:1:1", oversized=True) == "oversized"
    assert await rows(sessions, Case) == []
    (ack,) = await acknowledgements(sessions)
    assert "too large" in ack.payload["text"]


async def test_retention_erases_the_mailbox_bookkeeping_too(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from storage.retention import purge_before

    clock = Clock()
    intake = intake_for(sessions, clock)
    await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="INBOX:1:1")
    assert len(await rows(sessions, EmailRecord)) == 2
    async with sessions() as session, session.begin():
        await purge_before(session, clock.now + timedelta(seconds=1))
    assert await rows(sessions, EmailRecord) == []


async def test_a_reused_message_id_from_another_sender_is_not_taken_for_a_copy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock())
    first = eml("outlook_new_dsl.eml")
    other = first.replace(b"Jane.Smith@hilltop.sch.uk", b"someone@other.example")
    assert await intake.handle(first, mailbox_key="INBOX:1:1") == "case"
    assert await intake.handle(other, mailbox_key="INBOX:1:2") == "case"
    assert len(await rows(sessions, Case)) == 2


def reply_saying(
    ack: OutboxMessage, body: str, sender: bytes = b"jane.smith@hilltop.sch.uk"
) -> bytes:
    """Jane's reply to our acknowledgement, saying ``body`` (above the quoted history)."""
    raw = eml("gmail_reply.eml").replace(
        b"<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>", ack.payload["message_id"].encode()
    )
    raw = raw.replace(b"jane.smith@hilltop.sch.uk", sender)
    own = b"Thanks. A second account has appeared: https://www.tiktok.com/@mrs_fake_two"
    return raw.replace(own, body.encode())


async def test_the_acknowledgement_says_how_to_get_a_copy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await intake_for(sessions, Clock()).handle(eml("outlook_new_dsl.eml"), mailbox_key="I:1:1")
    (ack,) = await acknowledgements(sessions)
    assert "reply with the word COPY" in ack.payload["text"]


async def test_replying_copy_gets_the_case_emailed_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake, ack = await dsl_case_acknowledged(sessions)
    reply = reply_saying(ack, "COPY please\n\nThanks\nJane")
    assert await intake.handle(reply, mailbox_key="I:1:2") == "copy"
    (case,) = await rows(sessions, Case)
    _, copy = await acknowledgements(sessions)
    assert copy.case_id == case.id and copy.payload["to"] == "jane.smith@hilltop.sch.uk"
    assert copy.payload["subject"] == f"[{case.reference}] A copy of your enquiry"
    assert copy.payload["in_reply_to"] == "<CAFx8zP4a1Bq=reply1@mail.gmail.com>"
    text = copy.payload["text"]
    assert f"Here is a copy of what we recorded for enquiry {case.reference}" in text
    assert case.description and case.description in text, "the description whole"
    assert "Fake TikTok account impersonating a member of staff" in text
    assert "DSL" in text and "https://www.tiktok.com/@mrs_fake_teacher" in text
    notes = [r for r in await rows(sessions, OutboxMessage) if r.kind == outbox.SLACK_THREAD]
    assert notes == [], "a request for a copy is not news for the desk"
    assert copy.payload["copy_asked_on"] == "email"  # audited as sent by the sender
    assert await trail(sessions) == []


async def test_a_copy_request_with_more_to_say_goes_to_the_thread_as_well(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake, ack = await dsl_case_acknowledged(sessions)
    news = "A second account has appeared today and it is posting about the head teacher too."
    reply = reply_saying(ack, f"Please send me a copy.\n{news}")
    assert await intake.handle(reply, mailbox_key="I:1:2") == "copy"
    assert len(await acknowledgements(sessions)) == 2
    (note,) = [r for r in await rows(sessions, OutboxMessage) if r.kind == outbox.SLACK_THREAD]
    assert note.payload["values"]["text"] == news


async def test_copy_from_anyone_but_the_cases_own_address_is_only_a_follow_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """An acknowledgement forwarded to a colleague must not let them ask for the enquiry."""
    intake, ack = await dsl_case_acknowledged(sessions)
    reply = reply_saying(ack, "copy", sender=b"colleague@hilltop.sch.uk")
    assert await intake.handle(reply, mailbox_key="I:1:2") == "follow_up"
    assert len(await acknowledgements(sessions)) == 1
    assert await trail(sessions) == []


async def test_copies_by_email_keep_to_the_hourly_limit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = intake_for(sessions, Clock(), acks_per_hour=2)
    await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="I:1:1")
    (ack,) = await acknowledgements(sessions)
    outcomes = [
        await intake.handle(
            reply_saying(ack, "copy").replace(b"reply1@", f"reply{uid}@".encode()),
            mailbox_key=f"I:1:{uid}",
        )
        for uid in (2, 3)
    ]
    assert outcomes == ["copy", "follow_up"], "past the limit it is a note for the desk"
    assert len(await acknowledgements(sessions)) == 2


def alerts(outbox_rows: list[OutboxMessage]) -> list[OutboxMessage]:
    return [r for r in outbox_rows if r.kind == outbox.SLACK_POST]


async def test_risk_in_a_reply_makes_its_case_urgent_and_is_answered_999_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Safety first in any message: a DSL's reply saying a pupil will harm himself."""
    intake, ack = await dsl_case_acknowledged(sessions)
    risky = "Update: the boy has now told a friend he wants to kill himself tonight."
    assert await intake.handle(reply_saying(ack, risky), mailbox_key="I:1:2") == "follow_up"
    (case,) = await rows(sessions, Case)
    assert case.urgent
    _, answer = await acknowledgements(sessions)
    text = answer.payload["text"]
    assert text.startswith("If a child is in immediate danger, call 999 now")
    assert "at risk of harming themselves" in text and "Samaritans" in text
    assert "tell your DSL" not in text  # worded for the DSL writing
    assert f"added your email to case {case.reference} and marked it urgent" in text
    assert "closed just now" not in text  # Wednesday 11:00: open
    assert answer.payload["subject"].startswith(f"Re: [{case.reference}]")
    assert answer.payload["in_reply_to"] == "<CAFx8zP4a1Bq=reply1@mail.gmail.com>"
    (alert,) = alerts(await rows(sessions, OutboxMessage))
    assert alert.payload["say"] == "desk.risk_raised" and "target" not in alert.payload  # in hours
    assert alert.payload["values"]["risks"] == "someone in immediate danger, self-harm or suicide"
    card_updates = [r for r in await rows(sessions, OutboxMessage) if r.kind == outbox.SLACK_CARD]
    assert len(card_updates) == 2, "the card is redrawn, marked urgent"

    again = reply_saying(ack, "He is still saying he wants to end his life.")
    again = again.replace(b"<CAFx8zP4a1Bq=reply1@", b"<CAFx8zP4a1Bq=reply2@")
    assert await intake.handle(again, mailbox_key="I:1:3") == "follow_up"
    assert len(alerts(await rows(sessions, OutboxMessage))) == 1, "urgent and open: watched"
    assert len(await acknowledgements(sessions)) == 3, "999 and the crisis lines each time"


async def test_out_of_hours_a_risky_reply_hears_when_the_helpline_opens_and_pages_on_call(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    intake = intake_for(sessions, clock)
    await intake.handle(eml("outlook_new_dsl.eml"), mailbox_key="I:1:1")
    (ack,) = await acknowledgements(sessions)
    clock.now = datetime(2026, 12, 5, 21, 0, tzinfo=UTC)  # Saturday night
    risky = reply_saying(ack, "She has just posted that she will take an overdose tonight.")
    await intake.handle(risky, mailbox_key="I:1:2")
    _, answer = await acknowledgements(sessions)
    assert "closed just now and opens again at 10:00 on Monday 7 December" in answer.payload["text"]
    (alert,) = alerts(await rows(sessions, OutboxMessage))
    assert alert.payload["target"] == "oncall"


async def test_a_plain_reply_raises_nothing_and_gets_no_answer(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake, ack = await dsl_case_acknowledged(sessions)
    await intake.handle(reply_saying(ack, "The account has gone quiet today."), mailbox_key="I:1:2")
    (case,) = await rows(sessions, Case)
    assert not case.urgent and alerts(await rows(sessions, OutboxMessage)) == []
    assert len(await acknowledgements(sessions)) == 1


def reply_with_screenshot(ack: OutboxMessage) -> bytes:
    """Jane's reply to our acknowledgement, with the screenshot she was asked not to send."""
    message = EmailMessage()
    message["From"] = "Jane Smith <jane.smith@hilltop.sch.uk>"
    message["To"] = OWN
    message["Subject"] = "Re: " + ack.payload["subject"]
    message["Message-ID"] = "<screenshot-reply@hilltop.sch.uk>"
    message["In-Reply-To"] = ack.payload["message_id"]
    message.set_content("Here is a screenshot of the account.")
    message.add_attachment(b"\x89PNG\r\n\x1a\n fake", maintype="image", subtype="png")
    return message.as_bytes()


async def test_a_reply_with_attachments_is_told_they_were_not_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake, ack = await dsl_case_acknowledged(sessions)
    assert await intake.handle(reply_with_screenshot(ack), mailbox_key="I:1:2") == "follow_up"
    _, answer = await acknowledgements(sessions)
    assert "Your email had 1 attachment(s). We never open, keep" in answer.payload["text"]
    assert "999" not in answer.payload["text"]
    turns = await rows(sessions, TranscriptEntry)
    assert not any("PNG" in t.text for t in turns)


async def test_a_reply_too_large_to_read_is_told_so(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake, ack = await dsl_case_acknowledged(sessions)
    head = reply_with_screenshot(ack).split(b"\n\n")[0] + b"\n\n"
    assert await intake.handle(head, mailbox_key="I:1:2", oversized=True) == "follow_up"
    _, answer = await acknowledgements(sessions)
    assert "it was too large for us to read" in answer.payload["text"]
