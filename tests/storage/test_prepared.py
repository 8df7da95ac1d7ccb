"""Prepared statements: what they write reads back through the ORM exactly as Core's would."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from flows.conversation import Conversation, Step
from storage import conversations as convo_store
from storage import db, encryption, outbox, prepared
from storage.models import ConversationRecord, OutboxMessage, TranscriptEntry
from storage.prepared import Prepared

AT = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def insert_turn(*columns: str) -> Prepared:
    """A transcript insert giving a value to ``columns`` only, each bound by its name."""
    return Prepared(insert(TranscriptEntry).values({c: bindparam(c) for c in columns}))


async def test_prepared_rows_read_back_sealed_and_in_utc_through_the_orm(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with engine.begin() as connection:
        saved = await convo_store.load_for_update(connection, "test", "p1", AT)
        turn = {"conversation_id": saved.id, "case_id": None, "at": AT, "kind": "text"}
        await convo_store.add_turns(
            connection, [{**turn, "sender": "enquirer", "text": "Mrs Jones, Year 9"}]
        )
    async with sessions() as session:
        entry = (await session.execute(select(TranscriptEntry))).scalar_one()
        record = await session.get(ConversationRecord, saved.id)
    assert entry.text == "Mrs Jones, Year 9" and entry.at == AT
    assert record is not None and record.updated_at == AT and record.state == {}
    async with engine.connect() as connection:  # as stored: sealed, never the text itself
        stored = (await connection.exec_driver_sql("SELECT text FROM transcript")).scalar_one()
    assert stored.startswith(encryption.PREFIX) and "Jones" not in stored


async def test_prepared_statements_seal_with_each_engines_own_key(database_url: str) -> None:
    for key in (encryption.new_key(), encryption.new_key()):
        engine = db.create_engine(database_url, data_key=key)
        await db.upgrade(engine)
        async with engine.begin() as connection:
            saved = await convo_store.load_for_update(connection, "test", key, AT)
            await convo_store.store(connection, saved, convo_store.restore(saved), AT)
        async with engine.begin() as connection:  # opens only with the key it was sealed with
            assert (await convo_store.load_for_update(connection, "test", key, AT)).id == saved.id
        await engine.dispose()


async def test_prepared_statement_errors_are_sqlalchemys(engine: AsyncEngine) -> None:
    add = insert_turn("conversation_id", "at", "sender", "kind", "text")
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            # No such conversation: the foreign key (on SQLite too: foreign_keys=ON).
            await add.many(
                connection,
                [{"conversation_id": 999, "at": AT, "sender": "bot", "kind": "text", "text": ""}],
            )


async def test_prepared_statement_refuses_a_column_left_to_its_default(
    engine: AsyncEngine,
) -> None:
    # ``kind`` has a Python-side default, which only Core's execution would fill in.
    add = insert_turn("conversation_id", "at", "sender", "text")
    async with engine.begin() as connection:
        with pytest.raises(TypeError, match="default"):
            await add.rows(
                connection, {"conversation_id": 1, "at": AT, "sender": "bot", "text": ""}
            )


async def test_saving_a_turn_writes_every_turn_sealed_the_conversation_and_its_reply_row(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    texts = ["Mrs Jones, Year 9", "Which setting?", "Thank you, Mrs Jones"]
    async with engine.begin() as connection:
        saved = await convo_store.load_for_update(connection, "test", "p2", AT)
        turns = [
            {"conversation_id": saved.id, "case_id": None, "at": AT, "kind": "text"}
            | {"sender": "bot" if n else "enquirer", "text": text}
            for n, text in enumerate(texts)
        ]
        reply = outbox.reply_row(
            channel="test",
            chat_id="p2",
            replies=[{"text": texts[1]}],
            now=AT,
            holder=None,
            until=None,
        )
        conversation = Conversation(step=Step.SETTING)
        row = await convo_store.save_turn(
            connection, saved, conversation, AT, turns=turns, reply=reply
        )
    async with sessions() as session:
        written = (
            await session.execute(select(TranscriptEntry).order_by(TranscriptEntry.id))
        ).scalars()
        message = await session.get(OutboxMessage, row)
        record = await session.get(ConversationRecord, saved.id)
    assert [t.text for t in written] == texts
    assert message is not None and message.payload["replies"] == [{"text": texts[1]}]
    assert (
        record is not None
        and convo_store.restore(convo_store.Saved(1, record.state)).step is Step.SETTING
    )
    async with engine.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT text FROM transcript")).scalars().all()
    assert all(s.startswith(encryption.PREFIX) and "Jones" not in s for s in stored)


async def test_opening_a_turn_dedupes_creates_and_waits_for_the_chats_lock(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        first = await convo_store.open_turn(connection, "test", "p3", AT, dedupe=("bot", "1"))
        assert first is not None and first.state == {}  # a new chat, created
        again = await convo_store.open_turn(connection, "test", "p3", AT, dedupe=("bot", "1"))
        assert again is None  # the same update: a duplicate
    order: list[str] = []

    async def holder() -> None:
        async with engine.begin() as connection:
            saved = await convo_store.open_turn(connection, "test", "p3", AT, dedupe=("bot", "2"))
            assert saved is not None
            order.append("held")
            await asyncio.sleep(0.3)
            await convo_store.save_turn(connection, saved, Conversation(step=Step.ROLE), AT)

    async def waiter() -> None:
        while not order:
            await asyncio.sleep(0.01)
        async with engine.begin() as connection:
            saved = await convo_store.open_turn(
                connection, "test", "p3", AT, dedupe=("bot", "3"), backlog=True
            )
            assert saved is not None
            order.append(convo_store.restore(saved).step.value)

    await asyncio.gather(holder(), waiter())
    assert order == ["held", "role"]  # it waited, then saw what the holder saved


class Abandoned(Exception):
    """Raised inside a transaction to end it early."""


async def conversations_of(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        query = select(ConversationRecord.chat_id).order_by(ConversationRecord.id)
        return list((await session.execute(query)).scalars())


async def test_a_driver_transaction_commits_its_statements_together(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with prepared.transaction(engine) as connection:
        saved = await convo_store.load_for_update(connection, "test", "t1", AT)
        await convo_store.save_turn(connection, saved, Conversation(step=Step.ROLE), AT)
    with pytest.raises(Abandoned):
        async with prepared.transaction(engine) as connection:
            await convo_store.load_for_update(connection, "test", "t2", AT)
            raise Abandoned
    assert await conversations_of(sessions) == ["t1"]  # t2 rolled back, t1 kept


async def test_a_session_and_core_inside_a_driver_transaction_join_it(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The session's end neither commits nor rolls back: the statements before it, its
    own and those after it are kept together, or not at all."""
    for chat, abandon in (("kept", False), ("dropped", True)):
        with contextlib.suppress(Abandoned):
            async with prepared.transaction(engine) as connection:
                saved = await convo_store.load_for_update(connection, "test", chat, AT)
                async with prepared.session_in(connection) as session:
                    convo_store.add_turn(
                        session, conversation_id=saved.id, sender="bot", text=chat, at=AT
                    )
                    await session.flush()
                await connection.execute(select(1))  # Core, after the session
                await convo_store.save_turn(connection, saved, Conversation(step=Step.ROLE), AT)
                if abandon:
                    raise Abandoned
    assert await conversations_of(sessions) == ["kept"]
    async with sessions() as session:
        texts = (await session.execute(select(TranscriptEntry.text))).scalars().all()
    assert texts == ["kept"]


async def test_a_driver_transactions_errors_are_sqlalchemys(engine: AsyncEngine) -> None:
    add = insert_turn("conversation_id", "at", "sender", "kind", "text")
    orphan = {"conversation_id": 999, "at": AT, "sender": "bot", "kind": "text", "text": ""}
    with pytest.raises(IntegrityError):  # the foreign key, as Core would raise it
        async with prepared.transaction(engine) as connection:
            await add.rows(connection, orphan)
    async with prepared.transaction(engine) as connection:  # the pool lends a usable one
        assert (await convo_store.load_for_update(connection, "test", "t3", AT)).id


async def test_a_driver_transaction_on_a_dead_connection_fails_as_invalidated(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("only a database server drops connections")
    async with prepared.transaction(engine) as connection:
        pid = (await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
    admin = create_async_engine(engine.url)
    async with admin.connect() as other:
        await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await admin.dispose()
    await asyncio.sleep(0.1)
    with pytest.raises(DBAPIError) as failed:
        async with prepared.transaction(engine) as connection:
            await convo_store.load_for_update(connection, "test", "t4", AT)
    assert failed.value.connection_invalidated
    async with prepared.transaction(engine) as connection:  # a fresh connection
        assert (await convo_store.load_for_update(connection, "test", "t4", AT)).id


async def test_a_transaction_cancelled_while_waiting_for_sqlites_lock_leaves_nothing_open(
    tmp_path: Path,
) -> None:
    """A turn cancelled (its socket closed, its update timed out) while aiosqlite's thread
    waits for the write lock: the ``BEGIN`` still runs there after the connection went
    back to the pool, so the pool's rollback on return must follow it, or the next user
    of the connection finds a transaction open ("cannot start a transaction within a
    transaction")."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    engine, other = db.create_engine(url), db.create_engine(url)
    try:
        await db.upgrade(engine)

        async def turn() -> None:
            async with prepared.transaction(engine):
                pass

        async with other.begin() as holder:  # another process holds the write lock
            await holder.execute(text("DELETE FROM processed_updates"))
            waiting = asyncio.create_task(turn())
            await asyncio.sleep(0.3)  # its BEGIN IMMEDIATE waits in SQLite's busy handler
            waiting.cancel()
            # The connection goes back to the pool (the rollback on return waits, queued
            # behind the BEGIN, until the lock is free).
            await asyncio.wait({waiting}, timeout=1)
        # The lock is free: the cancelled BEGIN runs now, in the connection's thread.
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        for _ in range(2):
            async with prepared.transaction(engine) as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
            async with db.session_factory(engine)() as session, session.begin():
                assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await other.dispose()
        await engine.dispose()
