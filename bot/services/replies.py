"""A turn's replies are durable with the turn: written to the outbox in its transaction.

The intake service writes them (``storage.outbox.reply_row``) leased to this process's
fast path, so a channel sends them at once, as before; this ledger then deletes the row
(:meth:`ReplyLedger.sent`, batched, off the chat's critical path) or, if sending failed,
hands what is left to the outbox worker (:meth:`ReplyLedger.hand_off`), which keeps
trying. If the process dies in between, the row's lease runs out and the worker sends
it: a reply may then arrive twice, but never not at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import logs
from bot.services.leases import Leases
from flows.messages import Option, Reply
from storage import outbox

log = logging.getLogger(__name__)


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """Everything a channel needs to render the reply again later (buttons included)."""
    data: dict[str, Any] = {"text": reply.text}
    if reply.options:
        data["options"] = [[o.id, o.label, o.help] for o in reply.options]
    if reply.multiple:
        data["multiple"] = True
        data["selected"] = sorted(reply.selected)
    if reply.question:
        data["question"] = reply.question
    if reply.done_id:
        data["done_id"] = reply.done_id
    return data


def reply_from_json(data: dict[str, Any]) -> Reply:
    """The :class:`~flows.messages.Reply` saved in an outbox payload, so a later delivery sends
    it exactly as the turn said it.
    """
    options = tuple(
        Option(str(i), str(label), str(help_)) for i, label, help_ in data.get("options", ())
    )
    return Reply(
        text=str(data.get("text", "")),
        options=options,
        multiple=bool(data.get("multiple", False)),
        selected=frozenset(str(s) for s in data.get("selected", ())),
        question=data.get("question"),
        done_id=data.get("done_id"),
    )


class ReplyLedger:
    """Closes the fast path's outbox rows: sent (deleted) or handed to the worker."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        leases: Leases,
        on_handed_off: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self._clock = clock
        self._leases = leases
        self._on_handed_off = on_handed_off
        self._sent: set[int] = set()
        self._pending = asyncio.Event()

    def holding(self, row_id: int) -> None:
        """The fast path is sending this row: keep its lease alive meanwhile."""
        self._leases.hold_outbox([row_id])

    def sent(self, row_id: int) -> None:
        """All of the row's messages went out: delete it soon (a few at a time)."""
        self._sent.add(row_id)
        self._pending.set()

    async def hand_off(
        self, row_id: int, *, done: int, after: float | None, error: str, rate_limited: bool
    ) -> None:
        """``done`` messages went out; the worker sends the rest (after ``after`` seconds)."""
        try:
            async with self._sessions() as session, session.begin():
                await outbox.hand_off(
                    session,
                    row_id,
                    now=self._clock(),
                    delay=timedelta(seconds=after or 0.0),
                    error=error,
                    done=done,
                    rate_limited=rate_limited,
                )
        except Exception as error_:
            # The lease runs out instead, and the worker sends the row from the start.
            log.warning("reply hand-off failed: %s", logs.kind(error_))
        finally:
            self._leases.drop_outbox([row_id])
        self._on_handed_off()

    async def later(
        self, channel: str, chat_id: str, replies: Sequence[Reply], *, done: int = 0
    ) -> None:
        """Replies that were never written with a turn (/status, /privacy) and could not go
        now: the worker sends them."""
        now = self._clock()
        payload = {
            "channel": channel,
            "chat_id": chat_id,
            "replies": [reply_to_json(r) for r in replies],
            "done": done,
        }
        async with self._sessions() as session, session.begin():
            outbox.enqueue(session, outbox.ENQUIRER_REPLY, now=now, payload=payload)
        self._on_handed_off()

    async def flush(self) -> None:
        """Delete the rows sent so far in one statement."""
        ids, self._sent = self._sent, set()
        self._pending.clear()
        if not ids:
            return
        try:
            async with self._engine.begin() as connection:
                await outbox.acknowledge(connection, ids)
        except Exception:
            self._sent |= ids  # kept leased meanwhile, so never sent twice
            raise
        self._leases.drop_outbox(ids)

    async def run(self, stop: asyncio.Event) -> None:
        """Acknowledge sent rows as they come, batching what arrives meanwhile."""
        while not stop.is_set():
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._pending.wait()),
            ]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            try:
                await self.flush()
            except Exception as error:
                log.warning("acknowledging sent replies failed: %s", logs.kind(error))
                await asyncio.sleep(1.0)
        try:
            await self.flush()
        except Exception as error:  # their leases run out: sent once more, never lost
            log.warning("acknowledging sent replies at shutdown failed: %s", logs.kind(error))
