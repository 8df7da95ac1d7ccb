"""One email in, one transaction: a case, a follow-up on one, or a record of junk.

The mailbox poller (:mod:`bot.email.mailbox`) hands each message here with its place in
the mailbox; it flags the message as handled only after :meth:`EmailIntake.handle`
returns, so the commit always comes first. A message handled before (the same place, or
the same Message-ID under another UID) changes nothing and is only flagged again.

What the email becomes is decided by :func:`bot.email.classify.classify` (never answer a
robot), by threading (a reply to our mail, or our reference in the subject from the same
sender, is a follow-up; one whose first line asks for a copy, from the case's own
address, gets the case emailed back: :func:`flows.mail.copy_request`) and otherwise by
:func:`flows.mail.read_email` (the case, or a signpost, and the acknowledgement).
Everything to send goes through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.email.classify import MailKind, classify
from bot.email.composing import domain_of, message_id
from bot.email.parsing import ParsedEmail, parse_email
from bot.services.urgency import page_oncall, raise_urgency
from flows.conversation import CaseStatus
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
from flows.mail import (
    EmailEnquiry,
    EmailReading,
    FollowUpMail,
    case_copy,
    copy_request,
    read_email,
    read_follow_up,
    reference_in,
    reply_subject,
)
from flows.privacy import AuditChannel
from flows.timing import Expectation, describe_opening, expectation
from flows.turn import Context
from storage import cases as case_store
from storage import conversations as convo_store
from storage import mail as mail_store
from storage import outbox
from storage.models import Case

log = logging.getLogger(__name__)

CHANNEL = mail_store.CHANNEL

OUTCOME_CASE = "case"
OUTCOME_SIGNPOSTED = "signposted"
OUTCOME_FOLLOW_UP = "follow_up"
OUTCOME_COPY = "copy"
"""A reply asking for a copy of the enquiry, which was emailed back."""
OUTCOME_OVERSIZED = "oversized"
OUTCOME_DUPLICATE = "duplicate"


class EmailIntake:
    """Turns fetched emails into cases and follow-ups (see the module docstring)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        flow: IntakeFlow,
        calendar: WorkingCalendar,
        target: timedelta,
        clock: Clock,
        address: str,
        acks_per_hour: int = 3,
        max_bytes: int = 15_000_000,
        new_reference: Callable[[], str] = case_store.new_reference,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        """``address``: the helpline's own (mail from it is never answered)."""
        self._sessions = sessions
        self._flow = flow
        self._calendar = calendar
        self._target = target
        self._clock = clock
        self.address = address.lower()
        self._own = frozenset({self.address})
        self._domain = domain_of(self.address)
        self._acks_per_hour = acks_per_hour
        self.max_bytes = max_bytes
        self._new_reference = new_reference
        self._on_enqueued = on_enqueued

    async def handle(self, raw: bytes, *, mailbox_key: str, oversized: bool = False) -> str:
        """Handle one fetched email (``raw``: all of it, or only its headers when
        ``oversized``); what it became. Commits before returning."""
        mail = parse_email(raw) if not oversized else _headers_only(raw)
        for attempt in range(3):
            try:
                return await self._handle_once(mail, mailbox_key, oversized)
            except IntegrityError:
                # Another poller recorded it first, or a reference collided: look again.
                log.warning("email intake conflict, retrying (attempt %d)", attempt + 1)
        return await self._handle_once(mail, mailbox_key, oversized)

    async def _handle_once(self, mail: ParsedEmail, mailbox_key: str, oversized: bool) -> str:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            found = await mail_store.seen(
                session, mailbox_key=mailbox_key, message_id=mail.message_id, sender=mail.sender
            )
            if found is mail_store.Seen.HANDLED:
                return OUTCOME_DUPLICATE
            if found is mail_store.Seen.ID_TAKEN:
                mail = replace(mail, message_id=None)
            kind = classify(mail, self._own)
            if kind is not MailKind.PERSON:
                if kind is MailKind.BOUNCE:
                    await self._bounced(session, mail, now)
                self._record(session, mail, mailbox_key, kind.value, now)
                log.info("email not answered: %s", kind.value)
                outcome = kind.value
            elif case := await self._thread(session, mail):
                outcome = await self._follow_up(session, mail, case, now, oversized)
                self._record(session, mail, mailbox_key, outcome, now, case.id)
            elif oversized:
                outcome = await self._refuse_oversized(session, mail, mailbox_key, now)
            else:
                outcome = await self._new_case(session, mail, mailbox_key, now)
        self._on_enqueued()
        return outcome

    # What an email becomes ------------------------------------------------------------

    async def _thread(self, session: AsyncSession, mail: ParsedEmail) -> Case | None:
        """The open or closed case this email answers, if it answers one of ours."""
        case_id = await mail_store.case_for_thread(session, mail.thread_ids)
        case = await session.get(Case, case_id) if case_id is not None else None
        if case is None and (reference := reference_in(mail.subject)):
            found = await mail_store.case_by_reference(session, reference)
            # A reference alone is easy to copy: it threads only from the case's own sender.
            if found is not None and (found.contact_email or "").lower() == mail.sender:
                case = found
        if case is None or case.status is CaseStatus.SIGNPOSTED:
            return None  # a signposted record has no desk thread: read it afresh
        return case

    async def _follow_up(
        self, session: AsyncSession, mail: ParsedEmail, case: Case, now: datetime, oversized: bool
    ) -> str:
        copy = self._flow.copy
        text = mail.text.strip() or copy("email.no_subject")
        if oversized:
            text = copy("email.oversized", limit=self._limit_mb())
        _add_turn(session, case, "enquirer", text, now)
        outcome = OUTCOME_FOLLOW_UP
        rest = None if oversized else copy_request(self._flow, text)
        if rest is not None and await self._send_copy(session, mail, case, now):
            outcome, text = OUTCOME_COPY, rest
        if text:
            note = outbox.desk_note("email.follow_up_thread", text=text)
            outbox.enqueue(session, outbox.SLACK_THREAD, now=now, case_id=case.id, payload=note)
        if mail.attachments:
            refused = outbox.desk_note("email.follow_up_attachments", count=str(mail.attachments))
            outbox.enqueue(session, outbox.SLACK_THREAD, now=now, case_id=case.id, payload=refused)
        await self._answer_follow_up(session, mail, case, now, oversized)
        log.info("email %s on case %s", outcome.replace("_", "-"), case.reference)
        return outcome

    async def _answer_follow_up(
        self, session: AsyncSession, mail: ParsedEmail, case: Case, now: datetime, oversized: bool
    ) -> None:
        """Risk in a reply makes its case urgent and is answered with 999 and the crisis
        lines; attachments refused, or a reply too large to read, are explained. Any other
        reply is only added to its case."""
        open_now = self._calendar.is_open(now)
        reading = read_follow_up(
            self._flow,
            FollowUpMail(
                text="" if oversized else mail.text,
                enquirer_type=case.enquirer_type,
                attachments=mail.attachments,
                too_large_mb=self._limit_mb() if oversized else None,
                opens=None if open_now else self._opens(now),
            ),
            Context(now=now, reference=case.reference),
        )
        raise_urgency(session, case, reading.risks, now, open_now=open_now, copy=self._flow.copy)
        if reading.text is None:
            return
        subject = reply_subject(self._flow, case.reference, case.subject)
        token = f"{case.reference}-follow-up"
        if await self._send_automatic(session, mail, case.id, subject, reading.text, now, token):
            _add_turn(session, case, "bot", reading.text, now)

    def _opens(self, now: datetime) -> str:
        """When the helpline opens next, as the enquirer reads it."""
        opening = self._calendar.next_open(now)
        return describe_opening(self._calendar, opening, now, self._flow.copy)

    async def _send_copy(
        self, session: AsyncSession, mail: ParsedEmail, case: Case, now: datetime
    ) -> bool:
        """The case's copy by email (audited), to the address the case came from only: an
        acknowledgement forwarded to a colleague must not let them ask for the enquiry.
        Whether it was queued (not for an erased case, nor past the hourly limit)."""
        if case.erased_at is not None or (case.contact_email or "").lower() != mail.sender:
            return False
        loaded = await case_store.get_case(session, case.reference)  # with its categories
        email = case_copy(self._flow, case_store.as_draft(loaded)) if loaded else None
        if email is None or not await self._send_automatic(
            session,
            mail,
            case.id,
            email.subject,
            email.text,
            now,
            f"{case.reference}-copy",
            "copy",
            copy_asked_on=AuditChannel.EMAIL,
        ):
            return False
        _add_turn(session, case, "bot", email.text, now)
        return True

    async def _new_case(
        self, session: AsyncSession, mail: ParsedEmail, mailbox_key: str, now: datetime
    ) -> str:
        timing = expectation(self._calendar, now, self._target, self._flow.copy)
        context = Context.expecting(timing, now=now, reference=self._new_reference())
        body = "\n\n".join(p for p in (mail.text, mail.signature) if p.strip())
        enquiry = EmailEnquiry(
            subject=mail.subject,
            body=body,
            sender=mail.sender,
            sender_name=mail.sender_name,
            attachments=mail.attachments,
        )
        reading = read_email(self._flow, enquiry, context)
        case = await self._create(session, reading, mail, now, timing)
        outcome = OUTCOME_SIGNPOSTED if reading.signposted else OUTCOME_CASE
        self._record(session, mail, mailbox_key, outcome, now, case.id)
        await session.flush()  # theirs before ours: the order of a reply's References
        await self._acknowledge(session, mail, reading, case, now)
        log.info("email became %s %s", outcome, case.reference)
        return outcome

    async def _create(
        self,
        session: AsyncSession,
        reading: EmailReading,
        mail: ParsedEmail,
        now: datetime,
        timing: Expectation,
    ) -> Case:
        draft = reading.draft
        if reading.signposted:
            case = case_store.create_case(session, draft, channel=CHANNEL)
            await session.flush()
            return case
        chat = await convo_store.load_for_update(
            session, CHANNEL, mail_store.chat_of(mail.sender), now
        )
        case = case_store.create_case(
            session,
            draft,
            channel=CHANNEL,
            conversation_id=chat.id,
            due_at=timing.due_at,
            in_hours=timing.open_now,
        )
        case.remind_at = self._calendar.add_working_time(now, self._target / 2)
        await session.flush()
        turns = [("enquirer", "text", draft.description or draft.subject or "")]
        if mail.attachments:
            turns.append(("enquirer", "attachment_refused", str(mail.attachments)))
        turns.append(("bot", "text", reading.text))
        for sender, kind, text in turns:
            _add_turn(session, case, sender, text, now, kind)
        outbox.enqueue(session, outbox.SLACK_CARD, now=now, case_id=case.id)
        if case.urgent and not timing.open_now:
            page_oncall(session, case, now)
        return case

    async def _acknowledge(
        self,
        session: AsyncSession,
        mail: ParsedEmail,
        reading: EmailReading,
        case: Case,
        now: datetime,
    ) -> bool:
        """Queue the acknowledgement, unless this sender has had enough of them lately."""
        return await self._send_automatic(
            session, mail, case.id, reading.subject, reading.text, now, f"{case.reference}-ack"
        )

    async def _refuse_oversized(
        self, session: AsyncSession, mail: ParsedEmail, mailbox_key: str, now: datetime
    ) -> str:
        copy = self._flow.copy
        subject = copy("email.oversized_subject", subject=mail.subject or copy("email.no_subject"))
        text = copy("email.oversized", limit=self._limit_mb())
        sent = await self._send_automatic(session, mail, None, subject, text, now, "too-large")
        self._record(session, mail, mailbox_key, OUTCOME_OVERSIZED, now, acknowledged=sent)
        log.info("email refused: over the size limit")
        return OUTCOME_OVERSIZED

    async def _send_automatic(
        self,
        session: AsyncSession,
        mail: ParsedEmail,
        case_id: int | None,
        subject: str,
        text: str,
        now: datetime,
        token: str,
        outcome: str = "acknowledgement",
        *,
        copy_asked_on: AuditChannel | None = None,
    ) -> bool:
        """Queue an automatic email in answer to ``mail``, unless its sender has had
        ``acks_per_hour`` of them in the last hour (a loop guard); whether it was queued."""
        hour_ago = now - timedelta(hours=1)
        if await mail_store.acknowledgements_since(session, mail.sender, hour_ago) >= (
            self._acks_per_hour
        ):
            log.info("acknowledgement skipped: sender over the hourly limit")
            return False
        await mail_store.queue_email(
            session,
            to=mail.sender,
            subject=subject,
            text=text,
            message_id=message_id(f"{token}-{uuid4().hex[:12]}", self._domain),
            case_id=case_id,
            outcome=outcome,
            at=now,
            in_reply_to=mail.message_id or "",
            references=mail.references,
            acknowledged=True,
            copy_asked_on=copy_asked_on.value if copy_asked_on else None,
        )
        return True

    async def _bounced(self, session: AsyncSession, mail: ParsedEmail, now: datetime) -> None:
        """A delivery failure report for one of our emails: tell the case's thread."""
        returned = await mail_store.ours(session, (*mail.returned_ids, *mail.thread_ids))
        if returned is None or returned.case_id is None:
            return
        note = outbox.desk_note("email.bounced_thread")
        outbox.enqueue(
            session, outbox.SLACK_THREAD, now=now, case_id=returned.case_id, payload=note
        )

    # Bookkeeping ----------------------------------------------------------------------

    def _record(
        self,
        session: AsyncSession,
        mail: ParsedEmail,
        mailbox_key: str,
        outcome: str,
        now: datetime,
        case_id: int | None = None,
        *,
        acknowledged: bool = False,
    ) -> None:
        mail_store.record_inbound(
            session,
            mailbox_key=mailbox_key,
            message_id=mail.message_id,
            outcome=outcome,
            at=now,
            case_id=case_id,
            sender=mail.sender or None,
            acknowledged=acknowledged,
        )

    def _limit_mb(self) -> str:
        return f"{self.max_bytes / 1_000_000:g}"


def _headers_only(raw: bytes) -> ParsedEmail:
    """An oversized email read from its headers alone (its body is never fetched)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    parsed = parse_email(head + b"\r\n\r\n")
    return parsed


def _add_turn(
    session: AsyncSession, case: Case, sender: str, text: str, at: datetime, kind: str = "text"
) -> None:
    """A message by email, to or from the enquirer, in the case's transcript."""
    convo_store.add_turn(
        session,
        conversation_id=case.conversation_id,
        case_id=case.id,
        sender=sender,
        text=text,
        at=at,
        kind=kind,
    )
