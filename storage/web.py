"""Web chat sessions and the numbered messages of each web chat.

A browser holds a random token; only its SHA-256 is stored, so a copy of the database
opens no chat. Every message shown in a web chat (the bot's, the enquirer's own, a
practitioner's) is kept with its number in that chat (``seq``, 1, 2, 3…), so a browser
that reconnects asks for what came after the last number it saw: no gaps, no repeats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import WebMessage, WebSession


def token_hash(token: str) -> str:
    """What is stored for a token: its SHA-256 in hex (the token itself never is)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Numbered:
    """A web chat message as the browser gets it."""

    seq: int
    payload: dict[str, Any]


async def open_session(
    session: AsyncSession, *, token: str, chat_id: str, now: datetime, expires_at: datetime
) -> None:
    """Record a new session for ``token`` (a unique random chat id was chosen for it)."""
    session.add(
        WebSession(
            token_hash=token_hash(token), chat_id=chat_id, created_at=now, expires_at=expires_at
        )
    )
    await session.flush()


async def chat_for(session: AsyncSession, token: str, now: datetime) -> str | None:
    """The chat a token opens, or None (unknown, ended or expired)."""
    found = await session.execute(
        select(WebSession.chat_id).where(
            WebSession.token_hash == token_hash(token), WebSession.expires_at > now
        )
    )
    return found.scalar_one_or_none()


async def is_open(session: AsyncSession, chat_id: str, now: datetime) -> bool:
    """Whether a chat still has a live session (someone could still read a reply there)."""
    found = await session.execute(
        select(WebSession.id).where(WebSession.chat_id == chat_id, WebSession.expires_at > now)
    )
    return found.first() is not None


async def end_session(session: AsyncSession, chat_id: str) -> None:
    """Forget the session and every message shown in it (quick exit, or expiry)."""
    await session.execute(delete(WebMessage).where(WebMessage.chat_id == chat_id))
    await session.execute(delete(WebSession).where(WebSession.chat_id == chat_id))


async def append(
    session: AsyncSession,
    chat_id: str,
    messages: Sequence[tuple[str, dict[str, Any]]],
    now: datetime,
) -> list[Numbered]:
    """Number and store ``(origin, payload)`` messages after the chat's last one.

    An origin already stored in this chat is skipped (a resend writes nothing twice).
    Two writers numbering the same chat at once collide on the unique ``(chat, seq)``:
    the loser's transaction fails and the caller tries again.
    """
    if not messages:
        return []
    origins = [origin for origin, _ in messages]
    seen = set(
        (
            await session.execute(
                select(WebMessage.origin).where(
                    WebMessage.chat_id == chat_id, WebMessage.origin.in_(origins)
                )
            )
        ).scalars()
    )
    last = (
        await session.execute(
            select(func.coalesce(func.max(WebMessage.seq), 0)).where(WebMessage.chat_id == chat_id)
        )
    ).scalar_one()
    added: list[Numbered] = []
    for origin, payload in messages:
        if origin in seen:
            continue
        last += 1
        seen.add(origin)
        session.add(WebMessage(chat_id=chat_id, seq=last, origin=origin, payload=payload, at=now))
        added.append(Numbered(last, payload))
    await session.flush()
    return added


FORGET = "forget"
"""The payload key of a stored "forget what you drew" message: ``"own"`` or ``"all"``."""


async def forget(
    session: AsyncSession,
    chat_ids: Sequence[str],
    text: str,
    now: datetime,
    *,
    everything: bool,
) -> int:
    """Blank what the chats showed, and tell every page showing them to do the same.

    The enquirer's own messages become ``text`` (their conversation was deleted: cancel,
    restart, signposting), or, with ``everything`` (an erasure: the bot's summary and the
    desk's replies quote them too), every message, keeping who it was from. Numbers are
    kept, so no page misses what comes next. Each chat then gets a numbered ``forget``
    message of its own, which every socket on the chat, on any replica, passes on as a
    ``forgotten`` frame: the page that asked, another tab, or one open while the desk
    erased the case. How many messages were blanked."""
    if not chat_ids:
        return 0
    rows = (
        await session.execute(select(WebMessage).where(WebMessage.chat_id.in_(list(chat_ids))))
    ).scalars()
    blanked = 0
    for row in rows:
        if FORGET in row.payload:
            continue
        who = row.payload.get("from", "bot")
        if not everything and who != "you":
            continue
        kept = {"from": who, "text": text} if everything else {**row.payload, "text": text}
        if row.payload != kept:
            row.payload = kept
            blanked += 1
    marker = {FORGET: "all" if everything else "own", "text": text}
    live = (
        await session.execute(
            select(WebSession.chat_id).where(WebSession.chat_id.in_(list(chat_ids)))
        )
    ).scalars()
    for chat_id in sorted(set(live)):  # an ended session has no page left to tell
        await _append_racing(session, chat_id, (f"{FORGET}:{uuid4().hex}", marker), now)
    return blanked


async def _append_racing(
    session: AsyncSession, chat_id: str, message: tuple[str, dict[str, Any]], now: datetime
) -> None:
    """Append one message in a savepoint, taking the next number again if a writer of the
    same chat (a desk reply being shown) took it first: the caller's transaction (an
    erasure) is not undone by that collision."""
    for attempt in range(5):
        try:
            async with session.begin_nested():
                await append(session, chat_id, [message], now)
            return
        except IntegrityError:
            if attempt == 4:
                raise


async def from_bot(session: AsyncSession, chat_id: str, scan: int = 50) -> list[Numbered]:
    """The bot's messages among the chat's last ``scan``, newest first: the newest is the
    one whose buttons the page shows (the payloads are sealed, so they are read here)."""
    rows = await session.execute(
        select(WebMessage.seq, WebMessage.payload)
        .where(WebMessage.chat_id == chat_id)
        .order_by(WebMessage.seq.desc())
        .limit(scan)
    )
    return [Numbered(int(s), dict(p)) for s, p in rows if dict(p).get("from") == "bot"]


async def after(session: AsyncSession, chat_id: str, seq: int, limit: int = 500) -> list[Numbered]:
    """The chat's messages numbered above ``seq``, in order (at most ``limit``)."""
    rows = await session.execute(
        select(WebMessage.seq, WebMessage.payload)
        .where(WebMessage.chat_id == chat_id, WebMessage.seq > seq)
        .order_by(WebMessage.seq)
        .limit(limit)
    )
    return [Numbered(int(s), dict(p)) for s, p in rows]


async def latest_with_question(
    session: AsyncSession, chat_id: str, question: str
) -> dict[str, Any] | None:
    """The newest message in the chat that asked ``question`` (to name a pressed option)."""
    rows = await session.execute(
        select(WebMessage.payload)
        .where(WebMessage.chat_id == chat_id)
        .order_by(WebMessage.seq.desc())
        .limit(50)
    )
    for (payload,) in rows:
        if isinstance(payload, dict) and payload.get("question") == question:
            return dict(payload)
    return None


async def last_id(session: AsyncSession) -> int:
    """The newest message's row id across all chats (where a poller starts)."""
    return int(
        (await session.execute(select(func.coalesce(func.max(WebMessage.id), 0)))).scalar_one()
    )


async def written_since(session: AsyncSession, row_id: int) -> list[tuple[int, str]]:
    """``(row id, chat)`` of messages stored after row ``row_id``, by any process.

    One query a poll for the whole process, however many chats are open: how a reply
    written by another replica reaches the socket held here.
    """
    rows = await session.execute(
        select(WebMessage.id, WebMessage.chat_id)
        .where(WebMessage.id > row_id)
        .order_by(WebMessage.id)
        .limit(5000)
    )
    return [(int(i), str(c)) for i, c in rows]


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    """End every session past its expiry (with its messages); how many ended."""
    ended = list(
        (
            await session.execute(select(WebSession.chat_id).where(WebSession.expires_at <= now))
        ).scalars()
    )
    if ended:
        await session.execute(delete(WebMessage).where(WebMessage.chat_id.in_(ended)))
        await session.execute(delete(WebSession).where(WebSession.chat_id.in_(ended)))
    return len(ended)
