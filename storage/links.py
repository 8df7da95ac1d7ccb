"""Linked reports: the keys each case is known by, and the other cases that share them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, delete, select
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


async def _sharing(session: AsyncSession, case_id: int) -> dict[int, list[str]]:
    """Every other case sharing a key with ``case_id``, with the keys it shares (sorted).

    One indexed lookup by key: during a spike one account can be in dozens of cases.
    """
    own = select(CaseLink.key).where(CaseLink.case_id == case_id).scalar_subquery()
    query = select(CaseLink.case_id, CaseLink.shown).where(
        CaseLink.key.in_(own), CaseLink.case_id != case_id
    )
    shared: dict[int, list[str]] = {}
    for other, key in (await session.execute(query)).all():
        shared.setdefault(int(other), []).append(str(key))
    for keys in shared.values():
        keys.sort()
    return shared


def _newest_first(ids: Iterable[int]) -> Select[int]:
    return (
        select(Case.id)
        .where(Case.id.in_(list(ids)))
        .order_by(Case.received_at.desc(), Case.id.desc())
    )


async def linked_ids(
    session: AsyncSession, case_id: int, limit: int
) -> list[tuple[int, tuple[str, ...]]]:
    """The ``limit`` newest other cases sharing a key with ``case_id`` (ids, what they
    share), none of them loaded: what a new case's notes need (``IntakeService``)."""
    shared = await _sharing(session, case_id)
    if not shared:
        return []
    ids = (await session.execute(_newest_first(shared).limit(limit))).scalars()
    return [(i, tuple(shared[i])) for i in ids]


async def linked(session: AsyncSession, case_id: int, limit: int | None = None) -> list[Linked]:
    """Every other case sharing a key with ``case_id`` (the ``limit`` newest), newest first,
    with what they share; only those cases are loaded."""
    shared = await _sharing(session, case_id)
    if not shared:
        return []
    newest = _newest_first(shared)
    if limit is not None:
        newest = newest.limit(limit)
    order = list((await session.execute(newest)).scalars())
    query = select(Case).where(Case.id.in_(order)).options(selectinload(Case.categories))
    cases = {c.id: c for c in (await session.execute(query)).scalars()}
    return [Linked(cases[i], tuple(shared[i])) for i in order if i in cases]


async def forget(session: AsyncSession, case_ids: Iterable[int]) -> None:
    """Erase the keys of cases whose personal data goes (an account name identifies)."""
    ids = list(case_ids)
    if ids:
        await session.execute(delete(CaseLink).where(CaseLink.case_id.in_(ids)))
