"""Working hours as the enquirer and the practitioners meet them, with a controllable clock."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.intake import IntakeService
from bot.services.timers import Timers
from bot.slack.blocks import digest, note_text
from flows.copy import default_copy
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
from flows.messages import Inbound
from storage import cases as case_store
from storage import outbox
from storage.models import Case, OutboxMessage
from storage.privacy import erase_cases
from tests.support.clock import Clock
from tests.support.conversations import PROFESSIONAL_TO_REVIEW

LONDON = ZoneInfo("Europe/London")


def london(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON)


async def submit(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, chat: str, *, urgent: bool = False
) -> list[str]:
    intake = IntakeService(
        engine=sessions.kw["bind"], sessions=sessions, flow=IntakeFlow(), clock=clock
    )
    texts: list[str] = []
    answers = list(PROFESSIONAL_TO_REVIEW)
    if urgent:
        answers[12] = "yes"  # "Is anyone in immediate danger?"
    for text in [*answers, "send"]:
        handled = await intake.handle("test", chat, Inbound.typed(text))
        texts = [r.text for r in handled.replies]
    return texts


async def outbox_rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )


async def desk_text(sessions: async_sessionmaker[AsyncSession], row: OutboxMessage) -> str:
    """What the desk will read for an outbox row, worded as Slack's sender words it."""
    copy = default_copy()
    if row.kind == outbox.SLACK_DIGEST:
        async with sessions() as session:
            cases = await case_store.cases_by_ids(session, row.payload["cases"])
        return digest(cases, copy, WorkingCalendar.default())
    return note_text(row.payload or {}, copy)


async def test_in_hours_enquirer_is_told_when_a_practitioner_will_reply(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    texts = await submit(sessions, Clock(london(2026, 11, 27, 15, 0)), "friday")
    assert "open now: a practitioner will reply by 12:00 on Monday 30 November" in texts[0]


async def test_out_of_hours_enquirer_hears_when_it_opens_and_about_999(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    texts = await submit(sessions, Clock(london(2026, 11, 28, 9, 0)), "saturday")
    assert "closed just now. It opens again at 10:00 on Monday 30 November" in texts[0]
    assert "reply by 13:00 on Monday 30 November" in texts[0]
    assert "call 999" in texts[0]


async def test_submission_shows_the_platforms_own_reporting_route(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    texts = await submit(sessions, Clock(london(2026, 11, 28, 9, 0)), "wait")
    assert texts[1].startswith("While you wait")
    assert "TikTok" in texts[1] and "https://" in texts[1]


async def test_case_stores_due_time_and_whether_it_arrived_in_hours(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await submit(sessions, Clock(london(2026, 8, 28, 15, 0)), "bank-holiday")
    async with sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert case.in_hours is True
    assert case.due_at == london(2026, 9, 1, 12, 0)


async def test_urgent_out_of_hours_case_alerts_on_call_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await submit(sessions, Clock(london(2026, 11, 28, 22, 0)), "night", urgent=True)
    rows = await outbox_rows(sessions)
    alerts = [
        r for r in rows if r.kind == outbox.SLACK_POST and r.payload.get("target") == "oncall"
    ]
    assert len(alerts) == 1 and "Urgent case" in await desk_text(sessions, alerts[0])


@pytest.mark.parametrize(
    ("at", "target"), [(london(2026, 11, 28, 22, 0), "oncall"), (london(2026, 11, 27, 11, 0), None)]
)
async def test_risk_in_a_later_message_makes_the_case_urgent_and_alerts_the_desk(
    sessions: async_sessionmaker[AsyncSession], at: datetime, target: str | None
) -> None:
    """Out of hours the on-call is paged, since nobody watches the channel; in hours the
    channel is told. Once urgent, in hours the case is watched: later messages go to its
    thread."""
    clock = Clock(at)
    await submit(sessions, clock, "later")
    intake = IntakeService(
        engine=sessions.kw["bind"], sessions=sessions, flow=IntakeFlow(), clock=clock
    )
    said = await intake.handle("test", "later", Inbound.typed("She now says she will hurt herself"))
    assert "Samaritans" in " ".join(r.text for r in said.replies)
    assert said.replies[-1].text == "Because of what you said, I've marked it urgent for the team."
    async with sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert case.urgent
    rows = await outbox_rows(sessions)
    (alert,) = [r for r in rows if r.kind == outbox.SLACK_POST]
    assert alert.payload.get("target") == target
    assert await desk_text(sessions, alert) == (
        f"🚨 {case.reference}: the enquirer's latest message mentions self-harm or suicide."
        " The case is now urgent."
    )
    assert [r.kind for r in rows].count(outbox.SLACK_CARD) == 2, "the card redrawn, urgent"

    await intake.handle("test", "later", Inbound.typed("She is still talking about self-harm"))
    rows = await outbox_rows(sessions)
    # In hours the urgent case is watched; at night nobody watches threads: paged again.
    assert [r.kind for r in rows].count(outbox.SLACK_POST) == (1 if target is None else 2)
    assert [r.kind for r in rows].count(outbox.SLACK_THREAD) == 2


async def test_out_of_hours_risk_on_a_case_urgent_already_still_pages_the_on_call(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Nobody watches a thread at night: the urgent card is not enough."""
    clock = Clock(london(2026, 11, 28, 22, 0))
    await submit(sessions, clock, "night-again", urgent=True)
    intake = IntakeService(
        engine=sessions.kw["bind"], sessions=sessions, flow=IntakeFlow(), clock=clock
    )
    await intake.handle("test", "night-again", Inbound.typed("He says he will hurt himself"))
    pages = [
        r
        for r in await outbox_rows(sessions)
        if r.kind == outbox.SLACK_POST and r.payload.get("target") == "oncall"
    ]
    assert [r.payload["say"] for r in pages] == ["timers.oncall_alert", "desk.risk_raised"]


async def test_risk_after_the_case_was_erased_still_reaches_the_desk(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(london(2026, 11, 27, 11, 0))
    await submit(sessions, clock, "erased")
    async with sessions() as session, session.begin():
        case = (await session.execute(select(Case))).scalar_one()
        await erase_cases(session, [case.id], clock())
    intake = IntakeService(
        engine=sessions.kw["bind"], sessions=sessions, flow=IntakeFlow(), clock=clock
    )
    said = await intake.handle("test", "erased", Inbound.typed("She is self harming again"))
    assert "Samaritans" in " ".join(r.text for r in said.replies)
    (alert,) = [r for r in await outbox_rows(sessions) if r.kind == outbox.SLACK_POST]
    assert alert.case_id is None and "target" not in alert.payload
    assert "whose case has been erased" in await desk_text(sessions, alert)
    assert "self-harm or suicide" in await desk_text(sessions, alert)


async def test_digest_at_opening_lists_overnight_cases_once_even_with_two_replicas(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await submit(sessions, Clock(london(2026, 11, 28, 9, 0)), "sat")
    await submit(sessions, Clock(london(2026, 11, 29, 20, 0)), "sun", urgent=True)
    await submit(sessions, Clock(london(2026, 11, 27, 11, 0)), "fri-in-hours")
    clock = Clock(london(2026, 11, 30, 9, 59))
    flow = IntakeFlow()

    def replica() -> Timers:
        return Timers(
            sessions=sessions, calendar=WorkingCalendar.default(), copy=flow.copy, clock=clock
        )

    assert (await replica().tick())["digest"] == 0  # still closed
    clock.at = london(2026, 11, 30, 10, 0)
    fired = await asyncio.gather(replica().tick(), replica().tick())
    assert sorted(f["digest"] for f in fired) == [0, 2]
    digests = [r for r in await outbox_rows(sessions) if r.kind == outbox.SLACK_DIGEST]
    assert len(digests) == 1
    text = await desk_text(sessions, digests[0])
    assert "Since the helpline closed" in text
    assert "2 enquiries" in text and "1 urgent" in text and "Online Reputation 2" in text
    assert text.index("Sat") < text.index("Sun"), "oldest first"


async def test_reminder_at_half_target_then_overdue_flag_fire_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await submit(sessions, Clock(london(2026, 11, 30, 10, 0)), "monday")
    clock = Clock(london(2026, 11, 30, 11, 29))
    timers = Timers(
        sessions=sessions, calendar=WorkingCalendar.default(), copy=IntakeFlow().copy, clock=clock
    )
    assert await timers.tick() == {"reminders": 0, "overdue": 0, "digest": 0}
    clock.at = london(2026, 11, 30, 11, 30)
    assert (await timers.tick())["reminders"] == 1
    assert (await timers.tick())["reminders"] == 0
    clock.at = london(2026, 11, 30, 13, 0)  # due at 13:00: on time at 13:00 exactly
    assert (await timers.tick())["overdue"] == 0
    clock.at = london(2026, 11, 30, 13, 0, 1)
    assert (await timers.tick())["overdue"] == 1
    assert (await timers.tick())["overdue"] == 0
    rows = await outbox_rows(sessions)
    threads = [await desk_text(sessions, r) for r in rows if r.kind == outbox.SLACK_THREAD]
    posts = [await desk_text(sessions, r) for r in rows if r.kind == outbox.SLACK_POST]
    assert any("still unclaimed" in text for text in threads)
    assert any("is overdue" in text and "waiting to be claimed" in text for text in posts)


async def test_claimed_case_gets_no_reminder(sessions: async_sessionmaker[AsyncSession]) -> None:
    from bot.services.desk import DeskService

    await submit(sessions, Clock(london(2026, 11, 30, 10, 0)), "claimed")
    async with sessions() as session:
        reference = (await session.execute(select(Case.reference))).scalar_one()
    flow = IntakeFlow()
    clock = Clock(london(2026, 11, 30, 10, 5))
    await DeskService(sessions=sessions, copy=flow.copy, taxonomy=flow.taxonomy, clock=clock).claim(
        reference, "sam"
    )
    clock.at = london(2026, 11, 30, 12, 0)
    timers = Timers(
        sessions=sessions, calendar=WorkingCalendar.default(), copy=flow.copy, clock=clock
    )
    assert (await timers.tick())["reminders"] == 0
