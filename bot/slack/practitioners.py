"""Who may act on the desk's cards: the members of a Slack user group, when one is set.

With ``SLACK_PRACTITIONERS`` unset, everyone who can see a card may act on it: the desk
channel's membership is the access control. With it set, a button press from anyone
outside the group is refused (and audited). Membership is read from Slack
(``usergroups.users.list``) and kept for a minute; if Slack cannot say, the press is
refused rather than allowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import logs

log = logging.getLogger(__name__)
FRESH_FOR = 60.0  # seconds a membership list is trusted


class Practitioners:
    """Answers whether a Slack user is one of the helpline's practitioners."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        group: str | None,
        fresh_for: float = FRESH_FOR,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._group = group.strip() if group and group.strip() else None
        self._fresh_for = fresh_for
        self._monotonic = monotonic
        self._members: frozenset[str] | None = None
        self._read_at = 0.0

    async def __call__(self, user_id: str) -> bool:
        """Whether ``user_id`` may act on cases."""
        if self._group is None:
            return True
        if not user_id:
            return False
        members = await self._current(self._group)
        return members is not None and user_id in members

    async def _current(self, group: str) -> frozenset[str] | None:
        fresh = self._monotonic() - self._read_at < self._fresh_for
        if self._members is not None and fresh:
            return self._members
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except (TimeoutError, SlackApiError, aiohttp.ClientError) as error:
            log.warning("cannot read the practitioners' user group: %s", logs.kind(error))
            return self._members if fresh else None
        self._members = frozenset(str(u) for u in response.get("users") or [])
        self._read_at = self._monotonic()
        return self._members
