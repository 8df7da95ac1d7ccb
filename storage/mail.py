"""Email bookkeeping: each inbound message handled once, our Message-IDs kept for threading.

Nothing an email said is stored here (the case holds the description); only where the
message sat in the mailbox, its Message-ID, what became of it and, for the per-sender
limit on acknowledgements, a hash of the sender's address. An email we send is queued
by :func:`queue_email`: its Message-ID kept and its outbox row (sealed, as every outbox
payload is) written in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.models import Case, EmailRecord

CHANNEL = "email"
"""The enquirer channel of everything sent by email (what the outbox's sender goes by)."""
INBOUND = "in"
OUTBOUND = "out"


def message_id(token: str, domain: str) -> str:
    """One of our Message-IDs: ``<hl-TOKEN@domain>`` (``hl-`` marks it as ours)."""
    safe = re.sub(r"[^A-Za-z0-9.\-]", "-", token)[:120]
    return f"<hl-{safe}@{domain}>"


def domain_of(address: str) -> str:
    """The domain our Message-IDs use: the helpline's own address's."""
    return address.rsplit("@", 1)[-1] if "@" in address else "helpline.invalid"


def sender_key(address: str) -> str:
    """The hash an address is known by here (lower-cased: mail is case-blind in practice)."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def chat_of(address: str) -> str:
    """The enquirer's "chat" on the email channel: the address's hash, short enough for the
    conversations table and free of the address itself (outbox streams show it)."""
    return "e:" + sender_key(address)[:40]


class Seen(StrEnum):
    """Whether an inbound email was handled before."""

    NEW = "new"
    HANDLED = "handled"
    """The same place in the mailbox, or the same Message-ID from the same sender."""
    ID_TAKEN = "id_taken"
    """Its Message-ID belongs to another sender's email: a different message (broken or
    hostile mailers reuse them), handled as new and recorded without the id."""


async def seen(
    session: AsyncSession, *, mailbox_key: str, message_id: str | None, sender: str | None
) -> Seen:
    """Whether this message (or a copy of it delivered again) was handled already."""
    placed = select(EmailRecord.id).where(EmailRecord.mailbox_key == mailbox_key)
    if (await session.execute(placed.limit(1))).first():
        return Seen.HANDLED
    if not message_id:
        return Seen.NEW
    query = select(EmailRecord.sender_key).where(
        EmailRecord.direction == INBOUND, EmailRecord.message_id == message_id
    )
    row = (await session.execute(query.limit(1))).first()
    if row is None:
        return Seen.NEW
    same = row.sender_key == (sender_key(sender) if sender else None)
    return Seen.HANDLED if same else Seen.ID_TAKEN


def record_inbound(
    session: AsyncSession,
    *,
    mailbox_key: str,
    message_id: str | None,
    outcome: str,
    at: datetime,
    case_id: int | None = None,
    sender: str | None = None,
    acknowledged: bool = False,
) -> None:
    """Note an inbound email as handled, in the transaction that handled it."""
    session.add(
        EmailRecord(
            direction=INBOUND,
            message_id=message_id,
            mailbox_key=mailbox_key,
            case_id=case_id,
            outcome=outcome,
            sender_key=sender_key(sender) if sender else None,
            acknowledged=acknowledged,
            at=at,
        )
    )


async def record_outbound(
    session: AsyncSession,
    *,
    message_id: str,
    case_id: int | None,
    outcome: str,
    at: datetime,
    recipient: str | None = None,
    acknowledged: bool = False,
) -> None:
    """Keep one of our Message-IDs (once: a resend of the same row adds nothing)."""
    values = {
        "direction": OUTBOUND,
        "message_id": message_id,
        "case_id": case_id,
        "outcome": outcome,
        "sender_key": sender_key(recipient) if recipient else None,
        "acknowledged": acknowledged,
        "at": at,
    }
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(EmailRecord).values(values).on_conflict_do_nothing())


COPY_ASKED_ON = "copy_asked_on"
"""The payload key of a copy's email: the audit channel the copy was asked for on."""


async def queue_email(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    text: str,
    message_id: str,
    case_id: int | None,
    outcome: str,
    at: datetime,
    in_reply_to: str = "",
    references: Sequence[str] = (),
    acknowledged: bool = False,
    copy_asked_on: str | None = None,
) -> None:
    """An automatic email to an enquirer, in the caller's transaction: its Message-ID kept
    (so their answer threads onto the case; ``acknowledged`` counts it for the hourly
    limit) and the whole message in the outbox, whose email sender delivers it as it is.
    The Message-ID is fixed here, so every attempt sends the same email.

    ``copy_asked_on``: the email is a copy of the case, asked for on that audit channel;
    the sender audits the disclosure when the mail server takes it (not before: a copy
    the server refuses disclosed nothing)."""
    await record_outbound(
        session,
        message_id=message_id,
        case_id=case_id,
        outcome=outcome,
        at=at,
        recipient=to,
        acknowledged=acknowledged,
    )
    payload: dict[str, object] = {
        "channel": CHANNEL,
        "chat_id": chat_of(to),
        "to": to,
        "subject": subject,
        "text": text,
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": list(references),
        "automatic": True,
        **({COPY_ASKED_ON: copy_asked_on} if copy_asked_on else {}),
    }
    outbox.enqueue(session, outbox.ENQUIRER_MESSAGE, now=at, case_id=case_id, payload=payload)


async def acknowledgements_since(session: AsyncSession, address: str, since: datetime) -> int:
    """How many acknowledgements went to this address since ``since`` (the loop guard)."""
    query = select(func.count()).where(
        EmailRecord.direction == OUTBOUND,
        EmailRecord.acknowledged.is_(True),
        EmailRecord.sender_key == sender_key(address),
        EmailRecord.at >= since,
    )
    return int((await session.execute(query)).scalar_one())


async def case_for_thread(session: AsyncSession, message_ids: Collection[str]) -> int | None:
    """The case an email answers: one whose mail (ours or theirs) it refers to."""
    ids = [m for m in message_ids if m][:50]
    if not ids:
        return None
    query = (
        select(EmailRecord.case_id)
        .where(EmailRecord.message_id.in_(ids), EmailRecord.case_id.is_not(None))
        .order_by(EmailRecord.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def ours(session: AsyncSession, message_ids: Collection[str]) -> EmailRecord | None:
    """The outbound email among ``message_ids`` (a bounce names the mail it returns)."""
    ids = [m for m in message_ids if m][:50]
    if not ids:
        return None
    query = select(EmailRecord).where(
        EmailRecord.direction == OUTBOUND, EmailRecord.message_id.in_(ids)
    )
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def thread_of(session: AsyncSession, case_id: int) -> Sequence[str]:
    """The Message-IDs of a case's emails, oldest first (a reply's References)."""
    query = (
        select(EmailRecord.message_id)
        .where(EmailRecord.case_id == case_id, EmailRecord.message_id.is_not(None))
        .order_by(EmailRecord.id)
    )
    return [m for m in (await session.execute(query)).scalars() if m]


async def last_inbound(session: AsyncSession, case_id: int) -> str | None:
    """The enquirer's latest Message-ID on a case (what a reply is In-Reply-To)."""
    query = (
        select(EmailRecord.message_id)
        .where(
            EmailRecord.case_id == case_id,
            EmailRecord.direction == INBOUND,
            EmailRecord.message_id.is_not(None),
        )
        .order_by(EmailRecord.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def case_by_reference(session: AsyncSession, reference: str) -> Case | None:
    """The case a subject line's reference names (only cases opened by email count)."""
    query = select(Case).where(Case.reference == reference.upper(), Case.channel == CHANNEL)
    return (await session.execute(query)).scalar_one_or_none()
