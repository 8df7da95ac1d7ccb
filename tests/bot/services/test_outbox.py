"""The outbox worker against the fake Slack Web API (real slack_sdk over loopback), on
SQLite and PostgreSQL: rate-limit storms and outages never give a card up, a stuck row is
loud, and a row whose first attempt may have arrived is never posted twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build
from bot.clock import utcnow
from bot.core import outbox_kinds
from bot.services.leases import Leases
from bot.services.outbox import OutboxWorker, Sent
from bot.settings import Settings
from bot.slack.senders import SlackCards
from flows.conversation import CaseDraft, CaseStatus
from flows.copy import default_copy
from flows.hours import WorkingCalendar
from storage import cases as case_store
from storage import outbox, outbox_status
from storage.models import Case, OutboxMessage
from tests.fakes.slack_api import FakeSlack

DESK = "C0DESK"


async def new_case(sessions: async_sessionmaker[AsyncSession], reference: str) -> int:
    """A case and its card row, as the intake service writes them."""
    now = utcnow()
    async with sessions() as session, session.begin():
        case = case_store.create_case(
            session, CaseDraft(reference, CaseStatus.NEW, now, subject="Fake account"), channel="t"
        )
        await session.flush()
        outbox.enqueue(session, outbox.SLACK_CARD, now=now, case_id=case.id)
        return case.id


async def row_of(sessions: async_sessionmaker[AsyncSession], kind: str) -> OutboxMessage:
    async with sessions() as session:
        return (
            await session.execute(select(OutboxMessage).where(OutboxMessage.kind == kind))
        ).scalar_one()


@dataclass
class Desk:
    slack: FakeSlack
    sessions: async_sessionmaker[AsyncSession]

    def cards(self) -> list[dict[str, Any]]:
        return self.slack.messages(DESK)

    def worker(self, *, lease: float = 5.0, timeout: float = 10, **options: Any) -> OutboxWorker:
        """A worker as one process would run it: its own leases and Slack client."""
        client = AsyncWebClient(
            token=self.slack.token,
            base_url=self.slack.base_url,
            timeout=timeout,  # type: ignore[arg-type]  # aiohttp takes fractions of a second
        )
        cards = SlackCards(
            client=client,
            channel_id=DESK,
            sessions=self.sessions,
            copy=default_copy(),
            calendar=WorkingCalendar.default(),
            clock=utcnow,
        )
        leases = Leases(sessions=self.sessions, clock=utcnow, seconds=lease)
        senders = {
            outbox.SLACK_CARD: cards.send_card,
            outbox.SLACK_THREAD: cards.send_thread,
            outbox.SLACK_POST: cards.send_post,
        }
        options = {"poll_interval": 0.02, "backoff_base": 0.01, "backoff_cap": 0.02, **options}
        return OutboxWorker(
            sessions=self.sessions, senders=senders, clock=utcnow, leases=leases, **options
        )

    async def until_done(self, worker: OutboxWorker, kind: str, timeout: float = 20) -> None:
        """Run passes until the row of ``kind`` is sent (or the time is up)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (await row_of(self.sessions, kind)).sent_at is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the {kind} row was not sent in {timeout} s")
            await worker.drain_once()
            await asyncio.sleep(0.02)


@asynccontextmanager
async def desk(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Desk]:
    async with FakeSlack() as slack:
        yield Desk(slack, sessions)


@asynccontextmanager
async def running(worker: OutboxWorker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_outbox_429_storm_never_gives_a_card_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """60 rate limits in a row (more than the old 50-attempt limit): waited out, not counted."""
    async with desk(sessions) as d:
        await new_case(sessions, "HL-STORM1")
        d.slack.fail_next("chat.postMessage", status=429, retry_after=0.01, times=60)
        worker = d.worker()
        async with running(worker):
            await d.slack.wait_for(lambda s: s.messages(DESK), timeout=30, description="a card")
        row = await row_of(sessions, outbox.SLACK_CARD)
    assert len(d.cards()) == 1
    assert row.sent_at is not None and row.failed_at is None
    assert row.attempts == 61 and row.failures == 0  # a rate limit is not a failure


async def test_outbox_long_outage_never_gives_a_card_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """More failed attempts than the old limit allowed (Slack answering 503 throughout):
    the row waits, with a capped backoff, until Slack is back."""
    async with desk(sessions) as d:
        await new_case(sessions, "HL-OUTAGE")
        d.slack.go_down()
        worker = d.worker(backoff_base=0.001, backoff_cap=0.002)
        async with running(worker):
            await d.slack.wait_for(lambda s: len(s.refused) >= 60, timeout=30)
            assert (await row_of(sessions, outbox.SLACK_CARD)).failed_at is None
            d.slack.come_back()
            await d.slack.wait_for(lambda s: s.messages(DESK), timeout=10, description="a card")
        row = await row_of(sessions, outbox.SLACK_CARD)
    assert len(d.cards()) == 1 and row.failures >= 60 and row.failed_at is None


async def test_outbox_stuck_row_is_reported_at_error_then_cleared(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.services.outbox")
    async with desk(sessions) as d:
        await new_case(sessions, "HL-STUCK1")
        d.slack.go_down()
        worker = d.worker(stuck_after=0.2)
        async with running(worker):
            await d.slack.wait_for(
                lambda s: any(
                    r.levelno == logging.ERROR and "waiting for more than" in r.getMessage()
                    for r in caplog.records
                ),
                timeout=10,
                description="an ERROR about the stuck row",
            )
            d.slack.come_back()
            await d.slack.wait_for(
                lambda s: any("nothing is stuck" in r.getMessage() for r in caplog.records),
                timeout=10,
                description="the all-clear",
            )
    error = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "1 row(s)" in error.getMessage() and "slack 503" in error.getMessage()
    assert len(d.cards()) == 1


async def test_outbox_card_posted_by_a_holder_that_died_is_not_posted_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The first process posts, then dies before it hears back; the next one, once the
    lease runs out, finds the card by its marker instead of posting a second."""
    async with desk(sessions) as d:
        case_id = await new_case(sessions, "HL-CRASH1")
        d.slack.hold("chat.postMessage")  # posted at once, answered never
        first = asyncio.create_task(d.worker(lease=0.3).drain_once())
        await d.slack.wait_for(lambda s: s.messages(DESK), description="the first post")
        first.cancel()  # the process dies with the call in flight
        with contextlib.suppress(asyncio.CancelledError):
            await first
        d.slack.release("chat.postMessage")
        await d.until_done(d.worker(lease=0.3), outbox.SLACK_CARD)
        async with sessions() as session:
            case = await session.get(Case, case_id)
    assert len(d.cards()) == 1
    assert len(d.slack.calls_of("chat.postMessage")) == 1
    assert d.slack.calls_of("conversations.history"), "it looked before posting again"
    assert case is not None and case.slack_ts == d.cards()[0]["ts"]


async def test_outbox_thread_note_that_timed_out_is_not_posted_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A timed-out post may have arrived: the retry looks in the thread first."""
    async with desk(sessions) as d:
        case_id = await new_case(sessions, "HL-TIMEO1")
        worker = d.worker(timeout=0.3)
        await d.until_done(worker, outbox.SLACK_CARD)
        async with sessions() as session, session.begin():
            outbox.enqueue(
                session, outbox.SLACK_THREAD, now=utcnow(), case_id=case_id, payload={"text": "n"}
            )
        d.slack.hold("chat.postMessage")
        await worker.drain_once()  # times out, with the note posted
        assert (await row_of(sessions, outbox.SLACK_THREAD)).maybe_sent
        d.slack.release("chat.postMessage")
        await d.until_done(worker, outbox.SLACK_THREAD)
        card = d.cards()[0]
    assert [m["text"] for m in d.slack.thread(DESK, card["ts"])] == ["n"]
    assert d.slack.calls_of("conversations.replies")


async def test_outbox_rows_a_crashed_process_held_go_out_within_a_lease(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A row left leased by a process that is gone (and every row behind it) is sent as
    soon as that lease runs out, not minutes later."""
    async with desk(sessions) as d:
        await new_case(sessions, "HL-LEASE1")
        async with sessions() as session, session.begin():
            row = (await session.execute(select(OutboxMessage))).scalar_one()
            await outbox.lease(session, [row.id], "gone:1:w", utcnow())  # its lease just ended
        await new_case(sessions, "HL-LEASE2")  # submitted after the restart
        worker = d.worker()
        async with running(worker):
            await d.slack.wait_for(lambda s: len(s.messages(DESK)) == 2, timeout=10)
    order = [("HL-LEASE1" in str(c["blocks"]), "HL-LEASE2" in str(c["blocks"])) for c in d.cards()]
    assert order == [(True, False), (False, True)]


async def test_outbox_summary_counts_stuck_and_given_up_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await new_case(sessions, "HL-SUMMA1")
    later = datetime(2100, 1, 1, tzinfo=UTC)
    async with sessions() as session, session.begin():
        row = (await session.execute(select(OutboxMessage))).scalar_one()
        outbox.mark_retry(row, utcnow(), later - utcnow(), "slack 503")
        outbox.enqueue(session, outbox.SLACK_POST, now=utcnow(), payload={"text": "x"})
    async with sessions() as session, session.begin():
        post = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "slack.post"))
        ).scalar_one()
        outbox.mark_failed(post, utcnow(), "slack invalid_blocks")
    async with sessions() as session:
        found = await outbox_status.summary(session, later, timedelta(days=1))
        listed = await outbox_status.rows(session, failed=True)
    assert (found.pending, found.stuck, found.failed) == (1, 1, 1)
    assert found.stuck_error == "slack 503"
    assert [r.kind for r in listed] == ["slack.post"]


async def test_outbox_summary_keeps_the_desks_rows_apart_when_slack_is_not_configured(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """With no Slack, cards wait for it (and go once it is set): not stuck, not an alarm."""
    await new_case(sessions, "HL-PARKD1")
    later = datetime(2100, 1, 1, tzinfo=UTC)
    sent = outbox_kinds(Settings(_env_file=None))
    assert outbox.SLACK_CARD not in sent and outbox.ENQUIRER_REPLY in sent
    async with sessions() as session:
        found = await outbox_status.summary(session, later, timedelta(days=1), sent=sent)
        everything = await outbox_status.summary(session, later, timedelta(days=1))
    assert (found.pending, found.stuck, found.parked) == (0, 0, 1)
    assert (everything.pending, everything.stuck, everything.parked) == (1, 1, 0)
    with_slack = Settings(
        _env_file=None, slack_bot_token="xoxb-1", slack_channel_id="C1", slack_signing_secret="s"
    )
    assert outbox.SLACK_CARD in outbox_kinds(with_slack)


@pytest.mark.parametrize("even_if_gone", [True, False])
async def test_outbox_a_row_erased_while_it_was_sent_runs_only_what_must_be_recorded(
    sessions: async_sessionmaker[AsyncSession], even_if_gone: bool
) -> None:
    """An erasure can delete a row while its email is on the wire: what was sent is still
    recorded when the sender asks for it (the audit of a disclosure), nothing else is."""
    await new_case(sessions, "HL-GONE01")
    recorded: list[str] = []

    async def record(session: AsyncSession) -> None:
        recorded.append("recorded")

    async def send_then_erased(row: OutboxMessage) -> Sent:
        async with sessions() as session, session.begin():
            await session.execute(delete(OutboxMessage).where(OutboxMessage.id == row.id))
        return Sent(then=record, even_if_gone=even_if_gone)

    worker = OutboxWorker(
        sessions=sessions,
        senders={outbox.SLACK_CARD: send_then_erased},
        clock=utcnow,
        leases=Leases(sessions=sessions, clock=utcnow, seconds=5),
    )
    assert await worker.drain_once() == 1
    assert recorded == (["recorded"] if even_if_gone else [])


@pytest.mark.parametrize("slack", [False, True])
async def test_outbox_commands_count_as_parked_exactly_what_the_service_does_not_send(
    tmp_path: Path, slack: bool
) -> None:
    desk = {"slack_bot_token": "xoxb-1", "slack_channel_id": "C1", "slack_signing_secret": "s"}
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}",
        **(desk if slack else {}),  # type: ignore[arg-type]
    )
    helpline = build(settings)
    try:
        assert helpline.worker.kinds == outbox_kinds(settings)
        assert (outbox.SLACK_CARD in helpline.worker.kinds) is slack
    finally:
        await helpline.core.close()
