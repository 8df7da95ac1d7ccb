"""The audit trail: appended by the application, refused any change by the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flows.conversation import CaseDraft, CaseStatus
from flows.privacy import AuditAction, AuditChannel
from storage import audit
from storage import cases as case_store
from storage import privacy as privacy_store
from storage.models import AuditEntry

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def draft() -> CaseDraft:
    return CaseDraft(
        "HL-AUDIT1",
        CaseStatus.NEW,
        NOW,
        enquirer_type="Teacher",
        subject="Fake account",
        description="Someone is pretending to be the head",
        contact_email="a@school.org",
    )


async def add(sessions: async_sessionmaker[AsyncSession], **values: object) -> None:
    entry = {
        "at": NOW,
        "actor": "<@U1>",
        "action": AuditAction.CONTACT_SHOWN,
        "channel": AuditChannel.SLACK,
        "case_reference": "HL-AAAAAA",
    }
    entry.update(values)
    async with sessions() as session, session.begin():
        audit.record(session, **entry)  # type: ignore[arg-type]


async def test_entries_are_listed_by_case_actor_and_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    await add(
        sessions,
        actor="dpo",
        action=AuditAction.SAR_EXPORT,
        channel=AuditChannel.CLI,
        at=NOW + timedelta(days=1),
    )
    await add(sessions, case_reference="HL-BBBBBB", at=NOW + timedelta(days=2))
    async with sessions() as session:
        by_case = await audit.entries(session, case_reference="hl-aaaaaa")
        by_actor = await audit.entries(session, actor="dpo")
        since = await audit.entries(session, since=NOW + timedelta(hours=1))
    assert [e.action for e in by_case] == ["contact_shown", "sar_export"]
    assert [audit.entry_to_dict(e) for e in by_actor] == [
        {
            "at": (NOW + timedelta(days=1)).isoformat(),
            "actor": "dpo",
            "action": "sar_export",
            "case": "HL-AAAAAA",
            "channel": "cli",
        }
    ]
    assert len(since) == 2


async def test_the_database_refuses_to_change_or_delete_audit_entries(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add(sessions)
    for statement in (
        update(AuditEntry).values(actor="someone else"),
        delete(AuditEntry),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with sessions() as session, session.begin():
                await session.execute(statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text("TRUNCATE audit"))
    async with sessions() as session:
        entries = await audit.entries(session)
    assert [e.actor for e in entries] == ["<@U1>"]


async def test_audit_entries_outlive_the_erasure_of_their_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        case = case_store.create_case(session, draft(), channel="telegram")
        await session.flush()
        audit.record(
            session,
            at=NOW,
            actor="<@U1>",
            action=AuditAction.CLAIM,
            channel=AuditChannel.SLACK,
            case_reference=case.reference,
        )
    async with sessions() as session, session.begin():
        await privacy_store.erase_cases(session, [case.id], NOW)
    async with sessions() as session:
        erased = await case_store.get_case(session, case.reference)
        entries = await audit.entries(session, case_reference=case.reference)
    assert erased is not None and erased.description is None and erased.erased_at == NOW
    assert erased.enquirer_type == "Teacher"  # the label stays
    assert [e.action for e in entries] == ["claim"]


def test_an_audit_entry_has_no_column_for_personal_data() -> None:
    columns = set(AuditEntry.__table__.columns.keys())
    assert columns == {"id", "at", "actor", "action", "case_reference", "channel"}
