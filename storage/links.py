"""Linked reports: the keys each case is known by, and the other cases that share them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Case, CaseLink


@dataclass(frozen=True, slots=True)
class Linked:
    """Another case reporting some of the same accounts or links, and which."""

    case: Case
    shared: tuple[str, ...]


async def remember(session: AsyncSession, case_id: int, keys: Iterable[str]) -> None:
    """Record the keys of a case (in the transaction that creates it)."""
    for key in sorted(set(keys)):
        session.add(CaseLink(case_id=case_id, shown=key))  # indexed as it is written
    await session.flush()


async def keys_of(session: AsyncSession, case_id: int) -> list[str]:
    """The keys a case is known by, sorted (none once retention erased them)."""
    query = select(CaseLink.shown).where(CaseLink.case_id == case_id)
    return sorted((await session.execute(query)).scalars())


async def linked(session: AsyncSession, case_id: int, limit: int | None = None) -> list[Linked]:
    """Every other case sharing a key with ``case_id``, newest first, with what they share.

    One indexed lookup by key: during a spike one account can be in dozens of cases.
    """
    own = select(CaseLink.key).where(CaseLink.case_id == case_id).scalar_subquery()
    query = (
        select(CaseLink.case_id, CaseLink.shown)
        .where(CaseLink.key.in_(own), CaseLink.case_id != case_id)
        .order_by(CaseLink.case_id)
    )
    shared: dict[int, list[str]] = {}
    for other, key in (await session.execute(query)).all():
        shared.setdefault(int(other), []).append(str(key))
    for keys in shared.values():
        keys.sort()
    if not shared:
        return []
    cases = select(Case).where(Case.id.in_(list(shared))).options(selectinload(Case.categories))
    found = sorted(
        (await session.execute(cases)).scalars(),
        key=lambda c: (c.received_at, c.id),
        reverse=True,
    )
    if limit is not None:
        found = found[:limit]
    return [Linked(c, tuple(shared[c.id])) for c in found]


async def forget(session: AsyncSession, case_ids: Iterable[int]) -> None:
    """Erase the keys of cases whose personal data goes (an account name identifies)."""
    ids = list(case_ids)
    if ids:
        await session.execute(delete(CaseLink).where(CaseLink.case_id.in_(ids)))
