"""Leases on work rows (outbox messages, inbox updates): one statement for each move.

A lease says which process is working on a row and until when; the holder renews it
while it lives, gives it back when it is done or stuck behind another row, and a
single process frees every lease at start (nobody else can hold one). The outbox and
the inbox lease the same way, so the statements are written once, here.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxUpdate, OutboxMessage

Leased = type[OutboxMessage] | type[InboxUpdate]


async def take(
    session: AsyncSession, model: Leased, ids: Collection[int], holder: str, until: datetime
) -> None:
    """Lease these rows to ``holder`` until ``until``."""
    await _set(session, model, ids, (), leased_by=holder, leased_until=until)


async def renew(
    session: AsyncSession,
    model: Leased,
    ids: Collection[int],
    until: datetime,
    *still: ColumnElement[bool],
) -> None:
    """Push back the leases of rows still held (and matching ``still``)."""
    await _set(session, model, ids, (model.leased_by.is_not(None), *still), leased_until=until)


async def give_back(session: AsyncSession, model: Leased, ids: Collection[int]) -> None:
    """Free these rows untried."""
    await _set(session, model, ids, (), leased_by=None, leased_until=None)


async def _set(
    session: AsyncSession,
    model: Leased,
    ids: Collection[int],
    conditions: tuple[ColumnElement[bool], ...],
    **values: Any,
) -> None:
    if ids:
        await session.execute(
            update(model)
            .where(model.id.in_(list(ids)), *conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
