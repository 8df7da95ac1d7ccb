"""Web chat sessions and numbered messages in storage (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import web as web_store
from storage.models import WebMessage, WebSession

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


async def test_web_messages_are_numbered_in_order_and_an_origin_is_stored_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        first = await web_store.append(
            session, "w1", [("a", {"text": "one"}), ("b", {"text": "two"})], NOW
        )
        again = await web_store.append(
            session, "w1", [("b", {"text": "two"}), ("c", {"text": "three"})], NOW
        )
        other = await web_store.append(session, "w2", [("a", {"text": "elsewhere"})], NOW)
    assert [m.seq for m in first] == [1, 2]
    assert [(m.seq, m.payload["text"]) for m in again] == [(3, "three")]
    assert [m.seq for m in other] == [1]
    async with sessions() as session:
        after_one = await web_store.after(session, "w1", 1)
    assert [(m.seq, m.payload["text"]) for m in after_one] == [(2, "two"), (3, "three")]


async def test_web_session_opens_by_token_until_it_expires_and_is_purged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await web_store.open_session(
            session, token="secret-token", chat_id="w1", now=NOW, expires_at=NOW + timedelta(days=1)
        )
        await web_store.append(session, "w1", [("a", {"from": "you", "text": "hello"})], NOW)
    async with sessions() as session:
        assert await web_store.chat_for(session, "secret-token", NOW) == "w1"
        assert await web_store.chat_for(session, "other-token", NOW) is None
        later = NOW + timedelta(days=2)
        assert await web_store.chat_for(session, "secret-token", later) is None
        assert not await web_store.is_open(session, "w1", later)
        stored = (await session.execute(select(WebSession.token_hash))).scalar_one()
    assert "secret-token" not in stored
    async with sessions() as session, session.begin():
        assert await web_store.purge_expired(session, NOW) == 0
        assert await web_store.purge_expired(session, NOW + timedelta(days=2)) == 1
    async with sessions() as session:
        left = await session.scalar(select(func.count()).select_from(WebMessage))
    assert left == 0


async def live(session: AsyncSession, chat_id: str) -> None:
    """A session open on the chat (a page that can be told to blank what it shows)."""
    await web_store.open_session(
        session, token=f"t-{chat_id}", chat_id=chat_id, now=NOW, expires_at=NOW + timedelta(1)
    )


async def test_web_redaction_blanks_only_what_the_enquirer_wrote(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await live(session, "w1")
        await web_store.append(
            session,
            "w1",
            [("a", {"from": "bot", "text": "Who are you?"}), ("b", {"from": "you", "text": "Ann"})],
            NOW,
        )
        assert await web_store.forget(session, ["w1"], "(deleted)", NOW, everything=False) == 1
    async with sessions() as session:
        shown = [m.payload for m in await web_store.after(session, "w1", 0)]
    assert shown == [
        {"from": "bot", "text": "Who are you?"},
        {"from": "you", "text": "(deleted)"},
        {"forget": "own", "text": "(deleted)"},  # every page open on the chat is told
    ]


async def test_web_blanking_an_erased_chat_keeps_numbers_and_speakers_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    asked = {"from": "bot", "text": "Anything else?", "options": [{"id": "y"}], "question": "q"}
    async with sessions() as session, session.begin():
        await live(session, "w1")
        await web_store.append(
            session,
            "w1",
            [("a", asked), ("b", {"from": "you", "text": "Ann", "id": "c1"})],
            NOW,
        )
        await web_store.append(session, "w2", [("a", {"from": "you", "text": "Bea"})], NOW)
        assert await web_store.forget(session, ["w1"], "(deleted)", NOW, everything=True) == 2
        assert await web_store.forget(session, ["w1"], "(deleted)", NOW, everything=True) == 0
    async with sessions() as session:
        erased = [(m.seq, m.payload) for m in await web_store.after(session, "w1", 0)]
        other = [m.payload["text"] for m in await web_store.after(session, "w2", 0)]
    assert erased == [
        (1, {"from": "bot", "text": "(deleted)"}),
        (2, {"from": "you", "text": "(deleted)"}),
        (3, {"forget": "all", "text": "(deleted)"}),
        (4, {"forget": "all", "text": "(deleted)"}),
    ]
    assert other == ["Bea"], "and w2, with no page open, gets no message telling one"


async def test_web_bot_messages_newest_first(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await web_store.append(
            session,
            "w1",
            [
                ("a", {"from": "bot", "text": "one"}),
                ("b", {"from": "you", "text": "mine"}),
                ("c", {"from": "practitioner", "text": "desk"}),
                ("d", {"from": "bot", "text": "two"}),
            ],
            NOW,
        )
    async with sessions() as session:
        found = await web_store.from_bot(session, "w1")
        assert [(m.seq, m.payload["text"]) for m in found] == [(4, "two"), (1, "one")]
        assert await web_store.from_bot(session, "w2") == []
