"""An enquirer's erasure of their chat (/delete) and a turn of that chat never interleave.

The turn that matters is the one that sends an enquiry: run half before and half after the
erasure, its case would survive an erasure the enquirer was told was complete. Whichever
comes second must see all of the first, in one process (the chat's lock, shared with the
intake) and across replicas (the chat's row, locked first as a turn locks it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, text

from bot.core import Core, open_core
from bot.services.intake import Handled
from bot.settings import Settings
from flows.messages import Command, Inbound
from storage.models import Case
from tests.support.conversations import PROFESSIONAL_TO_REVIEW
from tests.support.keys import DATA_KEY

CHAT = "5150"
PAUSE = 0x48_4C_45_52  # "HLER": the advisory lock the erasing replica is paused on


@asynccontextmanager
async def replicas(url: str, count: int) -> AsyncIterator[list[Core]]:
    """``count`` cores on one database, as that many processes would have."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                open_core(Settings(database_url=url, data_key=DATA_KEY))
            )
            for _ in range(count)
        ]


async def _say(core: Core, *said: str) -> Handled:
    handled = None
    for text_ in said:
        handled = await core.intake.handle("telegram", CHAT, Inbound.typed(text_))
    assert handled is not None
    return handled


async def _one_sent_and_another_at_review(core: Core) -> str:
    first = await _say(core, *PROFESSIONAL_TO_REVIEW, "send")
    assert first.case is not None
    await core.intake.handle("telegram", CHAT, Inbound.commanded(Command.START))
    assert (await _say(core, *PROFESSIONAL_TO_REVIEW[1:])).step == "review"
    return first.case.reference


async def _cases(core: Core) -> dict[str, bool]:
    """Every case's reference, and whether it is erased."""
    async with core.sessions() as session:
        rows = await session.execute(select(Case.reference, Case.erased_at))
        return {reference: erased is not None for reference, erased in rows.all()}


async def _until(done: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(1_000):
        if await done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_an_erasure_waits_for_a_turn_of_the_chat_in_this_process(database_url: str) -> None:
    async with replicas(database_url, 2) as (core, elsewhere):
        first = await _one_sent_and_another_at_review(core)
        async with core.chats.hold(("telegram", CHAT)):  # a turn of the chat is in progress
            erasing = asyncio.create_task(core.privacy.erase_chat("telegram", CHAT))

            async def queued() -> bool:  # behind the turn, or (wrongly) done without it
                return erasing.done() or core.chats.waiting(("telegram", CHAT)) == 1

            await _until(queued, "the erasure waiting for the turn")
            # ... and the turn sends the enquiry (its statements, run beside the lock held).
            sent = await _say(elsewhere, "send")
        erased = await erasing
        assert sent.case is not None, "the erasure ran in the middle of the turn"
        assert sorted(erased) == sorted([first, sent.case.reference])
        assert await _cases(core) == {first: True, sent.case.reference: True}


def _pause_before_the_first_change(core: Core) -> None:
    """The erasing replica stops, once, just before it changes anything (after reading what
    to erase), until the test lets go of the advisory lock it then waits for."""
    armed = [True]

    @event.listens_for(core.engine.sync_engine, "before_cursor_execute")
    def pause(connection: Connection, _c: Any, statement: str, *_: Any) -> None:
        if armed and statement.lstrip().upper().startswith(("DELETE", "UPDATE")):
            armed.clear()
            cursor = connection.connection.cursor()
            cursor.execute(f"SELECT pg_advisory_xact_lock({PAUSE})")
            cursor.close()


async def _waiting_on_locks(connection: Any) -> int:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return int((await connection.execute(query)).scalar_one())


async def test_an_erasure_and_a_turn_of_the_chat_on_two_replicas_never_interleave(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas need PostgreSQL (SQLite's transactions never overlap)")
    async with replicas(database_url, 3) as (erasing_replica, turning_replica, watcher):
        first = await _one_sent_and_another_at_review(turning_replica)
        async with watcher.engine.connect() as held:
            await held.execute(text(f"SELECT pg_advisory_lock({PAUSE})"))
            await held.commit()
            _pause_before_the_first_change(erasing_replica)
            erasing = asyncio.create_task(erasing_replica.privacy.erase_chat("telegram", CHAT))

            async def paused() -> bool:
                return erasing.done() or await _waiting_on_locks(held) == 1

            await _until(paused, "the erasure paused after reading what to erase")
            assert not erasing.done(), "the erasure never reached its first change"
            turn = asyncio.create_task(_say(turning_replica, "send"))

            async def turned() -> bool:  # done, or waiting for the erasure
                return turn.done() or await _waiting_on_locks(held) == 2

            await _until(turned, "the turn done or waiting")
            await held.execute(text(f"SELECT pg_advisory_unlock({PAUSE})"))
            await held.commit()
            erased = await erasing
            await turn
        cases = await _cases(watcher)
        # Either order is right; half of each is not: the erasure names every case it leaves
        # erased, and no case of the chat is left whole.
        assert all(cases.values()), cases
        assert sorted(erased) == sorted(cases) and first in erased
