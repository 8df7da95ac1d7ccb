"""Personal fields are sealed at rest: a dump without the key shows no enquirer's words."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.services.intake import IntakeService
from flows.intake import IntakeFlow
from flows.messages import Inbound
from flows.privacy import Identity
from storage import cases as case_store
from storage import db, encryption
from storage import privacy as privacy_store
from storage.encryption import DataKeyError, DataKeys
from storage.models import Base
from tests.support.conversations import PROFESSIONAL_TO_REVIEW
from tests.support.dumps import dump, sqlite_files

WORDS = (
    "insulting",
    "edited photos",
    "dsl@school",
    "Sam Jones",
    "fake_school_account",
    "Fake TikTok account",
)
"""What the enquirer wrote in PROFESSIONAL_TO_REVIEW that no dump may show."""


async def submit(sessions: async_sessionmaker[AsyncSession], chat: str = "777") -> str:
    intake = IntakeService(engine=sessions.kw["bind"], sessions=sessions, flow=IntakeFlow())
    for said in PROFESSIONAL_TO_REVIEW:
        await intake.handle("telegram", chat, Inbound.typed(said))
    handled = await intake.handle("telegram", chat, Inbound.typed("send"))
    assert handled.case is not None
    return handled.case.reference


async def test_a_dump_of_the_tables_shows_none_of_the_conversation(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    reference = await submit(sessions)
    await submit(sessions, chat="778")  # and one still in the outbox/transcript
    dumped = await dump(engine)
    assert reference in dumped  # the dump is real: references are not personal data
    for word in WORDS:
        assert word.lower() not in dumped.lower(), word
    async with sessions() as session:  # and with the key, everything reads back
        case = await case_store.get_case(session, reference)
        assert case is not None and case.contact_name == "Sam Jones, Example High"


async def test_the_sqlite_file_itself_shows_none_of_the_conversation(tmp_path: Path) -> None:
    path = tmp_path / "helpline.db"
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    await db.upgrade(engine)
    await submit(db.session_factory(engine))
    await engine.dispose()  # the last connection closing checkpoints the WAL into the file
    raw = sqlite_files(path)
    assert b"Example High" not in raw.replace(b"\x00", b"")
    for word in WORDS:
        assert word.encode() not in raw, word


async def test_without_a_key_a_key_file_is_made_beside_the_database(tmp_path: Path) -> None:
    path = tmp_path / "data" / "helpline.db"
    path.parent.mkdir()
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    key_file = path.with_name("helpline.db.key")
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    await db.upgrade(engine)
    reference = await submit(db.session_factory(engine))
    await engine.dispose()
    again = db.create_engine(f"sqlite+aiosqlite:///{path}")  # the same file: it reads
    async with db.session_factory(again)() as session:
        case = await case_store.get_case(session, reference)
        assert case is not None and case.description and "insulting" in case.description
    await again.dispose()
    stranger = db.create_engine(f"sqlite+aiosqlite:///{path}", data_key=encryption.new_key())
    async with db.session_factory(stranger)() as session:
        with pytest.raises(DataKeyError, match="not configured"):
            await case_store.get_case(session, reference)
    await stranger.dispose()


async def test_rotating_the_key_reseals_everything_and_lookups_still_work(
    database_url: str,
) -> None:
    old, new = encryption.new_key(), encryption.new_key()
    engine = db.create_engine(database_url, data_key=old)
    await db.upgrade(engine)
    reference = await submit(db.session_factory(engine))
    await engine.dispose()

    rotating = db.create_engine(database_url, data_key=f"{new},{old}")
    changed = await db.reseal_all(rotating)
    assert changed > 10
    assert await db.reseal_all(rotating) == 0  # nothing left on the old key
    await rotating.dispose()

    engine = db.create_engine(database_url, data_key=new)  # the old key is gone now
    sessions = db.session_factory(engine)
    async with sessions() as session:
        case = await case_store.get_case(session, reference)
        assert case is not None and case.contact_email == "dsl@school.example.org.uk"
        keys = db.data_keys(engine)
        found = await privacy_store.find(session, keys, Identity.EMAIL, "DSL@school.example.org.uk")
        assert found.references == [reference]
        by_chat = await privacy_store.find(session, keys, Identity.TELEGRAM_USER, "777")
        assert by_chat.references == [reference]
        assert by_chat.messages > 10
    await engine.dispose()


async def test_values_written_before_encryption_read_and_are_sealed_by_a_reseal(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    reference = await submit(sessions)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE cases SET subject = 'plain old subject' WHERE reference = :r"),
            {"r": reference},
        )
    async with sessions() as session:
        case = await case_store.get_case(session, reference)
        assert case is not None and case.subject == "plain old subject"
    assert await db.reseal_all(engine) == 1
    assert "plain old subject" not in await dump(engine)


def test_the_migration_seals_exactly_the_columns_the_models_seal() -> None:
    from importlib import import_module

    migration = import_module("storage.migrations.versions.0007_privacy_audit_and_sealed_fields")
    expected = encryption.sealed_columns(Base.metadata.sorted_tables)
    expected.pop("case_links")  # created sealed, later, by 0008desk
    assert {k: sorted(v) for k, v in expected.items()} == {
        k: sorted([*v, *migration.ADDED_SEALED.get(k, ())]) for k, v in migration.SEALED.items()
    }


def test_keys_refuse_what_is_not_a_key_and_values_that_were_altered() -> None:
    with pytest.raises(DataKeyError):
        DataKeys.parse("not-a-key")
    keys = DataKeys.parse(encryption.new_key())
    sealed = keys.seal("something private")
    assert keys.open(sealed) == "something private"
    assert sealed != keys.seal("something private")  # a fresh nonce every time
    altered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(DataKeyError, match="does not open"):
        keys.open(altered)
    assert keys.blind("email", " A@B.org ") == keys.blind("email", "a@b.org")
    assert keys.blind("phone", "07700 900123") == keys.blind("phone", "+44 7700 900123")
