"""The service's one HTTP server: health check, Telegram webhook and (later) Slack events."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.ext import Application

from bot.telegram import failures_noted

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1_000_000


def health_route(ping: Callable[[], Awaitable[bool]]) -> Route:
    async def healthz(request: Request) -> Response:
        ok = await ping()
        return JSONResponse({"ok": ok, "database": "up" if ok else "down"}, 200 if ok else 503)

    return Route("/healthz", healthz, methods=["GET"])


class TelegramWebhook:
    """Takes Telegram's POSTs: checks the secret, then handles the update before answering.

    200 goes back only once the update was handled (its turn saved, its replies sent), so
    a crash or a failure mid-update loses nothing: Telegram redelivers what it was not
    told it got (500 on failure), and redeliveries are deduplicated. While stopping, new
    posts get 503 (Telegram retries them later) and those in hand are finished first
    (:meth:`close`).
    """

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], secret: str) -> None:
        self._app = app
        self._secret = secret.encode()
        self._in_hand = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    def route(self, path: str) -> Route:
        return Route(path, self._post, methods=["POST"])

    async def close(self) -> None:
        """Refuse new updates (503) and wait for those in hand."""
        self._closing = True
        await self._idle.wait()

    async def _post(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret):
            log.warning("telegram webhook: wrong or missing secret")
            return Response(status_code=403)
        if self._closing or not self._app.running:
            return Response(status_code=503)
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            return Response(status_code=413)
        try:
            update = Update.de_json(json.loads(body), self._app.bot)
        except (ValueError, TypeError, KeyError):
            log.warning("telegram webhook: unreadable update")
            return Response(status_code=400)
        self._in_hand += 1
        self._idle.clear()
        try:
            # The same path as a polled update: the per-chat processor, then the handlers.
            processor = self._app.update_processor
            with failures_noted() as failed:
                await processor.process_update(update, self._app.process_update(update))
        finally:
            self._in_hand -= 1
            if not self._in_hand:
                self._idle.set()
        # A failed update (the database away, say) is not acknowledged: Telegram sends it
        # again later, and if its turn was saved after all, the resend is deduplicated.
        return Response(status_code=500 if failed else 200)


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
