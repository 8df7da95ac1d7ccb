"""The practitioner desk: race-safe claims and the record of every action."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.desk import DeskService
from flows.conversation import CaseDraft, CaseStatus
from flows.intake import IntakeFlow
from flows.privacy import AuditAction, AuditChannel
from storage import audit, outbox
from storage import cases as case_store
from storage.models import Case, CaseEvent, OutboxMessage

NOW = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


def desk(sessions: async_sessionmaker[AsyncSession]) -> DeskService:
    flow = IntakeFlow()
    return DeskService(sessions=sessions, copy=flow.copy, taxonomy=flow.taxonomy, clock=lambda: NOW)


async def new_case(
    sessions: async_sessionmaker[AsyncSession], reference: str = "HL-RACE01"
) -> None:
    async with sessions() as session, session.begin():
        case_store.create_case(
            session, CaseDraft(reference, CaseStatus.NEW, NOW, subject="s"), channel="terminal"
        )


async def test_desk_100_concurrent_claims_have_exactly_one_winner(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await new_case(sessions)
    service = desk(sessions)
    results = await asyncio.gather(*(service.claim("HL-RACE01", f"p{i}") for i in range(100)))
    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    losers = [r for r in results if not r.ok]
    assert all("already claimed by" in r.message for r in losers)
    async with sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
        claims = (await session.execute(select(CaseEvent))).scalars().all()
    assert case.status == "claimed" and len(claims) == 1 and claims[0].actor == case.claimed_by


async def test_desk_only_the_holder_can_release_reply_or_resolve(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await new_case(sessions)
    service = desk(sessions)
    assert (await service.claim("HL-RACE01", "sam")).ok
    for attempt in (
        service.release("HL-RACE01", "kim"),
        service.reply("HL-RACE01", "kim", "hello"),
        service.resolve("HL-RACE01", "kim", "advice"),
    ):
        result = await attempt
        assert not result.ok and "held by sam" in result.message
    assert (await service.resolve("HL-RACE01", "sam", "advice", "Talked it through")).ok


async def test_desk_anyone_may_act_on_an_unclaimed_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await new_case(sessions)
    result = await desk(sessions).resolve("HL-RACE01", "kim", "No further action")
    assert result.ok and "No further action" in result.message


async def test_desk_actions_write_card_updates_and_thread_notes_to_the_outbox(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await new_case(sessions)
    await desk(sessions).claim("HL-RACE01", "sam")
    async with sessions() as session:
        kinds = (
            (await session.execute(select(OutboxMessage.kind).order_by(OutboxMessage.id)))
            .scalars()
            .all()
        )
    assert kinds == [outbox.SLACK_CARD, outbox.SLACK_THREAD]


async def test_desk_bad_input_gets_a_clear_answer(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await new_case(sessions)
    service = desk(sessions)
    assert "no case HL-NOPE00" in (await service.claim("HL-NOPE00", "sam")).message
    assert "Unknown outcome" in (await service.resolve("HL-RACE01", "sam", "bananas")).message
    assert "needs some text" in (await service.reply("HL-RACE01", "sam", "   ")).message
    assert "keep it under" in (await service.reply("HL-RACE01", "sam", "x" * 5000)).message


async def test_desk_listing_cases_or_their_links_is_audited_per_case_shown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await new_case(sessions, "HL-LIST01")
    await new_case(sessions, "HL-LIST02")
    service = desk(sessions)
    rows = await service.listed("cli:sam", AuditChannel.CLI, AuditAction.CASE_LISTED)
    assert sorted(r["reference"] for r in rows) == ["HL-LIST01", "HL-LIST02"]
    none = await service.listed(
        "cli:sam", AuditChannel.CLI, AuditAction.CASE_EXPORTED, status=CaseStatus.RESOLVED
    )
    linked = await service.linked("hl-list01", "cli:kim", AuditChannel.CLI)
    missing = await service.linked("HL-NOPE01", "cli:kim", AuditChannel.CLI)
    assert none == [] and missing is None
    assert linked is not None and linked[0].reference == "HL-LIST01" and linked[1] == []
    async with sessions() as session:
        trail = [(e.actor, e.action, e.case_reference) for e in await audit.entries(session)]
    assert sorted(trail) == [
        ("cli:kim", "links_shown", "HL-LIST01"),
        ("cli:sam", "case_listed", "HL-LIST01"),
        ("cli:sam", "case_listed", "HL-LIST02"),
    ]
