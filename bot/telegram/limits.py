"""Keeping to Telegram's sending limits: about 30 messages a second, and 1 a second per chat."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter

MAX_LIMITED_CHATS = 10_000
PER_CHAT_ENDPOINTS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup"})


class ChatRateLimiter(AIORateLimiter):
    """Telegram's limits: ~30 messages/s overall and ~1/s per chat (short bursts allowed).

    PTB's AIORateLimiter covers the overall and group limits and retries 429s; this adds
    a leaky bucket per private chat, kept for the most recent chats only.
    """

    def __init__(self, *, per_chat_rate: float, per_chat_burst: int, max_retries: int) -> None:
        super().__init__(overall_max_rate=30, group_max_rate=20, max_retries=max_retries)
        self._rate = per_chat_rate
        self._burst = max(1, per_chat_burst)
        self._chats: OrderedDict[int, AsyncLimiter] = OrderedDict()

    def _chat_limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self._chats.pop(chat_id, None) or AsyncLimiter(
            self._burst, self._burst / self._rate
        )
        self._chats[chat_id] = limiter
        while len(self._chats) > MAX_LIMITED_CHATS:
            self._chats.popitem(last=False)
        return limiter

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        """Hold a message to a private chat until that chat's bucket allows it, then let PTB's
        overall limiter send it.
        """
        chat_id = data.get("chat_id")
        if (
            endpoint in PER_CHAT_ENDPOINTS
            and isinstance(chat_id, int | str)
            and str(chat_id).isdigit()
        ):
            async with self._chat_limiter(int(chat_id)):
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )
