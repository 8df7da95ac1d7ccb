"""Several replicas on one PostgreSQL database: outbox rows claimed with SKIP LOCKED go out
once and in order, and the timers run in one replica at a time, moving to another when it
dies. PostgreSQL only (SQLite is one process by design)."""

from __future__ import annotations

import asyncio
import json
import random
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build, running
from bot.clock import utcnow
from bot.services.leader import Leadership
from bot.services.leases import Leases
from bot.services.outbox import OutboxWorker, Result, Sender, Sent
from storage import db, outbox
from storage.models import OutboxMessage
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.clock import Clock
from tests.support.slack_desk import DESK, SECRET
from tests.support.telegram import complete_enquiry, local, webhook_settings

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


@pytest.fixture
async def pg(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas need PostgreSQL")
    return database_url


async def test_replicas_two_workers_send_every_row_once_and_each_stream_in_order(pg: str) -> None:
    engines = [db.create_engine(pg) for _ in range(2)]
    await db.upgrade(engines[0])
    sessions = [db.session_factory(e) for e in engines]
    sent: list[tuple[str, int, int]] = []  # (chat, seq, worker)

    def sender(worker: int) -> Sender:
        async def send(row: OutboxMessage) -> Result:
            await asyncio.sleep(random.uniform(0, 0.003))
            sent.append((row.payload["chat_id"], int(row.payload["text"]), worker))
            return Sent()

        return send

    workers = [
        OutboxWorker(
            sessions=s,
            senders={outbox.ENQUIRER_MESSAGE: sender(n)},
            clock=utcnow,
            leases=Leases(sessions=s, clock=utcnow, seconds=15),
        )
        for n, s in enumerate(sessions)
    ]
    chats, per_chat = ["a", "b", "c", "d"], 40

    async def write() -> None:
        for seq in range(per_chat):
            async with sessions[0]() as session, session.begin():
                for chat in chats:
                    payload = {"channel": "telegram", "chat_id": chat, "text": str(seq)}
                    outbox.enqueue(session, outbox.ENQUIRER_MESSAGE, now=utcnow(), payload=payload)
            await asyncio.sleep(0)

    async def drain(worker: OutboxWorker) -> None:
        while len(sent) < len(chats) * per_chat:
            await worker.drain_once()
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(write(), drain(workers[0]), drain(workers[1])), 60)
    for engine in engines:
        await engine.dispose()
    assert len(sent) == len(chats) * per_chat  # none twice (and none lost)
    for chat in chats:
        assert [seq for c, seq, _ in sent if c == chat] == list(range(per_chat)), chat


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_replicas_chores_lock_is_held_by_one_and_taken_over_when_its_holder_dies(
    pg: str,
) -> None:
    a_engine, b_engine = db.create_engine(pg), db.create_engine(pg)
    a, b = Leadership(engine=a_engine), Leadership(engine=b_engine)
    try:
        assert await a.leads() and not await b.leads()
        assert await a.leads()  # still held, asked again
        pid = await a.backend_pid()
        assert pid is not None
        await _terminate(b_engine, pid)  # as if replica a's process had died
        for _ in range(100):
            if await b.leads():
                break
            await asyncio.sleep(0.05)
        assert b.leading
        assert not await a.leads()  # a notices its lock is gone and does not take it back
        await b.close()
        assert await a.leads()
    finally:
        await a.close()
        await b.close()
        await a_engine.dispose()
        await b_engine.dispose()


async def test_replicas_two_services_one_database_timers_fire_once_and_move_when_one_stops(
    pg: str,
) -> None:
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 11, 30, 11, 0, tzinfo=london)  # Monday, open; due 14:00
    clock = Clock(start)
    async with FakeTelegram() as tg, FakeSlack() as slack:
        common: dict[str, Any] = {
            "slack_bot_token": slack.token,
            "slack_signing_secret": SECRET,
            "slack_channel_id": DESK,
            "slack_api_url": slack.base_url,
            "outbox_poll_seconds": 0.05,
            "outbox_backoff_seconds": 0.05,
            "timer_seconds": 0.05,
        }
        replicas = [build(webhook_settings(tg, pg, **common), clock=clock) for _ in range(2)]
        stacks = [AsyncExitStack() for _ in replicas]
        try:
            for stack, replica in zip(stacks, replicas, strict=True):
                await stack.enter_async_context(running(replica))
            await tg.wait_for(lambda t: any(r.leadership.leading for r in replicas), timeout=10)
            await asyncio.sleep(0.3)  # a few ticks each: still exactly one leads
            assert [r.leadership.leading for r in replicas].count(True) == 1
            leader = next(i for i, r in enumerate(replicas) if r.leadership.leading)

            tg.push_to_webhook(local(replicas[1 - leader].settings))  # updates reach either
            texts = await complete_enquiry(tg, 777)
            reference = next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
            await slack.wait_for(
                lambda s: any(reference in json.dumps(m) for m in s.messages(DESK))
            )
            card = slack.messages(DESK)[0]

            clock.at = start + timedelta(hours=1, minutes=35)  # past half the target
            await slack.wait_for(
                lambda s: any(
                    "Half of the response time" in m.get("text", "")
                    for m in s.thread(DESK, card["ts"])
                )
            )
            await stacks[leader].aclose()  # the replica running the timers goes
            survivor = replicas[1 - leader]
            await tg.wait_for(lambda t: survivor.leadership.leading, timeout=10)

            clock.at = start + timedelta(hours=3, minutes=5)  # overdue: flagged by the survivor
            await slack.wait_for(
                lambda s: any("is overdue" in m.get("text", "") for m in s.messages(DESK))
            )
            await asyncio.sleep(0.3)
            reminders = [
                m
                for m in slack.thread(DESK, card["ts"])
                if "Half of the response" in m.get("text", "")
            ]
            overdue = [m for m in slack.messages(DESK) if "is overdue" in m.get("text", "")]
            assert len(reminders) == 1 and len(overdue) == 1
        finally:
            for stack in stacks:
                await stack.aclose()


async def test_replicas_sqlite_always_leads(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        assert await Leadership(engine=engine).leads()
    finally:
        await engine.dispose()
