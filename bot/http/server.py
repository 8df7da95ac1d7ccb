"""The service's one HTTP server: health checks, the Telegram webhook and (in bot.slack.endpoint)
Slack's requests.

Whatever a stranger can send is bounded before it is read: a body longer than the limit
gets 413 as soon as its declared length (or the bytes read so far) pass it, and the
connection is closed so the rest is never taken in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
from collections.abc import Generator, Sequence
from datetime import timedelta
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.ext import Application

from bot import logs
from bot.services.intake import Clock
from bot.services.leases import Leases
from bot.telegram.handlers import outcome_noted
from storage import db, inbox, outbox_status

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1_000_000  # a Telegram update is a few kB; 1 MB leaves room to spare
CLOSE = {"Connection": "close"}


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be longer than ``limit`` bytes.

    A declared Content-Length over the limit is refused before reading anything; a
    chunked body is read only until it passes the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return None
        except ValueError:
            return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


def too_large() -> Response:
    return Response(status_code=413, headers=CLOSE)


def parse_json(body: bytes) -> Any:
    """JSON from a request body; ValueError for anything that is not (however deep)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not JSON: {type(error).__name__}") from None


class HealthCheck:
    """``GET /healthz``: can the service do its job right now? 200, or 503 with reasons.

    It looks at what the service needs, within ``timeout`` seconds: the database answers,
    its schema is the one this code expects (a dropped and recreated database has none),
    and neither the outbox nor the inbox has anything waiting past ``stuck_after``. A
    database that accepts connections but never answers gets 503 in ``timeout`` too: the
    look goes on in the background, and the next check waits for it rather than piling
    up another.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        stuck_after: float,
        timeout: float,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._clock = clock
        self._stuck_after = timedelta(seconds=stuck_after)
        self._timeout = timeout
        self._head = db.head_revision()
        self._looking: asyncio.Task[dict[str, Any]] | None = None

    def route(self) -> Route:
        async def healthz(request: Request) -> Response:
            body = await self.check()
            return JSONResponse(body, 200 if body["ok"] else 503)

        return Route("/healthz", healthz, methods=["GET"])

    async def check(self) -> dict[str, Any]:
        if self._looking is None or self._looking.done():
            self._looking = asyncio.create_task(self._look())
        looking = self._looking
        done, _ = await asyncio.wait({looking}, timeout=self._timeout)
        if not done:
            return {
                "ok": False,
                "database": "no answer",
                "problems": [f"the database did not answer within {self._timeout:g} s"],
            }
        try:
            return looking.result()
        except Exception as error:
            return {
                "ok": False,
                "database": "down",
                "problems": [f"the database cannot be reached ({logs.kind(error)})"],
            }

    async def _look(self) -> dict[str, Any]:
        problems: list[str] = []
        body: dict[str, Any] = {"database": "up"}
        revision = await db.current_revision(self._engine)
        body["schema"] = revision
        if revision is None:
            problems.append("the database has no schema: run `helpline db upgrade`")
        elif revision != self._head:
            problems.append(f"the schema is at {revision}; this version needs {self._head}")
        else:
            now = self._clock()
            limit = self._stuck_after.total_seconds()
            async with self._sessions() as session:
                sent = await outbox_status.summary(session, now, self._stuck_after)
                held = await inbox.summary(session, now, self._stuck_after)
            body["outbox"] = {"pending": sent.pending, "stuck": sent.stuck, "failed": sent.failed}
            body["inbox"] = {"pending": held.pending, "stuck": held.stuck}
            if sent.stuck:
                problems.append(
                    f"{sent.stuck} outbox row(s) waiting for more than {limit:.0f} s "
                    f"(last error: {sent.stuck_error or 'none'})"
                )
            if held.stuck:
                problems.append(
                    f"{held.stuck} Telegram update(s) not handled for more than {limit:.0f} s "
                    f"(last error: {held.stuck_error or 'none'})"
                )
        body["ok"] = not problems
        body["problems"] = problems
        return body


def liveness_route() -> Route:
    """``GET /livez``: the process answers (for restarts; /healthz is for alerts)."""

    async def livez(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Route("/livez", livez, methods=["GET"])


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
        while not self._stop.is_set():
            try:
                await self._recover_once()
            except Exception as error:
                log.warning("telegram inbox check failed: %s", logs.kind(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._poll)

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


def build_http_app(routes: Sequence[BaseRoute]) -> Starlette:
    return Starlette(routes=list(routes))


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def http_server(app: Starlette, host: str, port: int) -> QuietServer:
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    return QuietServer(config)
