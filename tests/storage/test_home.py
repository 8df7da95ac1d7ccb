"""The App Home queue in storage: urgent first then soonest due, mine, overdue; refreshes
for everyone coalesce while one waits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.conversation import CaseStatus
from storage import cases as case_store
from storage import home as home_store
from storage import outbox
from storage.models import OutboxMessage
from tests.support.drafts import NOW, draft


async def test_home_queue_orders_unclaimed_urgent_first_then_by_due_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = [
        ("HL-AAAAA1", False, 5, None),
        ("HL-AAAAA2", True, 9, None),
        ("HL-AAAAA3", False, 1, None),
        ("HL-AAAAA4", True, 2, None),
        ("HL-AAAAA5", False, -1, "<@U1>"),  # mine, and overdue
        ("HL-AAAAA6", False, 3, "<@U2>"),
        ("HL-AAAAA7", False, -2, None),  # unclaimed and overdue
    ]
    async with sessions() as session, session.begin():
        for reference, urgent, due_in, holder in rows:
            case = case_store.create_case(
                session,
                draft(reference, urgent=urgent),
                channel="telegram",
                due_at=NOW + timedelta(hours=due_in),
            )
            if holder:
                case.status, case.claimed_by = CaseStatus.CLAIMED, holder
    async with sessions() as session:
        queue = await home_store.queue(session, NOW, "<@U1>", limit=10)
        short = await home_store.queue(session, NOW, "<@U1>", limit=2)
    assert [c.reference for c in queue.unclaimed] == [
        "HL-AAAAA4",
        "HL-AAAAA2",
        "HL-AAAAA7",
        "HL-AAAAA3",
        "HL-AAAAA1",
    ]
    assert [c.reference for c in queue.mine] == ["HL-AAAAA5"]
    assert [c.reference for c in queue.overdue] == ["HL-AAAAA7", "HL-AAAAA5"]
    assert queue.unclaimed_total == 5
    assert [c.reference for c in short.unclaimed] == ["HL-AAAAA4", "HL-AAAAA2"]
    assert short.unclaimed_total == 5


async def test_home_refresh_for_everyone_coalesces_while_one_waits_unsent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await home_store.remember_viewer(session, "U1", NOW)
        await home_store.remember_viewer(session, "U2", NOW + timedelta(minutes=1))
        await home_store.remember_viewer(session, "U1", NOW + timedelta(minutes=2))
        for _ in range(3):
            await home_store.refresh(session, NOW)
            await session.flush()
        await home_store.refresh(session, NOW, user="U3")
    async with sessions() as session:
        rows = (
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id)))
            .scalars()
            .all()
        )
        assert await home_store.viewers(session) == ["U1", "U2"]
    assert [(r.kind, r.payload) for r in rows] == [
        (outbox.SLACK_HOME, {}),
        (outbox.SLACK_HOME, {"user": "U3"}),
    ]
    assert {r.stream for r in rows} == {"slack.home"}
