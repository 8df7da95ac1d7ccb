"""Telegram's webhook: the secret checked, the update stored in the inbox, then handled.

Also where the webhook's public URL and the path we serve it on are worked out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot import logs
from bot.clock import Clock
from bot.http.bodies import CLOSE, parse_json, read_limited, too_large
from bot.services.leases import Leases
from bot.services.periodic import repeat
from bot.telegram.processing import outcome_noted
from storage import inbox

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1_000_000  # a Telegram update is a few kB; 1 MB leaves room to spare
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"


def webhook_address(url: str) -> tuple[str, str]:
    """The URL to give Telegram and the path we serve it on: always the same path.

    A URL with no path (``https://helpline.example.org``) gets ``/telegram/webhook``
    added, so Telegram posts where we listen rather than to ``/``.
    """
    parts = urlsplit(url)
    if parts.path.strip("/"):
        return url, parts.path
    return urlunsplit(parts._replace(path=DEFAULT_WEBHOOK_PATH)), DEFAULT_WEBHOOK_PATH


class TelegramWebhook:
    """Takes Telegram's POSTs: checks the secret, stores the update, answers, handles it.

    200 goes back once the update is stored in the inbox (its own short transaction), not
    once it is handled: a chat sending a flood of messages queues them here, in order,
    without holding any of Telegram's connections, so other chats are never kept waiting
    behind it. Handling an update removes it from the inbox in the same transaction as
    its turn; one that failed, or was in hand when the process died, is handled again
    (after a backoff, or once its lease runs out). Bodies that are too large (413), not
    JSON or not an update (400) are refused before anything is stored; a database that is
    away gets 503, and Telegram sends the update again later. While stopping, new posts
    get 503 and the updates in hand are finished first (:meth:`close`).
    """

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        secret: str,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        leases: Leases,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        poll_interval: float = 1.0,
    ) -> None:
        self._app = app
        self._secret = secret.encode()
        self._sessions = sessions
        self._clock = clock
        self._leases = leases
        self._base = backoff_base
        self._cap = backoff_cap
        self._poll = poll_interval
        self._in_hand: dict[int, asyncio.Task[None]] = {}
        self._closing = False
        self._stop = asyncio.Event()
        self._recovery: asyncio.Task[None] | None = None

    def route(self, path: str) -> Route:
        """The route Telegram posts to (``path`` from :func:`webhook_address`)."""
        return Route(path, self._post, methods=["POST"])

    @property
    def source(self) -> str:
        """Whose updates these are (the same key the intake service dedupes on)."""
        return f"telegram:{self._app.bot.id}"

    def start(self) -> None:
        """Begin handling what the inbox holds from before (and retrying what failed)."""
        self._recovery = asyncio.create_task(self._recover())

    async def close(self) -> None:
        """Refuse new updates (503) and wait for those in hand."""
        self._closing = True
        self._stop.set()
        if self._recovery is not None:
            await self._recovery
        while self._in_hand:
            await asyncio.gather(*self._in_hand.values(), return_exceptions=True)

    async def _post(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret):
            log.warning("telegram webhook: wrong or missing secret")
            return Response(status_code=403, headers=CLOSE)
        if self._closing or not self._app.running:
            return Response(status_code=503, headers=CLOSE)
        body = await read_limited(request, MAX_UPDATE_BYTES)
        if body is None:
            log.warning("telegram webhook: update too large")
            return too_large()
        parsed = self._update(body)
        if parsed is None:
            log.warning("telegram webhook: unreadable update")
            return Response(status_code=400)
        update, data = parsed
        chat = update.effective_chat
        try:
            async with self._sessions() as session, session.begin():
                row = await inbox.accept(
                    session,
                    source=self.source,
                    key=str(update.update_id),
                    chat=str(chat.id) if chat else None,
                    body=json.dumps(data),  # ASCII: NUL and the like arrive escaped
                    now=self._clock(),
                    holder=self._leases.handler,
                    until=self._leases.until(),
                )
        except Exception as error:  # not stored: Telegram must send it again
            log.warning("telegram webhook: could not store the update: %s", logs.kind(error))
            return Response(status_code=503)
        if row is not None:  # None: already here (a resend), and in someone's hands
            self._dispatch(row, update)
        return Response(status_code=200)

    def _update(self, body: bytes) -> tuple[Update, dict[str, Any]] | None:
        """The update in a body (and its JSON), or None if it is not one, whatever its shape."""
        try:
            data = parse_json(body)
        except ValueError:
            return None
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return None
        try:
            update = Update.de_json(data, self._app.bot)
        except Exception:  # PTB raises whatever the shape makes it raise
            return None
        return (update, data) if update is not None else None

    def _dispatch(self, row: int, update: Update) -> None:
        self._leases.hold_inbox([row])
        self._in_hand[row] = asyncio.create_task(self._handle(row, update))

    async def _handle(self, row: int, update: Update) -> None:
        try:
            # The same path as a polled update: the per-chat processor, then the handlers.
            processor = self._app.update_processor
            with outcome_noted() as outcome:
                await processor.process_update(update, self._app.process_update(update))
            if outcome.failures:
                await self._later(row, logs.kind(outcome.failures[0]))
            elif not outcome.consumed:  # handled without a turn (an edit, a group): done
                async with self._sessions() as session, session.begin():
                    await inbox.take(session, self.source, str(update.update_id))
        except Exception as error:
            log.error("telegram update failed: %s", logs.kind(error), exc_info=error)
            with contextlib.suppress(Exception):
                await self._later(row, logs.kind(error))
        finally:
            self._leases.drop_inbox([row])
            self._in_hand.pop(row, None)

    async def _later(self, row: int, error: str) -> None:
        """Handling failed (say, the database was away): the update is handled again."""
        async with self._sessions() as session, session.begin():
            tried = await inbox.attempts(session, row)
            delay = min(self._cap, self._base * 2 ** min(tried, 30)) * random.uniform(0.8, 1.0)
            await inbox.release(
                session, row, now=self._clock(), delay=timedelta(seconds=delay), error=error
            )
        level = logging.ERROR if tried + 1 >= 5 else logging.WARNING
        log.log(level, "telegram update failed %d time(s), retry in %.0f s", tried + 1, delay)

    async def _recover(self) -> None:
        await repeat(
            self._recover_once,
            every=self._poll,
            stop=self._stop,
            what="telegram inbox check",
            level=logging.WARNING,
        )

    async def _recover_once(self) -> int:
        """Handle updates left by a crash or waiting after a failure; how many were taken."""
        if self._closing or not self._app.running:
            return 0
        async with self._sessions() as session, session.begin():
            rows = [r for r in await inbox.due(session, self._clock()) if r.id not in self._in_hand]
            await inbox.lease(
                session, [r.id for r in rows], self._leases.handler, self._leases.until()
            )
        for row in rows:
            try:
                update = Update.de_json(json.loads(row.body), self._app.bot)
            except Exception as error:  # kept (and reported), with a growing wait
                log.error("telegram inbox row %d unreadable: %s", row.id, logs.kind(error))
                await self._later(row.id, "unreadable")
                continue
            if update is not None:
                self._dispatch(row.id, update)
        if rows:
            log.info("telegram inbox: handling %d update(s) again", len(rows))
        return len(rows)
