"""Linked reports in storage: keys kept per case, other cases found by them, erased with them."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import cases as case_store
from storage import links as link_store
from storage.models import Case
from storage.retention import purge_before
from storage.transfer import import_cases
from tests.support.drafts import NOW, draft
from tests.support.report_data import HEADER, LONDON, VOCAB


async def test_links_cases_sharing_a_key_are_linked_newest_first_with_what_they_share(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keys = {
        "HL-AAAAA1": ["tiktok:@x", "web:example.org/a"],
        "HL-AAAAA2": ["tiktok:@x"],
        "HL-AAAAA3": ["tiktok:@x", "web:example.org/a"],
        "HL-AAAAA4": ["discord:invite/AbCd"],
    }
    ids = {}
    async with sessions() as session, session.begin():
        for n, (reference, its_keys) in enumerate(keys.items()):
            case = case_store.create_case(
                session, draft(reference, received_at=NOW + timedelta(days=n)), channel="telegram"
            )
            await session.flush()
            await link_store.remember(session, case.id, its_keys)
            ids[reference] = case.id
    async with sessions() as session:
        found = await link_store.linked(session, ids["HL-AAAAA1"])
        alone = await link_store.linked(session, ids["HL-AAAAA4"])
        newest = await link_store.linked(session, ids["HL-AAAAA1"], limit=1)
        just_ids = await link_store.linked_ids(session, ids["HL-AAAAA1"], limit=2)
    assert [(f.case.reference, f.shared) for f in found] == [
        ("HL-AAAAA3", ("tiktok:@x", "web:example.org/a")),
        ("HL-AAAAA2", ("tiktok:@x",)),
    ]
    assert alone == [] and [f.case.reference for f in newest] == ["HL-AAAAA3"]
    assert just_ids == [(f.case.id, f.shared) for f in found]

    async with sessions() as session, session.begin():
        await purge_before(session, NOW + timedelta(days=1, hours=1))  # the first two go
    async with sessions() as session:
        assert await link_store.keys_of(session, ids["HL-AAAAA1"]) == []
        left = await link_store.linked(session, ids["HL-AAAAA3"])
    assert left == []


async def test_imported_cases_are_known_by_the_accounts_and_links_they_mention(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = [
        HEADER,
        "I01,2023-03-01T10:00:00,email,Teacher,Secondary,London,Social Networks,TikTok,"
        "Online Reputation,Fake account @Head_Fake,"
        '"See https://www.tiktok.com/@head_fake?lang=en and instagram.com/parody.page",'
        "true,,resolved",
        "I02,2023-03-02T10:00:00,email,Teacher,Primary,Wales,Social Networks,Instagram,"
        "Cyberbullying,Nothing to link,mean comments in class,false,,resolved",
    ]
    async with sessions() as session, session.begin():
        result = await import_cases(session, io.StringIO("\n".join(rows)), VOCAB, LONDON)
        assert result.ok, result.errors
    async with sessions() as session, session.begin():
        imported = {c.reference: c.id for c in (await session.execute(select(Case))).scalars()}
        later = case_store.create_case(session, draft("HL-LATER01"), channel="telegram")
        await session.flush()
        await link_store.remember(session, later.id, ["tiktok:@head_fake"])
    async with sessions() as session:
        keys = await link_store.keys_of(session, imported["I01"])
        none = await link_store.keys_of(session, imported["I02"])
        found = await link_store.linked(session, later.id)
    assert keys == ["instagram:@parody.page", "tiktok:@head_fake"] and none == []
    assert [(f.case.reference, f.shared) for f in found] == [("I01", ("tiktok:@head_fake",))]
