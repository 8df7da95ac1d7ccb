"""Delivering practitioners' messages to enquirers, whatever chat they came from.

The outbox hands each ``enquirer.message`` row here; the row says which channel and
chat. A reply a practitioner wrote is logged in the case's Slack thread as sent, or as
failed when it can never arrive (the enquirer blocked the bot, or used the terminal).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbox import GiveUp, Result, Retry, Sent
from flows.copy import Copy
from storage import conversations as convo_store
from storage import outbox
from storage.models import OutboxMessage

ChatSender = Callable[[str, str], Awaitable[Result]]
"""Sends ``text`` to ``chat_id`` on one channel and says how it went."""


class EnquirerDelivery:
    def __init__(
        self, *, channels: Mapping[str, ChatSender], copy: Copy, clock: Callable[[], datetime]
    ) -> None:
        self.channels = dict(channels)
        self.copy = copy
        self.clock = clock

    async def __call__(self, row: OutboxMessage) -> Result:
        payload = row.payload or {}
        channel, chat_id = str(payload.get("channel")), str(payload.get("chat_id"))
        text = str(payload.get("text", ""))
        send = self.channels.get(channel)
        result = await send(chat_id, text) if send else GiveUp(f"no live chat on {channel}")
        log = payload.get("log")
        if not isinstance(log, dict) or row.case_id is None:
            return result
        case_id, actor, said = row.case_id, str(log.get("actor")), str(log.get("text"))
        if isinstance(result, Sent):
            note = self.copy("desk.thread_reply_sent", actor=actor, text=said)

            async def logged(session: AsyncSession) -> None:
                now = self.clock()
                convo_store.add_turn(
                    session,
                    conversation_id=None,
                    case_id=case_id,
                    sender="practitioner",
                    text=said,
                    at=now,
                )
                outbox.enqueue(
                    session, outbox.SLACK_THREAD, now=now, case_id=case_id, payload={"text": note}
                )

            return Sent(then=logged)
        note = self.copy("desk.thread_reply_failed", reason=result.error, text=said)

        async def failed(session: AsyncSession) -> None:
            outbox.enqueue(
                session,
                outbox.SLACK_THREAD,
                now=self.clock(),
                case_id=case_id,
                payload={"text": note},
            )

        # Given up now, or once the retries run out: either way the desk is told.
        if isinstance(result, GiveUp):
            return GiveUp(result.error, then=failed)
        return Retry(result.error, result.after, then=failed)
