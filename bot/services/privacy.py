"""Data protection desk work: subject access, erasure, holds, and the requests register.

Every action here is one transaction: the change, the audit entry, and the outbox rows
that bring the Slack card up to date. The erased data is never written anywhere else
(the audit says that a case was erased, not what it held).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.locks import KeyedLocks
from bot.text import for_terminal
from flows.copy import Copy
from flows.privacy import AuditAction, AuditChannel, Identity, RequestKind, answer_by
from storage import audit, outbox
from storage import cases as case_store
from storage import desk as desk_store
from storage import privacy as privacy_store
from storage.encryption import DataKeys
from storage.models import Case, PrivacyRequest
from storage.privacy import ErasurePlan, Found

BUNDLE_JSON = "your-data.json"
BUNDLE_TEXT = "your-data.txt"
WHY = {"request": "why_request", "enquirer": "why_enquirer", "retention": "why_retention"}
"""Why a case was erased (the SLACK_ERASED payload's ``by``) -> its wording."""


@dataclass(frozen=True, slots=True)
class Exported:
    """A subject access bundle written, and the request recorded for it."""

    request: str
    due_on: date
    cases: list[str]
    files: list[Path]


@dataclass(frozen=True, slots=True)
class Erased:
    """What an erasure removed (or, for a dry run, would remove)."""

    plan: ErasurePlan
    done: bool
    request: str | None = None


class PrivacyService:
    """Subject access, erasure and holds, the same for every front end."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        keys: Callable[[], DataKeys],
        copy: Copy,
        clock: Callable[[], datetime],
        timezone: str = "Europe/London",
        working_day: Callable[[date], bool] | None = None,
        chats: KeyedLocks | None = None,
    ) -> None:
        """``keys``: the engine's data keys (for blind indexes); ``working_day`` moves a
        request's due day off weekends and holidays; ``chats``: the per-chat locks the
        intake's turns hold in this process (see :meth:`erase_chat`)."""
        self._sessions = sessions
        self._keys = keys
        self._copy = copy
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        self._working_day = working_day
        self._chats = chats if chats is not None else KeyedLocks()

    def today(self) -> date:
        """Today in the helpline's zone: due dates are calendar days there."""
        return self._clock().astimezone(self._zone).date()

    async def find(self, identity: Identity, value: str) -> Found:
        """Every record about the person (nothing is disclosed but references and counts)."""
        async with self._sessions() as session:
            return await privacy_store.find(session, self._keys(), identity, value)

    # Subject access ----------------------------------------------------------------------

    async def export(
        self,
        identity: Identity,
        value: str,
        *,
        actor: str,
        out: Path,
        received: date | None = None,
        via: AuditChannel = AuditChannel.CLI,
    ) -> Exported:
        """Write the person's data to ``out`` (readable text and JSON) and record the request.

        The request stays open until it is closed (``privacy requests --close``): the
        bundle is checked for other people's data before it is sent.
        """
        received = received or self.today()
        due = answer_by(received, working_day=self._working_day)
        now = self._clock()
        async with self._sessions() as session, session.begin():
            keys = self._keys()
            found = await privacy_store.find(session, keys, identity, value)
            bundle = [await self._case_bundle(session, case) for case in found.cases]
            chats = [
                {"channel": c.channel, "updated_at": c.updated_at.isoformat(), "draft": c.state}
                for c in found.conversations
            ]
            request = privacy_store.add_request(
                session,
                kind=RequestKind.ACCESS,
                identity=identity,
                subject_index=privacy_store.identity_index(keys, identity, value),
                received_on=received,
                due_on=due,
                actor=actor,
            )
            for reference in _or_none(found.references):
                audit.record(
                    session,
                    at=now,
                    actor=actor,
                    action=AuditAction.SAR_EXPORT,
                    channel=via,
                    case_reference=reference,
                )
        out.mkdir(parents=True, exist_ok=True)
        data = {
            "request": request.reference,
            "received_on": received.isoformat(),
            "prepared_at": now.isoformat(),
            "cases": bundle,
            "conversations_in_progress": chats,
        }
        files = [out / BUNDLE_JSON, out / BUNDLE_TEXT]
        files[0].write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        files[1].write_text(readable_bundle(data), encoding="utf-8")
        return Exported(request.reference, due, found.references, files)

    async def _case_bundle(self, session: AsyncSession, case: Case) -> dict[str, Any]:
        turns = await case_store.transcript(session, case.id)
        data = case_store.case_to_dict(case, turns)
        events = await desk_store.events(session, case.id)
        data["sent_to_you"] = [
            {"at": e.at.isoformat(), "text": e.detail} for e in events if e.action == "reply"
        ]
        data["resolved_at"] = case.resolved_at.isoformat() if case.resolved_at else None
        data["erase_after"] = case.erase_after.isoformat() if case.erase_after else None
        return data

    async def requests(self) -> Sequence[PrivacyRequest]:
        """Open requests, soonest due first."""
        async with self._sessions() as session:
            return await privacy_store.open_requests(session)

    async def close_request(self, reference: str, actor: str) -> PrivacyRequest | None:
        """Mark a request answered (audited as ``actor``); None if there is no such request."""
        return await self._change_request(reference, actor, AuditAction.REQUEST_CLOSED)

    async def extend_request(self, reference: str, actor: str) -> PrivacyRequest | None:
        """A complex request: two more months (ICO), from the day it was received."""
        return await self._change_request(reference, actor, AuditAction.REQUEST_EXTENDED)

    async def _change_request(
        self, reference: str, actor: str, action: AuditAction
    ) -> PrivacyRequest | None:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            request = await privacy_store.get_request(session, reference)
            if request is None:
                return None
            if action is AuditAction.REQUEST_CLOSED:
                request.closed_at = now
            else:
                request.extended = True
                request.due_on = answer_by(
                    request.received_on, extended=True, working_day=self._working_day
                )
                request.overdue_flagged_at = None
            audit.record(session, at=now, actor=actor, action=action, channel=AuditChannel.CLI)
        return request

    # Erasure -----------------------------------------------------------------------------

    async def erase(
        self,
        identity: Identity,
        value: str,
        *,
        actor: str,
        dry_run: bool = False,
        via: AuditChannel = AuditChannel.CLI,
    ) -> Erased:
        """Erase the person's personal data (or, ``dry_run``, say exactly what would go)."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            keys = self._keys()
            found = await privacy_store.find(session, keys, identity, value, lock=not dry_run)
            plan = await privacy_store.plan(session, found)
            action = AuditAction.ERASE_PREVIEWED if dry_run else AuditAction.ERASED
            for reference in _or_none(found.references):
                audit.record(
                    session,
                    at=now,
                    actor=actor,
                    action=action,
                    channel=via,
                    case_reference=reference,
                )
            if dry_run:
                return Erased(plan, done=False)
            await self._erase(session, found, now, by="request")
            today = self.today()
            request = privacy_store.add_request(
                session,
                kind=RequestKind.ERASURE,
                identity=identity,
                subject_index=privacy_store.identity_index(keys, identity, value),
                received_on=today,
                due_on=answer_by(today, working_day=self._working_day),
                actor=actor,
                closed_at=now,
            )
        return Erased(plan, done=True, request=request.reference)

    async def erase_chat(
        self, channel: str, chat_id: str, *, within: AsyncSession | None = None
    ) -> list[str]:
        """The enquirer asked in their chat: erase it and their cases; the references erased.

        ``within``: in the caller's transaction (the web chat writes its answer in the same
        one, so an erasure and what the chat says of it are never apart).

        Serialised with the chat's turns as they are with each other: in this process under
        the chat's lock (``chats``, taken before the transaction as a turn takes it; a caller
        passing ``within`` holds its chat's own lock, as the web chat does), and across
        replicas by the chat's row, locked first as a turn locks it (see
        :func:`storage.privacy.find`). A turn of the chat runs wholly before the erasure,
        which then erases the case it may have sent, or wholly after it, on a fresh chat.
        """
        if within is None:
            chat = self._chats.hold((channel, chat_id))
            async with chat, self._sessions() as session, session.begin():
                return await self.erase_chat(channel, chat_id, within=session)
        now = self._clock()
        identity = {"telegram": Identity.TELEGRAM_USER, "web": Identity.WEB_SESSION}[channel]
        found = await privacy_store.find(within, self._keys(), identity, chat_id, lock=True)
        for reference in _or_none(found.references):
            audit.record(
                within,
                at=now,
                actor="enquirer",
                action=AuditAction.ERASED_BY_ENQUIRER,
                channel=AuditChannel(channel),
                case_reference=reference,
            )
        await self._erase(within, found, now, by="enquirer")
        return found.references

    async def _erase(self, session: AsyncSession, found: Found, now: datetime, *, by: str) -> None:
        """Erase what ``found`` holds (every erasure the same way), then the cards of the
        erased cases say so (queued after the erasure removed the cases' other outbox rows)."""
        await privacy_store.erase_cases(session, [c.id for c in found.cases], now)
        await privacy_store.erase_conversations(
            session, found.conversations, now, blank=self._copy("web.deleted")
        )
        for case in found.cases:
            outbox.enqueue(
                session, outbox.SLACK_ERASED, now=now, case_id=case.id, payload={"by": by}
            )

    # Holds -------------------------------------------------------------------------------

    async def hold(
        self, reference: str, actor: str, reason: str | None, via: AuditChannel = AuditChannel.CLI
    ) -> str:
        """Place a legal hold with ``reason`` (or lift it when ``reason`` is None)."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            case = await case_store.get_case(session, reference)
            if case is None:
                return self._copy("desk.not_found", reference=reference)
            if reason:
                await privacy_store.place_hold(
                    session, case.id, actor=actor, reason=reason, now=now
                )
                action, said = AuditAction.HOLD_PLACED, "data_protection.hold_placed"
            else:
                await privacy_store.lift_hold(session, case.id)
                action, said = AuditAction.HOLD_LIFTED, "data_protection.hold_lifted"
            audit.record(
                session,
                at=now,
                actor=actor,
                action=action,
                channel=via,
                case_reference=case.reference,
            )
        when = (
            case.erase_after.astimezone(self._zone).date().isoformat() if case.erase_after else "-"
        )
        return self._copy(said, reference=case.reference, when=when)


def _or_none(references: list[str]) -> list[str | None]:
    """The references to audit under: the cases, or one entry naming none when no case
    was found (the lookup itself is still an action to record)."""
    return list(references) or [None]


def readable_bundle(data: dict[str, Any]) -> str:
    """The bundle as plain text a person can read (what they wrote passes ``for_terminal``)."""
    lines = [
        "A copy of the information the Professionals Online Safety Helpline holds about you",
        f"Request {data['request']}, received {data['received_on']}.",
        "",
    ]
    if not data["cases"] and not data["conversations_in_progress"]:
        lines.append("We hold no enquiries from you.")
    for case in data["cases"]:
        lines += [
            f"Enquiry {case['reference']} (received {case['received_at']}, via {case['channel']})",
            f"  Status: {case['status']}; outcome: {case.get('outcome') or '-'}",
            f"  Title: {case.get('subject') or '-'}",
            f"  What you told us: {case.get('description') or '-'}",
            f"  Links: {', '.join(case.get('links') or []) or '-'}",
            "  Contact details: "
            + (
                ", ".join(
                    str(case[k])
                    for k in ("contact_name", "contact_email", "contact_phone")
                    if case.get(k)
                )
                or "-"
            ),
            f"  About: {', '.join(case.get('categories') or []) or '-'}",
            f"  To be deleted after: {case.get('erase_after') or '-'}",
            "  The conversation:",
        ]
        for turn in case.get("transcript") or []:
            who = "You" if turn["sender"] == "enquirer" else "Helpline"
            lines.append(f"    [{turn['at'][:16]}] {who}: {turn['text']}")
        for sent in case.get("sent_to_you") or []:
            lines.append(f"    [{sent['at'][:16]}] A practitioner wrote to you: {sent['text']}")
        lines.append("")
    for chat in data["conversations_in_progress"]:
        lines.append(
            f"An unfinished enquiry on {chat['channel']} (last used {chat['updated_at']})."
        )
    return "\n".join(for_terminal(line) for line in lines) + "\n"
