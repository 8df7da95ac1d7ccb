"""The intake service: one path from any channel's inbound message to saved progress.

For each message: take the chat's lock, open one transaction, skip it if this update
was already handled, load the conversation, step the flow, then save the progress, the
transcript and any case it produced together. Channels only translate and render.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock, utcnow
from bot.locks import KeyedLocks
from bot.services.leases import Leases
from bot.services.replies import reply_to_json
from bot.services.urgency import alert_without_case, page_oncall, raise_urgency
from flows.conversation import FINAL_STEPS, CaseStatus, Conversation, Step
from flows.hours import WorkingCalendar
from flows.intake import (
    AttachmentRefused,
    CaseSubmitted,
    Context,
    CopyEmailed,
    CopyShown,
    Effect,
    FollowUp,
    Forget,
    IntakeFlow,
    Signposted,
    StepResult,
)
from flows.links import case_keys
from flows.messages import Command, Inbound, InboundKind, Reply
from flows.privacy import AuditAction, audit_channel
from flows.timing import Expectation, expectation
from storage import audit, outbox, prepared
from storage import cases as case_store
from storage import conversations as convo_store
from storage import inbox as inbox_store
from storage import links as link_store
from storage import mail as mail_store
from storage.conversations import Saved
from storage.models import Case
from storage.privacy import chat_identity

log = logging.getLogger(__name__)
LINKED_NOTES = 20
"""Earlier reports of the same account whose threads hear of a new one (the newest)."""


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """The case a message created or added to, as a channel shows it: its reference and status."""

    reference: str
    status: str


@dataclass(frozen=True, slots=True)
class Handled:
    """What a channel needs to answer one message."""

    replies: tuple[Reply, ...]
    case: CaseInfo | None = None
    duplicate: bool = False
    step: str = ""
    delivery: int | None = None
    """The outbox row holding ``replies`` (when the channel asked for durable replies)."""
    forgot: bool = False
    """The turn deleted what the conversation collected (cancel, restart, signposting):
    a channel that shows its own copy of the conversation deletes that too."""
    fast: bool = False
    """The row is leased to this process: send the replies now, then close the row with
    the :class:`~bot.replies.ReplyLedger`. False: the outbox worker sends them (an earlier
    message to the chat is still waiting, and these must not overtake it)."""


DUPLICATE = Handled(replies=(), duplicate=True)

WithTurn = Callable[[AsyncConnection, tuple[Reply, ...], bool], Awaitable[None]]
"""A channel's own record of a turn (the web chat's numbered messages), given the turn's
replies and whether it forgot the conversation; written in the turn's transaction, so a
crash keeps the turn and the channel's record of it together, or neither."""


@dataclass(frozen=True, slots=True)
class Stepped:
    """One message's flow step, before anything is saved (see :meth:`IntakeService.step`)."""

    result: StepResult
    timing: Expectation
    said: str
    """The message as the transcript records it (a button by its label)."""


class IntakeService:
    """Handles inbound messages for every channel, one chat at a time."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        flow: IntakeFlow,
        clock: Clock = utcnow,
        new_reference: Callable[[], str] = case_store.new_reference,
        calendar: WorkingCalendar | None = None,
        target: timedelta = timedelta(hours=3),
        leases: Leases | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
        on_handled: Callable[[str, float], None] = lambda channel, seconds: None,
        retention: timedelta | None = None,
        email_from: str | None = None,
        chats: KeyedLocks | None = None,
    ) -> None:
        """``engine`` runs each turn on a plain connection; ``sessions`` (on the same
        engine) serve the rest. ``leases``: this process's, needed for durable replies
        (``deliver=True``).
        ``on_enqueued`` is called after a transaction wrote outbox rows for the worker;
        ``on_handled(channel, seconds)`` after each message that was not a duplicate.
        ``email_from``: the helpline's address when it sends email (copies asked for in a
        chat are emailed too); None: it does not, and the chat says so.
        ``chats``: the per-chat locks a turn holds, keyed ``(channel, chat id)``, shared with
        whatever else works on a whole chat (erasing it) so that it waits for the turn."""
        self.on_enqueued = on_enqueued
        self._on_handled = on_handled
        self._calendar = calendar or WorkingCalendar.default()
        self._target = target
        self._timezone = self._calendar.zone
        self._engine = engine
        self._sessions = sessions
        self._flow = flow
        self._clock = clock
        self._new_reference = new_reference
        self._locks = chats if chats is not None else KeyedLocks()
        self._leases = leases
        self._retention = retention
        """How long a case's personal data is kept (its ``erase_after``); None: no date."""
        self._email_domain = mail_store.domain_of(email_from) if email_from else None
        """Our Message-IDs' domain when the helpline sends email; None when it does not."""

    async def handle(
        self,
        channel: str,
        chat_id: str,
        inbound: Inbound,
        *,
        dedupe: tuple[str, str] | None = None,
        inbox: bool = False,
        deliver: bool = False,
        with_turn: WithTurn | None = None,
    ) -> Handled:
        """Apply ``inbound`` to the chat's conversation and return what to say.

        ``dedupe`` is ``(source, key)`` (e.g. the bot and the update_id): a message
        already handled returns :data:`DUPLICATE` and changes nothing. ``inbox``: the
        update came through the webhook inbox under that key; its row is removed in this
        transaction. ``deliver``: the replies are written to the outbox with the turn
        (see :attr:`Handled.delivery`), so no crash between saving the turn and sending
        its replies can lose them. ``with_turn``: the channel's own record of the turn,
        written in its transaction (see :data:`WithTurn`).
        """
        if deliver and self._leases is None:
            raise ValueError("durable replies need the process's leases")
        started = time.perf_counter()
        handled = await self._handle_locked(
            channel, chat_id, inbound, dedupe, inbox, deliver, with_turn
        )
        if not handled.duplicate:
            self._on_handled(channel, time.perf_counter() - started)
        return handled

    async def _handle_locked(
        self,
        channel: str,
        chat_id: str,
        inbound: Inbound,
        dedupe: tuple[str, str] | None,
        inbox: bool,
        deliver: bool,
        with_turn: WithTurn | None,
    ) -> Handled:
        async with self._locks.hold((channel, chat_id)):
            for attempt in range(3):
                try:
                    return await self._handle_once(
                        channel, chat_id, inbound, dedupe, inbox, deliver, with_turn
                    )
                except IntegrityError:
                    # A reference collided (one in a billion), a replica raced us
                    # creating the row, or numbering the channel's record of the turn:
                    # the transaction rolled back, so try again.
                    log.warning("intake transaction conflict, retrying (attempt %d)", attempt + 1)
                except DBAPIError as error:
                    if not error.connection_invalidated:
                        raise
                    # The connection died in the pool (a database restart): the pool is
                    # refreshed, so run the message again. Had its commit gone through,
                    # the dedupe key makes the rerun a duplicate and the outbox still
                    # sends its replies once their lease runs out.
                    log.warning("intake lost its database connection, retrying")
            return await self._handle_once(
                channel, chat_id, inbound, dedupe, inbox, deliver, with_turn
            )

    def chat_lock(self, channel: str, chat_id: str) -> AbstractAsyncContextManager[None]:
        """The lock a chat's turns are handled under, for work on the chat that must never
        run in the middle of one (the web chat's erasure); not to be held around a turn."""
        return self._locks.hold((channel, chat_id))

    async def status(self, channel: str, chat_id: str) -> tuple[Reply, ...]:
        """Where the chat's latest enquiry stands (for /status), in the bot's words."""
        copy = self._flow.copy
        async with self._sessions() as session:
            record = await convo_store.find(session, channel, chat_id)
            case = await case_store.latest_for_conversation(session, record.id) if record else None
        conversation = convo_store.restore(record) if record else Conversation()
        if conversation.step not in FINAL_STEPS and conversation.step is not Step.START:
            resumed = await self.handle(channel, chat_id, Inbound.commanded(Command.START))
            return (Reply(copy("status.in_progress")), *resumed.replies)
        if case is not None and case.status is not CaseStatus.SIGNPOSTED:
            received = case.received_at.astimezone(self._timezone).strftime("%-d %B %Y")
            return (
                Reply(copy(f"status.{case.status}", reference=case.reference, received=received)),
            )
        if conversation.step is Step.SIGNPOSTED:
            return (Reply(copy("status.signposted")),)
        return (Reply(copy("status.none")),)

    async def _handle_once(
        self,
        channel: str,
        chat_id: str,
        inbound: Inbound,
        dedupe: tuple[str, str] | None,
        inbox: bool,
        deliver: bool,
        with_turn: WithTurn | None,
    ) -> Handled:
        now = self._clock()
        holder = self._leases.fast if deliver and self._leases else None
        delivery: int | None = None
        fast = False
        # Every message runs these few statements on a plain connection, in a transaction
        # begun on the driver (``storage.prepared``): an ORM session (its unit of work,
        # its bookkeeping) is opened only for the rare effects that create cases, and
        # joins this transaction.
        async with prepared.transaction(self._engine) as connection:
            if inbox and dedupe:
                await inbox_store.take(connection, *dedupe)
            record = await convo_store.open_turn(
                connection, channel, chat_id, now, dedupe=dedupe, backlog=holder is not None
            )
            if record is None:
                return DUPLICATE
            before = convo_store.restore(record)
            awaiting = None
            if before.earlier and inbound.kind is InboundKind.TEXT:
                awaiting = await convo_store.awaiting_answer(connection, record.id, before.earlier)
            stepped = self.step(before, inbound, now, awaiting=awaiting)
            result, timing = stepped.result, stepped.timing
            turns = self._turns(record, stepped, inbound, now)
            case = None
            if result.effects:
                # A case made of this conversation takes its transcript, this turn's too.
                await convo_store.add_turns(connection, turns)
                turns = []
                async with prepared.session_in(connection) as session:
                    case = await self._apply(
                        session, record, result.effects, (channel, chat_id), timing
                    )
                    await session.flush()
            forgot = any(isinstance(e, (Forget, Signposted)) for e in result.effects)
            reply = None
            if holder is not None and self._leases is not None and result.replies:
                fast = not record.backlog
                reply = outbox.reply_row(
                    channel=channel,
                    chat_id=chat_id,
                    replies=[reply_to_json(r) for r in result.replies],
                    now=now,
                    holder=holder if fast else None,
                    until=self._leases.until() if fast else None,
                )
            delivery = await convo_store.save_turn(
                connection, record, result.conversation, now, turns=turns, reply=reply
            )
            if with_turn is not None:
                await with_turn(connection, result.replies, forgot)
        if fast and delivery is not None and self._leases is not None:
            self._leases.hold_outbox([delivery])  # renewed until the channel closes it
        woke = any(isinstance(e, (CaseSubmitted, FollowUp, CopyEmailed)) for e in result.effects)
        if woke or (delivery is not None and not fast):
            self.on_enqueued()
        return Handled(
            replies=result.replies,
            case=CaseInfo(case.reference, case.status) if case else None,
            step=result.conversation.step.value,
            delivery=delivery,
            fast=fast,
            forgot=forgot,
        )

    def step(
        self, before: Conversation, inbound: Inbound, now: datetime, *, awaiting: str | None = None
    ) -> Stepped:
        """The flow's step for one message, with no I/O: what :meth:`handle` runs inside
        its transaction between loading the conversation and saving it (``awaiting``: see
        ``storage.conversations.awaiting_answer``). Public so that its cost can be
        measured apart from the database's (``bench.intake_floor``)."""
        timing, context = self._context(now, awaiting)
        result = self._flow.handle(before, inbound, context)
        return Stepped(result, timing, self._flow.describe(before, inbound))

    def _context(self, now: datetime, awaiting: str | None = None) -> tuple[Expectation, Context]:
        timing = expectation(self._calendar, now, self._target, self._flow.copy)
        context = Context.expecting(
            timing,
            now=now,
            reference=self._new_reference(),
            awaiting=awaiting,
            email_copies=self._email_domain is not None,
        )
        return timing, context

    async def where_we_are(self, channel: str, chat_id: str) -> tuple[Reply, ...]:
        """What the chat shows someone coming back to it (``helpline chat`` run again),
        read only: no turn is taken, so a follow-up they write next still reaches their
        case. Empty when the chat has nothing begun (then it starts with ``/start``)."""
        async with self._sessions() as session:
            record = await convo_store.find(session, channel, chat_id)
        if record is None:
            return ()
        conversation = convo_store.restore(record)
        shown = self._flow.where_we_are(conversation, self._context(self._clock())[1])
        return (Reply(self._flow.copy("status.welcome_back")), *shown) if shown else ()

    @staticmethod
    def _turns(
        record: Saved, stepped: Stepped, inbound: Inbound, now: datetime
    ) -> list[dict[str, Any]]:
        """The transcript rows of one message: what the enquirer said, then each reply."""
        kind = "attachment_refused" if inbound.kind is InboundKind.ATTACHMENT else "text"
        common: dict[str, Any] = {"conversation_id": record.id, "case_id": None, "at": now}
        said = {**common, "sender": "enquirer", "text": stepped.said, "kind": kind}
        replies = stepped.result.replies
        return [
            said,
            *({**common, "sender": "bot", "text": r.text, "kind": "text"} for r in replies),
        ]

    async def _apply(
        self,
        session: AsyncSession,
        record: Saved,
        effects: Sequence[Effect],
        chat: tuple[str, str],
        timing: Expectation,
    ) -> Case | None:
        channel = chat[0]
        created: Case | None = None
        now = self._clock()
        for effect in effects:
            match effect:
                case CaseSubmitted(draft):
                    created = case_store.create_case(
                        session,
                        draft,
                        channel=channel,
                        conversation_id=record.id,
                        due_at=timing.due_at,
                        in_hours=timing.open_now,
                    )
                    created.remind_at = self._calendar.add_working_time(now, self._target / 2)
                    created.enquirer_chat = chat_identity(*chat)
                    if self._retention is not None:
                        created.erase_after = draft.received_at + self._retention
                    await session.flush()
                    await convo_store.attach_transcript(session, record.id, created.id)
                    outbox.enqueue(session, outbox.SLACK_CARD, now=now, case_id=created.id)
                    await self._link(session, created, now)
                    if created.urgent and not timing.open_now:
                        page_oncall(session, created, now)
                    log.info("case %s submitted via %s", created.reference, channel)
                case Signposted(draft):
                    created = case_store.create_case(session, draft, channel=channel)
                    if self._retention is not None:
                        created.erase_after = draft.received_at + self._retention
                    await convo_store.forget_transcript(session, record.id)
                    log.info("contact signposted via %s", channel)
                case Forget():
                    await convo_store.forget_transcript(session, record.id)
                case FollowUp(reference, text, since, risks):
                    case = await case_store.get_case(session, reference)
                    # Only a case this chat sent: a reference anyone could type is not enough.
                    if case is not None and case.conversation_id == record.id:
                        await convo_store.attach_transcript(session, record.id, case.id, since)
                        note = outbox.desk_note("desk.thread_enquirer_wrote", text=text)
                        outbox.enqueue(
                            session, outbox.SLACK_THREAD, now=now, case_id=case.id, payload=note
                        )
                        raise_urgency(
                            session,
                            case,
                            risks,
                            now,
                            open_now=timing.open_now,
                            copy=self._flow.copy,
                        )
                    elif risks:  # its case is gone: the desk still hears of the risk
                        alert_without_case(
                            session, risks, now, open_now=timing.open_now, copy=self._flow.copy
                        )
                case CopyShown(reference):
                    self._audit_copy(session, AuditAction.COPY_SHOWN, reference, channel, now)
                case CopyEmailed():
                    await self._email_copy(session, record, effect, channel, now)
                case AttachmentRefused():
                    log.info("attachment refused on %s (not downloaded)", channel)
        return created

    async def _email_copy(
        self, session: AsyncSession, record: Saved, copy: CopyEmailed, channel: str, now: datetime
    ) -> None:
        """Queue the copy's email with its case, once per case (audited when it is sent).

        Its Message-ID is the case's own copy id, fixed before the first attempt: a resend
        is the same email (mail clients show it once), and a second request finds it taken.
        """
        case = await case_store.get_case(session, copy.reference)
        # Only a case this chat sent (as for follow-ups), and only if email can go at all.
        if self._email_domain is None or case is None or case.conversation_id != record.id:
            return
        ours = mail_store.message_id(f"{case.reference}-copy", self._email_domain)
        if await mail_store.ours(session, [ours]) is not None:
            return
        await mail_store.queue_email(
            session,
            to=copy.to,
            subject=copy.subject,
            text=copy.text,
            message_id=ours,
            case_id=case.id,
            outcome="copy",
            at=now,
            copy_asked_on=audit_channel(channel).value,  # audited when the email goes
        )
        log.info("copy of case %s queued by email", case.reference)

    @staticmethod
    def _audit_copy(
        session: AsyncSession, action: AuditAction, reference: str, channel: str, now: datetime
    ) -> None:
        """A copy is a disclosure of personal data: the audit names the case, not its text."""
        audit.record(
            session,
            at=now,
            actor="enquirer",
            action=action,
            channel=audit_channel(channel),
            case_reference=reference,
        )

    async def _link(self, session: AsyncSession, case: Case, now: datetime) -> None:
        """Record what the case reports and note it in the threads of earlier reports.

        The notes follow the new card in the desk's stream, so the link to it works.
        """
        platform = self._flow.taxonomy["platform"].by_label(case.platform or "")
        keys = case_keys(
            case.links or [],
            texts=[case.subject or "", case.description or ""],
            platform_id=platform.id if platform else None,
        )
        if not keys:
            return
        await link_store.remember(session, case.id, keys)
        for earlier, shared in await link_store.linked_ids(session, case.id, LINKED_NOTES):
            note = outbox.desk_note(
                "linked.thread_note", reference=case.reference, shared=", ".join(shared)
            )
            note["cases"] = {"case": case.id}
            outbox.enqueue(session, outbox.SLACK_THREAD, now=now, case_id=earlier, payload=note)
