"""Cases: created from a conversation's draft, listed and shown for practitioners."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from flows.conversation import OPEN_STATUSES, CaseDraft, CaseStatus, ReplyVia
from storage.models import Case, CaseCategory, TranscriptEntry

# No 0/O, 1/I/L: a reference is read out over the phone and typed from an email.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_reference() -> str:
    """A short, unguessable, human-friendly reference such as ``HL-7KQ3MX``."""
    return "HL-" + "".join(secrets.choice(_ALPHABET) for _ in range(6))


def is_open() -> ColumnElement[bool]:
    """The cases the helpline still owes a reply, as a query condition."""
    return Case.status.in_(sorted(OPEN_STATUSES))


def overdue_at(now: datetime) -> ColumnElement[bool]:
    """:meth:`Case.is_overdue` as a query condition: the same rule, the same boundary."""
    return is_open() & Case.due_at.is_not(None) & (Case.due_at < now)


def create_case(
    session: AsyncSession,
    draft: CaseDraft,
    *,
    channel: str,
    conversation_id: int | None = None,
    due_at: datetime | None = None,
    in_hours: bool | None = None,
) -> Case:
    """Add a case for ``draft`` to the session (flushed with the rest of the transaction)."""
    case = Case(
        reference=draft.reference,
        status=draft.status,
        channel=channel,
        received_at=draft.received_at,
        enquirer_type=draft.enquirer_type,
        setting=draft.setting,
        region=draft.region,
        platform_type=draft.platform_type,
        platform=draft.platform,
        subject=draft.subject,
        description=draft.description,
        links=list(draft.links),
        already_reported=draft.already_reported,
        urgent=draft.urgent,
        reply_via=draft.reply_via.value if draft.reply_via else None,
        contact_email=draft.contact_email,
        contact_phone=draft.contact_phone,
        contact_name=draft.contact_name,
        signposted_to=list(draft.signposted_to),
        conversation_id=conversation_id,
        due_at=due_at,
        in_hours=in_hours,
        categories=[CaseCategory(category=c, position=i) for i, c in enumerate(draft.categories)],
    )
    session.add(case)
    return case


def as_draft(case: Case) -> CaseDraft:
    """A stored case as the flow reads one (its categories loaded): for a copy of it."""
    return CaseDraft(
        reference=case.reference,
        status=case.status,
        received_at=case.received_at,
        enquirer_type=case.enquirer_type,
        setting=case.setting,
        region=case.region,
        platform_type=case.platform_type,
        platform=case.platform,
        categories=tuple(c.category for c in case.categories),
        subject=case.subject,
        description=case.description,
        links=tuple(str(link) for link in case.links or ()),
        already_reported=case.already_reported,
        urgent=case.urgent,
        reply_via=ReplyVia(case.reply_via) if case.reply_via else None,
        contact_email=case.contact_email,
        contact_phone=case.contact_phone,
        contact_name=case.contact_name,
        signposted_to=tuple(str(s) for s in case.signposted_to or ()),
    )


async def get_case(session: AsyncSession, reference: str) -> Case | None:
    """The case with ``reference`` (spaces and letter case do not matter), with its categories."""
    query = (
        select(Case)
        .where(Case.reference == reference.strip().upper())
        .options(selectinload(Case.categories))
    )
    return (await session.execute(query)).scalar_one_or_none()


async def case_by_id(session: AsyncSession, case_id: int) -> Case | None:
    """A case with its categories (what a card shows), or None once it is erased."""
    return await session.get(Case, case_id, options=[selectinload(Case.categories)])


async def cases_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Case]:
    """Those of the cases still there, with their categories, oldest first."""
    if not ids:
        return []
    query = (
        select(Case)
        .where(Case.id.in_(ids))
        .options(selectinload(Case.categories))
        .order_by(Case.received_at, Case.id)
    )
    return list((await session.execute(query)).scalars())


async def case_by_card(session: AsyncSession, ts: str) -> Case | None:
    """The case whose Slack card has timestamp ``ts`` (a thread under it is about it)."""
    query = select(Case).where(Case.slack_ts == ts)
    return (await session.execute(query)).scalar_one_or_none()


async def remember_card(session: AsyncSession, case_id: int, channel: str, ts: str) -> None:
    """Where the case's card was posted, so later changes update it in place."""
    case = await session.get(Case, case_id)
    if case is not None:
        case.slack_channel, case.slack_ts = channel, ts


async def forget_card(session: AsyncSession, case_id: int) -> None:
    """The card is gone from Slack (deleted by someone): the next one is posted afresh."""
    case = await session.get(Case, case_id)
    if case is not None:
        case.slack_channel = case.slack_ts = None


async def latest_for_conversation(session: AsyncSession, conversation_id: int) -> Case | None:
    """The newest case a conversation produced (what /status reports on)."""
    query = (
        select(Case)
        .where(Case.conversation_id == conversation_id)
        .order_by(Case.received_at.desc(), Case.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def list_cases(
    session: AsyncSession,
    *,
    status: CaseStatus | None = None,
    limit: int | None = None,
    overdue_by: datetime | None = None,
    due_before: datetime | None = None,
) -> Sequence[Case]:
    """Cases newest first, optionally only those with ``status``.

    ``overdue_by`` keeps cases overdue at that moment; ``due_before`` keeps open cases
    due before that moment (the same condition: both soonest due first).
    """
    query = select(Case).options(selectinload(Case.categories)).order_by(Case.received_at.desc())
    if status:
        query = query.where(Case.status == status)
    for moment in (overdue_by, due_before):
        if moment is not None:
            query = query.where(overdue_at(moment)).order_by(None).order_by(Case.due_at)
    if limit:
        query = query.limit(limit)
    return (await session.execute(query)).scalars().all()


async def transcript(session: AsyncSession, case_id: int) -> Sequence[TranscriptEntry]:
    """What was said in the case's conversation, oldest first."""
    query = (
        select(TranscriptEntry)
        .where(TranscriptEntry.case_id == case_id)
        .order_by(TranscriptEntry.at, TranscriptEntry.id)
    )
    return (await session.execute(query)).scalars().all()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def case_to_dict(case: Case, turns: Sequence[TranscriptEntry] | None = None) -> dict[str, Any]:
    """A case in the JSON shape the CLI prints, with field names of the case record."""
    data: dict[str, Any] = {
        "reference": case.reference,
        "status": case.status.value,
        "channel": case.channel,
        "received_at": _iso(case.received_at),
        "enquirer_type": case.enquirer_type,
        "setting": case.setting,
        "region": case.region,
        "platform_type": case.platform_type,
        "platform": case.platform,
        "categories": [c.category for c in case.categories],
        "subject": case.subject,
        "description": case.description,
        "links": list(case.links or []),
        "already_reported": case.already_reported,
        "urgent": case.urgent,
        "reply_via": case.reply_via,
        "contact_email": case.contact_email,
        "contact_phone": case.contact_phone,
        "contact_name": case.contact_name,
        "signposted_to": list(case.signposted_to or []),
        "due_at": _iso(case.due_at),
        "in_hours": case.in_hours,
        "claimed_by": case.claimed_by,
        "outcome": case.outcome,
        "outcome_note": case.outcome_note,
    }
    if turns is not None:
        data["transcript"] = [
            {"at": _iso(t.at), "sender": t.sender, "kind": t.kind, "text": t.text} for t in turns
        ]
    return data
