"""Delivering to enquirers from the outbox, whatever chat they came from.

``enquirer.message`` rows (a practitioner's reply, a desk notice) go to
:class:`EnquirerDelivery`; the row says which channel and chat. A reply a practitioner
wrote is logged in the case's Slack thread as sent, or as failed when it can never
arrive (the enquirer blocked the bot, or used the terminal). ``enquirer.reply`` rows (a
turn's replies the fast path could not send) go to :class:`RepliesDelivery`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.services.outbox import GiveUp, Result, Sent
from bot.services.replies import reply_from_json
from flows.messages import Reply
from storage import conversations as convo_store
from storage import outbox
from storage.models import OutboxMessage

ChatSender = Callable[[str, str], Awaitable[Result]]
"""Sends ``text`` to ``chat_id`` on one channel and says how it went."""
RowSender = Callable[[OutboxMessage], Awaitable[Result]]
"""Sends a whole outbox row on a channel that needs more than the text (email threading)."""
RepliesSender = Callable[[str, Sequence[Reply], int], Awaitable[Result]]
"""Sends replies to ``chat_id`` from the ``done``-th message on, and says how it went."""


class EnquirerDelivery:
    """Sends desk messages to enquirers on their own channel, and logs practitioners'
    replies in the case's thread once they are sent (or could never be)."""

    def __init__(
        self,
        *,
        channels: Mapping[str, ChatSender],
        clock: Clock,
        row_channels: Mapping[str, RowSender] | None = None,
    ) -> None:
        """``channels``: a sender for each channel enquirers can be written to on;
        ``row_channels``: those whose sender takes the whole row (email)."""
        self.channels = dict(channels)
        self.row_channels = dict(row_channels or {})
        self.clock = clock

    async def __call__(self, row: OutboxMessage) -> Result:
        """Send the row's message; what happened, for the worker."""
        payload = row.payload or {}
        channel, chat_id = str(payload.get("channel")), str(payload.get("chat_id"))
        text = str(payload.get("text", ""))
        send = self.channels.get(channel)
        send_row = self.row_channels.get(channel)
        if send_row is not None:
            result = await send_row(row)
        else:
            result = await send(chat_id, text) if send else GiveUp(f"no live chat on {channel}")
        log = payload.get("log")
        if not isinstance(log, dict) or row.case_id is None:
            return result
        case_id, actor, said = row.case_id, str(log.get("actor")), str(log.get("text"))
        if isinstance(result, Sent):
            note = outbox.desk_note("desk.thread_reply_sent", people={"actor": actor}, text=said)

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
                outbox.enqueue(session, outbox.SLACK_THREAD, now=now, case_id=case_id, payload=note)

            return Sent(then=logged)
        if not isinstance(result, GiveUp):
            return result  # still trying: nothing to tell the desk yet
        failed_note = outbox.desk_note("desk.thread_reply_failed", reason=result.error, text=said)

        async def failed(session: AsyncSession) -> None:
            outbox.enqueue(
                session,
                outbox.SLACK_THREAD,
                now=self.clock(),
                case_id=case_id,
                payload=failed_note,
            )

        return GiveUp(result.error, then=failed)


class RepliesDelivery:
    """Sends a turn's replies that the fast path could not, on the chat's own channel."""

    def __init__(self, *, channels: Mapping[str, RepliesSender]) -> None:
        """``channels``: a sender for each channel with buttons and all."""
        self.channels = dict(channels)

    async def __call__(self, row: OutboxMessage) -> Result:
        """Send what is left of the row's replies; what happened, for the worker."""
        payload = row.payload or {}
        channel, chat_id = str(payload.get("channel")), str(payload.get("chat_id"))
        send = self.channels.get(channel)
        if send is None:
            return GiveUp(f"no live chat on {channel}")
        replies = [reply_from_json(r) for r in payload.get("replies", []) if isinstance(r, dict)]
        return await send(chat_id, replies, int(payload.get("done", 0) or 0))
