"""The intake service: one transaction per message, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.services.intake import IntakeService
from flows.intake import IntakeFlow
from flows.messages import Inbound, Reply
from storage import cases as case_store
from storage.models import Case, TranscriptEntry
from tests.support.conversations import PROFESSIONAL_TO_REVIEW


def service(sessions: async_sessionmaker[AsyncSession]) -> IntakeService:
    return IntakeService(engine=sessions.kw["bind"], sessions=sessions, flow=IntakeFlow())


async def say(intake: IntakeService, chat: str, *texts: str) -> None:
    for text in texts:
        await intake.handle("test", chat, Inbound.typed(text))


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_service_full_conversation_stores_case_with_transcript(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    await say(intake, "c1", *PROFESSIONAL_TO_REVIEW)
    await intake.handle("test", "c1", Inbound.attachment())
    handled = await intake.handle("test", "c1", Inbound.typed("send"))
    assert handled.case is not None and handled.case.status == "new"
    async with sessions() as session:
        case = await case_store.get_case(session, handled.case.reference)
        assert case is not None
        turns = await case_store.transcript(session, case.id)
    assert case.subject == "Fake TikTok account using our school logo"
    assert case.contact_email == "dsl@school.example.org.uk"
    assert [t.kind for t in turns].count("attachment_refused") == 1
    assert any(t.sender == "enquirer" and t.text == "Teacher" for t in turns)
    assert any(t.sender == "bot" and handled.case.reference in t.text for t in turns)


async def test_service_restart_continues_at_the_same_step(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await say(service(sessions), "c2", "hi", "school staff", "teacher")
    handled = await service(sessions).handle("test", "c2", Inbound.typed("primary"))
    assert handled.step == "region"


async def test_service_carries_on_when_the_server_drops_its_connections(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("only a database server drops connections")
    intake = service(sessions)
    await intake.handle("test", "c9", Inbound.typed("hi"))
    # What a server restart does: every connection to the database ends, pooled ones too.
    admin = create_async_engine(engine.url)
    async with admin.connect() as connection:
        ended = await connection.scalar(
            sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    await admin.dispose()
    assert ended
    handled = await intake.handle("test", "c9", Inbound.typed("police"))
    assert handled.step == "setting"


async def test_service_duplicate_update_is_processed_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    await intake.handle("test", "c3", Inbound.typed("hi"), dedupe=("bot", "1"))
    first = await intake.handle("test", "c3", Inbound.typed("police"), dedupe=("bot", "2"))
    again = await intake.handle("test", "c3", Inbound.typed("police"), dedupe=("bot", "2"))
    assert first.step == "setting"
    assert again.duplicate and again.replies == ()


async def test_service_channel_record_of_a_turn_is_kept_with_it_or_not_at_all(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A channel's record of the turn (the web chat's messages) shares its transaction:
    when it cannot be written, the turn is not taken, and its resend is taken as new."""
    intake = service(sessions)
    await intake.handle("test", "c6", Inbound.typed("hi"), dedupe=("web", "1"))
    seen: list[tuple[int, bool]] = []

    async def unwritable(connection: AsyncConnection, replies: tuple[Reply, ...], _: bool) -> None:
        await connection.execute(select(1))
        raise OSError("the disk is full")

    async def written(
        connection: AsyncConnection, replies: tuple[Reply, ...], forgot: bool
    ) -> None:
        seen.append((len(replies), forgot))

    cancel = Inbound.typed("cancel")
    with pytest.raises(OSError):
        await intake.handle("test", "c6", cancel, dedupe=("web", "2"), with_turn=unwritable)
    again = await intake.handle("test", "c6", cancel, dedupe=("web", "2"), with_turn=written)
    assert not again.duplicate and again.forgot
    assert seen == [(len(again.replies), True)]


async def test_service_signposted_contact_keeps_no_transcript_or_details(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    handled = None
    for text in ("hi", "I'm under 18"):
        handled = await intake.handle("test", "c4", Inbound.typed(text))
    assert handled is not None and handled.case is not None
    assert handled.case.status == "signposted"
    assert await count(sessions, TranscriptEntry) == 0
    async with sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert case.enquirer_type == "Child (12-18)"
    assert "Childline" in case.signposted_to
    assert case.conversation_id is None and case.subject is None


async def test_service_cancel_deletes_the_transcript(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    await say(intake, "c5", "hi", "school staff", "teacher", "cancel")
    assert await count(sessions, TranscriptEntry) == 0
    assert await count(sessions, Case) == 0


async def test_service_one_chat_at_a_time_many_chats_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    chats = [f"p{i}" for i in range(8)]
    await asyncio.gather(*(say(intake, chat, *PROFESSIONAL_TO_REVIEW, "send") for chat in chats))
    assert await count(sessions, Case) == len(chats)


async def test_service_messages_for_one_chat_keep_their_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    await intake.handle("test", "c6", Inbound.typed("hi"))
    results = await asyncio.gather(
        *(
            intake.handle("test", "c6", Inbound.typed(t))
            for t in ("school staff", "teacher", "primary")
        )
    )
    assert [r.step for r in results] == ["role", "setting", "region"]
