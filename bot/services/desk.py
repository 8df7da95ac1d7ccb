"""The practitioner desk: claim, release, reply and resolve, for Slack and the command line.

Each action is one transaction: the race-safe change to the case, the record of who did
what, and the outbox rows that update the Slack card, log to the case's thread and tell
the enquirer. Nothing is sent from here; the outbox worker does the sending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.conversation import CaseStatus
from flows.copy import Copy
from flows.privacy import AuditAction, AuditChannel
from flows.taxonomy import Taxonomy
from storage import audit, outbox
from storage import cases as case_store
from storage import conversations as convo_store
from storage import desk as desk_store
from storage import home as home_store
from storage import links as link_store
from storage.models import Case

REPLY_LIMIT = 3_500
NOTE_LIMIT = 3_000


@dataclass(frozen=True, slots=True)
class DeskResult:
    """What happened, in words for the practitioner who acted."""

    ok: bool
    message: str
    reference: str = ""
    repeated: bool = False
    """Nothing changed: the actor had already done this (say, claimed a case they hold)."""


class DeskService:
    """Practitioner actions, the same for every front end."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        copy: Copy,
        taxonomy: Taxonomy,
        clock: Callable[[], datetime],
        timezone: str = "Europe/London",
    ) -> None:
        self._sessions = sessions
        self._copy = copy
        self._outcomes = taxonomy["outcome"]
        self._clock = clock
        self._zone = ZoneInfo(timezone)

    @property
    def outcomes(self) -> list[tuple[str, str]]:
        """(id, label) of every outcome a case can be resolved with."""
        return [(t.id, t.label) for t in self._outcomes.terms]

    async def claim(
        self, reference: str, actor: str, via: AuditChannel = AuditChannel.SLACK
    ) -> DeskResult:
        """Take a case for ``actor``, who then sees the contact details; a second press by the
        holder is harmless, and a case someone else holds is refused with who and since when.
        """
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is None:
                return self._fail("desk.not_found", reference)
            now = self._clock()
            if not await desk_store.claim(session, case.id, actor, now):
                await session.refresh(case)
                if case.status is CaseStatus.CLAIMED and case.claimed_by == actor:
                    # A second press (or a replayed one) by the holder changes nothing.
                    message = self._copy("desk.already_yours", reference=case.reference)
                    return DeskResult(True, message, case.reference, repeated=True)
                if case.status is CaseStatus.CLAIMED and case.claimed_by:
                    since = (
                        case.claimed_at.astimezone(self._zone).strftime("%H:%M")
                        if case.claimed_at
                        else "?"
                    )
                    return self._fail(
                        "desk.already_claimed", case.reference, holder=case.claimed_by, since=since
                    )
                return self._refusal(case, actor, "claimed")
            self._after(
                session,
                case,
                actor,
                "claim",
                now,
                thread=outbox.desk_note("desk.thread_claimed", people={"actor": actor}),
            )
            self._audit(session, actor, AuditAction.CLAIM, via, case.reference, now)
            await self._notify_enquirer(session, case, "enquirer_notice.claimed", now)
        return DeskResult(
            True, self._copy("desk.claimed", reference=case.reference), case.reference
        )

    async def release(
        self, reference: str, actor: str, via: AuditChannel = AuditChannel.SLACK
    ) -> DeskResult:
        """Give a claimed case back to the queue, so someone else can take it."""
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is None:
                return self._fail("desk.not_found", reference)
            if not await desk_store.release(session, case.id, actor):
                return self._refusal(case, actor, "released")
            now = self._clock()
            self._after(
                session,
                case,
                actor,
                "release",
                now,
                thread=outbox.desk_note("desk.thread_released", people={"actor": actor}),
            )
            self._audit(session, actor, AuditAction.RELEASE, via, case.reference, now)
        return DeskResult(
            True, self._copy("desk.released", reference=case.reference), case.reference
        )

    async def reply(
        self, reference: str, actor: str, text: str, via: AuditChannel = AuditChannel.SLACK
    ) -> DeskResult:
        """Send ``text`` to the enquirer through the outbox, recorded on the case; refused when it
        is empty, too long, or the case is not this practitioner's to answer.
        """
        text = text.strip()
        if not text:
            return DeskResult(False, self._copy("desk.empty_reply"))
        if len(text) > REPLY_LIMIT:
            return DeskResult(
                False, self._copy("desk.reply_too_long", length=len(text), limit=REPLY_LIMIT)
            )
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is None:
                return self._fail("desk.not_found", reference)
            if case.claimed_by not in (None, actor) or case.status is CaseStatus.SIGNPOSTED:
                return self._refusal(case, actor, "replied to")
            now = self._clock()
            desk_store.record(session, case.id, actor=actor, action="reply", at=now, detail=text)
            self._audit(session, actor, AuditAction.REPLY_SENT, via, case.reference, now)
            message = self._copy("enquirer_notice.reply", reference=case.reference, text=text)
            await self._to_enquirer(session, case, message, now, log={"actor": actor, "text": text})
        return DeskResult(
            True, self._copy("desk.replied", reference=case.reference), case.reference
        )

    async def resolve(
        self,
        reference: str,
        actor: str,
        outcome_id: str,
        note: str | None = None,
        via: AuditChannel = AuditChannel.SLACK,
    ) -> DeskResult:
        """Close a case with one of the outcomes (by id or label) and an optional note."""
        outcome = self._outcomes.get(outcome_id) or self._outcomes.by_label(outcome_id)
        if outcome is None:
            choices = ", ".join(t.id for t in self._outcomes.terms)
            return DeskResult(
                False, self._copy("desk.unknown_outcome", outcome=outcome_id, choices=choices)
            )
        note = (note or "").strip() or None
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is None:
                return self._fail("desk.not_found", reference)
            now = self._clock()
            referred = "referred_to_platform" in outcome.flags
            if not await desk_store.resolve(
                session,
                case.id,
                actor,
                outcome=outcome.label,
                note=note,
                referred_to_platform=referred,
                now=now,
            ):
                return self._refusal(case, actor, "resolved")
            thread = outbox.desk_note(
                "desk.thread_resolved_noted" if note else "desk.thread_resolved",
                people={"actor": actor},
                outcome=outcome.label,
                note=note or "",
            )
            self._after(session, case, actor, "resolve", now, thread=thread, detail=outcome.label)
            self._audit(session, actor, AuditAction.RESOLVE, via, case.reference, now)
            await self._notify_enquirer(session, case, "enquirer_notice.resolved", now)
        return DeskResult(
            True,
            self._copy("desk.resolved", reference=case.reference, outcome=outcome.label),
            case.reference,
        )

    async def case(
        self,
        reference: str,
        actor: str,
        via: AuditChannel = AuditChannel.SLACK,
        action: AuditAction = AuditAction.CARD_DETAILS_OPENED,
    ) -> Case | None:
        """The case, to show in full (the details modal), or None if there is none.

        Showing it is a disclosure: it is audited as ``action`` by ``actor``.
        """
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is not None:
                self._audit(session, actor, action, via, case.reference, self._clock())
            return case

    async def listed(
        self,
        actor: str,
        via: AuditChannel,
        action: AuditAction,
        *,
        status: CaseStatus | None = None,
        overdue_by: datetime | None = None,
        due_before: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Cases newest first (see :func:`storage.cases.list_cases`), as dicts.

        A list shows each case's title (the JSON shows everything): a disclosure of every
        case in it, audited as ``action`` by ``actor`` with the list itself.
        """
        async with self._sessions() as session, session.begin():
            found = await case_store.list_cases(
                session, status=status, overdue_by=overdue_by, due_before=due_before
            )
            now = self._clock()
            for case in found:
                self._audit(session, actor, action, via, case.reference, now)
            return [case_store.case_to_dict(c) for c in found]

    async def linked(
        self, reference: str, actor: str, via: AuditChannel
    ) -> tuple[Case, list[link_store.Linked]] | None:
        """The case and the other cases sharing its accounts or links (None: no such case).

        The shared accounts identify people: showing them is audited on the case.
        """
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is None:
                return None
            found = await link_store.linked(session, case.id)
            self._audit(session, actor, AuditAction.LINKS_SHOWN, via, case.reference, self._clock())
            return case, found

    async def note(
        self, *, card: str, actor: str, text: str, dedupe: tuple[str, str]
    ) -> bool | None:
        """A practitioner's message in a case's thread, kept on the case as an internal note.

        ``card`` is the card's message id (the thread's parent), ``dedupe`` the event's
        key: None means this event was recorded before (Slack redelivers events); False
        that there was nothing to record (not a case's thread, or no text).
        """
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if not await convo_store.first_time(session, *dedupe, now):
                return None
            case = await case_store.case_by_card(session, card)
            if case is None or not text:
                return False
            desk_store.record(
                session, case.id, actor=actor, action="note", at=now, detail=text[:NOTE_LIMIT]
            )
        return True

    async def home_opened(self, user_id: str, *, dedupe: tuple[str, str]) -> bool:
        """A practitioner opened the desk's App Home: show them the queue, and keep it
        current for them from now on. False when this event was handled before."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if not await convo_store.first_time(session, *dedupe, now):
                return False
            await home_store.remember_viewer(session, user_id, now)
            await home_store.refresh(session, now, user=user_id)
        return True

    async def check(self, reference: str, actor: str) -> str | None:
        """Why ``actor`` may not act on the case now, or None if they may."""
        async with self._sessions() as session:
            case = await case_store.get_case(session, reference)
        if case is None:
            return self._copy("desk.not_found", reference=reference)
        if not case.status.is_open:
            return self._refusal(case, actor, "changed").message
        if case.claimed_by not in (None, actor):
            return self._copy("desk.not_holder", reference=case.reference, holder=case.claimed_by)
        return None

    async def contact_details(
        self,
        reference: str,
        *,
        escape: Callable[[str], str],
        actor: str,
        via: AuditChannel = AuditChannel.SLACK,
    ) -> str:
        """How to reach the enquirer: shown only to the practitioner holding the case.

        What the enquirer gave (a name can be anything) is passed through ``escape``, the
        function for the medium it is shown in (``bot.text.for_slack``, ``for_terminal``).
        """
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is not None:
                now = self._clock()
                self._audit(session, actor, AuditAction.CONTACT_SHOWN, via, case.reference, now)
        if case is None:
            return self._copy("desk.not_found", reference=escape(reference))
        parts = [p for p in (case.contact_name, case.contact_email, case.contact_phone) if p]
        details = ", ".join(escape(p) for p in parts) if parts else self._copy("desk.no_contact")
        return self._copy("desk.contact_details", reference=case.reference, details=details)

    async def refused(self, reference: str | None, actor: str, via: AuditChannel) -> str:
        """Someone who is not a practitioner tried to act: audited, and answered kindly."""
        async with self._sessions() as session, session.begin():
            self._audit(session, actor, AuditAction.REFUSED, via, reference, self._clock())
        return self._copy("data_protection.not_practitioner")

    # Plumbing ------------------------------------------------------------------------

    @staticmethod
    def _audit(
        session: AsyncSession,
        actor: str,
        action: AuditAction,
        via: AuditChannel,
        reference: str | None,
        now: datetime,
    ) -> None:
        audit.record(
            session, at=now, actor=actor, action=action, channel=via, case_reference=reference
        )

    def _fail(self, key: str, reference: str, **values: object) -> DeskResult:
        return DeskResult(False, self._copy(key, reference=reference, **values), reference)

    def _refusal(self, case: Case, actor: str, action: str) -> DeskResult:
        if case.claimed_by and case.claimed_by != actor and case.status is CaseStatus.CLAIMED:
            return self._fail("desk.not_holder", case.reference, holder=case.claimed_by)
        status = self._copy(f"case_status.{case.status.value}")
        if status == action:  # "HL-… is already resolved", not "…, so it can't be resolved"
            return self._fail("desk.already", case.reference, status=status)
        return self._fail("desk.not_open", case.reference, status=status, action=action)

    def _after(
        self,
        session: AsyncSession,
        case: Case,
        actor: str,
        action: str,
        now: datetime,
        *,
        thread: dict[str, object],
        detail: str = "",
    ) -> None:
        desk_store.record(session, case.id, actor=actor, action=action, at=now, detail=detail)
        outbox.enqueue(session, outbox.SLACK_CARD, now=now, case_id=case.id)
        outbox.enqueue(session, outbox.SLACK_THREAD, now=now, case_id=case.id, payload=thread)

    async def _notify_enquirer(
        self, session: AsyncSession, case: Case, key: str, now: datetime
    ) -> None:
        # A channel may word a notice its own way ("reply to this email", not "type start"):
        # ``[email] notice_resolved`` for ``enquirer_notice.resolved``.
        chat = await desk_store.enquirer_chat(session, case)
        own = f"{chat[0]}.notice_{key.rsplit('.', 1)[-1]}" if chat else key
        key = own if own in self._copy.entries else key
        await self._to_enquirer(session, case, self._copy(key, reference=case.reference), now)

    async def _to_enquirer(
        self,
        session: AsyncSession,
        case: Case,
        text: str,
        now: datetime,
        log: dict[str, str] | None = None,
    ) -> None:
        chat = await desk_store.enquirer_chat(session, case)
        if chat is None:
            return
        payload: dict[str, object] = {"channel": chat[0], "chat_id": chat[1], "text": text}
        if log:
            payload["log"] = log
        outbox.enqueue(session, outbox.ENQUIRER_MESSAGE, now=now, case_id=case.id, payload=payload)
