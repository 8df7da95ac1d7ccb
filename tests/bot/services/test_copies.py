"""A copy asked for in a chat: queued by email with its case, once, audited, sealed at rest.

On SQLite and PostgreSQL. Sending it over SMTP is ``tests/bot/email/test_copy_sending.py``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.services.intake import Handled, IntakeService
from flows.intake import IntakeFlow
from flows.messages import Inbound
from storage import cases as case_store
from storage import db, outbox
from storage.models import Case, ConversationRecord, EmailRecord, OutboxMessage
from tests.support.audit import trail
from tests.support.conversations import PROFESSIONAL_TO_REVIEW
from tests.support.dumps import dump, sqlite_files

OWN = "helpline@helpline.test"
WROTE = "edited photos of staff with insulting captions"
"""What the enquirer wrote, which the copy holds and no dump may show."""


def service(
    sessions: async_sessionmaker[AsyncSession], email_from: str | None = OWN
) -> IntakeService:
    return IntakeService(
        engine=sessions.kw["bind"], sessions=sessions, flow=IntakeFlow(), email_from=email_from
    )


async def submitted(intake: IntakeService, chat: str = "501") -> str:
    for text in PROFESSIONAL_TO_REVIEW:
        await intake.handle("telegram", chat, Inbound.typed(text))
    handled = await intake.handle("telegram", chat, Inbound.typed("send"))
    assert handled.case is not None
    return handled.case.reference


async def ask_copy(intake: IntakeService, chat: str = "501", update: str | None = None) -> Handled:
    dedupe = ("bot", update) if update else None
    return await intake.handle("telegram", chat, Inbound.chose("copy"), dedupe=dedupe)


async def emails(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == outbox.ENQUIRER_MESSAGE)
        return list((await session.execute(query.order_by(OutboxMessage.id))).scalars())


async def test_a_copy_is_queued_by_email_with_its_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    reference = await submitted(intake)
    handled = await ask_copy(intake)
    assert "I'm emailing it to d…@school.example.org.uk too." in handled.replies[-1].text
    (row,) = await emails(sessions)
    async with sessions() as session:
        case = await case_store.get_case(session, reference)
        records = list((await session.execute(select(EmailRecord))).scalars())
    assert case is not None and row.case_id == case.id
    assert row.payload["channel"] == "email" and row.payload["to"] == "dsl@school.example.org.uk"
    assert row.payload["message_id"] == f"<hl-{reference}-copy@helpline.test>"
    assert row.payload["subject"] == f"[{reference}] A copy of your enquiry"
    assert WROTE in row.payload["text"] and row.payload["automatic"]
    assert row.stream is not None and "school" not in row.stream, "the stream hides the address"
    assert [(r.direction, r.outcome, r.case_id) for r in records] == [("out", "copy", case.id)]
    assert row.payload["copy_asked_on"] == "telegram"
    # Shown in the chat: disclosed now. Emailed: audited when the mail server takes it.
    assert await trail(sessions) == [("enquirer", "copy_shown", "telegram", reference)]


async def test_asking_again_or_a_resent_update_queues_no_second_email(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions)
    reference = await submitted(intake)
    await ask_copy(intake, update="9001")
    resent = await ask_copy(intake, update="9001")
    assert resent.duplicate
    again = await ask_copy(intake, update="9002")
    assert "It was emailed to d…@school.example.org.uk already." in again.replies[-1].text
    assert len(await emails(sessions)) == 1
    actions = [a for _, a, _, _ in await trail(sessions)]
    assert actions == ["copy_shown", "copy_shown"], reference


async def test_a_second_ask_that_finds_the_copy_queued_adds_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Even if the conversation lost its note of the email (restored from an old backup,
    say), the case's copy id is taken: still one email."""
    intake = service(sessions)
    await submitted(intake)
    await ask_copy(intake)
    async with sessions() as session, session.begin():
        record = (await session.execute(select(Case))).scalar_one()
        chat = await session.get(ConversationRecord, record.conversation_id)
        assert chat is not None
        state = dict(chat.state)
        state["answers"] = {k: v for k, v in state["answers"].items() if k != "copy_emailed"}
        chat.state = state
    await ask_copy(intake)
    assert len(await emails(sessions)) == 1


async def test_without_email_the_chat_says_so_and_nothing_is_queued(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = service(sessions, email_from=None)
    reference = await submitted(intake)
    handled = await ask_copy(intake)
    assert "can't send email from here" in handled.replies[-1].text
    assert WROTE in handled.replies[-1].text, "the chat copy is still given"
    assert await emails(sessions) == []
    assert await trail(sessions) == [("enquirer", "copy_shown", "telegram", reference)]


async def test_a_dump_of_the_tables_shows_none_of_the_copy(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    intake = service(sessions)
    reference = await submitted(intake)
    await ask_copy(intake)
    (row,) = await emails(sessions)
    assert WROTE in row.payload["text"], "with the key it reads back"
    dumped = (await dump(engine)).lower()
    assert reference.lower() in dumped
    for secret in (WROTE, "dsl@school", "sam jones", "a copy of your enquiry"):
        assert secret not in dumped, secret


async def test_the_sqlite_file_shows_none_of_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "helpline.db"
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    intake = service(sessions)
    await submitted(intake)
    await ask_copy(intake)
    assert len(await emails(sessions)) == 1
    await engine.dispose()
    raw = sqlite_files(path)
    for secret in (WROTE, "dsl@school", "Sam Jones", "A copy of your enquiry"):
        assert secret.encode() not in raw, secret
