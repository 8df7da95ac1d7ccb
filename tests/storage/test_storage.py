"""Cases, conversations and transcripts on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flows.conversation import CaseDraft, CaseStatus, Conversation, Step
from storage import cases as case_store
from storage import conversations as convo_store
from storage import db
from storage.models import Base, Case, TranscriptEntry
from tests.support.drafts import NOW, draft


async def test_schema_from_migrations_matches_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    assert await db.current_revision(engine) is not None


async def test_upgrade_is_idempotent(engine: AsyncEngine) -> None:
    revision = await db.current_revision(engine)
    await db.upgrade(engine)
    assert await db.current_revision(engine) == revision


async def test_case_round_trips_with_labels_and_times(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        case_store.create_case(session, draft(), channel="terminal")
    async with sessions() as session:
        case = await case_store.get_case(session, "hl-aaaaaa")
        assert case is not None
        data = case_store.case_to_dict(case)
    assert data["categories"] == ["Online Reputation", "Cyberbullying"]
    assert data["received_at"] == "2026-11-24T14:30:00+00:00"
    assert data["links"] == ["https://tiktok.com/@x"]
    assert data["already_reported"] is True
    assert data["reply_via"] == "email"


async def test_case_references_are_unique(sessions: async_sessionmaker[AsyncSession]) -> None:
    from sqlalchemy.exc import IntegrityError

    async with sessions() as session, session.begin():
        case_store.create_case(session, draft(), channel="terminal")
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            case_store.create_case(session, draft(), channel="terminal")


async def test_case_list_filters_by_status_newest_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        case_store.create_case(session, draft("HL-OLD111"), channel="terminal")
        case_store.create_case(
            session, draft("HL-NEW222", received_at=NOW + timedelta(hours=1)), channel="terminal"
        )
        case_store.create_case(
            session,
            CaseDraft("HL-SIGN33", CaseStatus.SIGNPOSTED, NOW, enquirer_type="Child (12-18)"),
            channel="terminal",
        )
    async with sessions() as session:
        new = [c.reference for c in await case_store.list_cases(session, status=CaseStatus.NEW)]
        everything = await case_store.list_cases(session)
    assert new == ["HL-NEW222", "HL-OLD111"]
    assert len(everything) == 3


def test_new_reference_is_short_and_unambiguous() -> None:
    refs = {case_store.new_reference() for _ in range(500)}
    assert len(refs) == 500
    for ref in refs:
        assert ref.startswith("HL-") and len(ref) == 9
        assert not set(ref[3:]) & set("01OIL")


async def test_conversation_progress_survives_a_new_session(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        record = await convo_store.load_for_update(session, "telegram", "42", NOW)
        await convo_store.store(
            session, record, Conversation(step=Step.REGION, answers={"setting": "primary"}), NOW
        )
    async with sessions() as session, session.begin():
        record = await convo_store.load_for_update(session, "telegram", "42", NOW)
        restored = convo_store.restore(record)
    assert restored.step is Step.REGION
    assert restored.answers == {"setting": "primary"}


async def test_transcript_attaches_to_the_case_and_forgets_the_rest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        record = await convo_store.load_for_update(session, "terminal", "me", NOW)
        convo_store.add_turn(
            session, conversation_id=record.id, sender="enquirer", text="hi", at=NOW
        )
        case = case_store.create_case(
            session, draft(), channel="terminal", conversation_id=record.id
        )
        await session.flush()
        await convo_store.attach_transcript(session, record.id, case.id)
        convo_store.add_turn(
            session, conversation_id=record.id, sender="enquirer", text="later", at=NOW
        )
        await convo_store.forget_transcript(session, record.id)
    async with sessions() as session:
        kept = (await session.execute(select(TranscriptEntry.text))).scalars().all()
        case_turns = await case_store.transcript(session, case.id)
    assert kept == ["hi"]
    assert [t.text for t in case_turns] == ["hi"]


async def test_dedupe_key_is_first_time_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        assert await convo_store.first_time(session, "bot1", "100", NOW)
        assert not await convo_store.first_time(session, "bot1", "100", NOW)
        assert await convo_store.first_time(session, "bot2", "100", NOW)
    async with sessions() as session, session.begin():
        assert await convo_store.forget_processed_before(session, NOW + timedelta(days=2)) == 2


async def test_datetimes_come_back_aware_in_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    from zoneinfo import ZoneInfo

    london = datetime(2026, 7, 1, 10, 0, tzinfo=ZoneInfo("Europe/London"))
    async with sessions() as session, session.begin():
        case_store.create_case(session, draft(received_at=london), channel="terminal")
    async with sessions() as session:
        stored = (await session.execute(select(Case.received_at))).scalar_one()
    assert stored == london and stored.utcoffset() == timedelta(0)


async def test_retention_erases_personal_data_but_keeps_the_figures(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from storage.retention import purge_before

    async with sessions() as session, session.begin():
        record = await convo_store.load_for_update(session, "telegram", "9", NOW)
        old = case_store.create_case(
            session, draft("HL-OLD999"), channel="telegram", conversation_id=record.id
        )
        case_store.create_case(
            session, draft("HL-NEW999", received_at=NOW + timedelta(days=400)), channel="telegram"
        )
        await session.flush()
        convo_store.add_turn(
            session,
            conversation_id=record.id,
            case_id=old.id,
            sender="enquirer",
            text="secret",
            at=NOW,
        )
    async with sessions() as session, session.begin():
        purged = await purge_before(session, NOW + timedelta(days=30))
    assert purged.cases == 1 and purged.conversations == 1
    async with sessions() as session:
        erased = await case_store.get_case(session, "HL-OLD999")
        kept = await case_store.get_case(session, "HL-NEW999")
        turns = (await session.execute(select(TranscriptEntry))).scalars().all()
    assert erased is not None and kept is not None
    assert erased.description is None and erased.contact_email is None and erased.subject is None
    assert [c.category for c in erased.categories] == ["Online Reputation", "Cyberbullying"]
    assert erased.enquirer_type == "Teacher"
    assert kept.description == "Details"
    assert turns == []


async def test_a_reader_reads_beside_another_process_writing(database_url: str) -> None:
    """A report or a listing (``db.reader_factory``) reads what was committed while another
    process (here, a second engine on the same database) is in the middle of a write:
    on SQLite it begins ``DEFERRED`` rather than waiting for the write lock."""
    service = db.create_engine(database_url)
    report = db.create_engine(database_url)
    try:
        await db.upgrade(service)
        async with db.session_factory(service)() as session, session.begin():
            case_store.create_case(session, draft(), channel="terminal")
        async with db.session_factory(service)() as writing, writing.begin():
            case_store.create_case(writing, draft("HL-BBBBBB"), channel="terminal")
            await writing.flush()  # the write lock is held until this block ends
            async with db.reader_factory(report)() as reading:
                found = await asyncio.wait_for(case_store.list_cases(reading), timeout=10)
        assert [c.reference for c in found] == ["HL-AAAAAA"], "only what was committed"
    finally:
        await report.dispose()
        await service.dispose()
