"""The service's one HTTP server: health check, Telegram webhook and (later) Slack events."""

from __future__ import annotations

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

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1_000_000


def health_route(ping: Callable[[], Awaitable[bool]]) -> Route:
    async def healthz(request: Request) -> Response:
        ok = await ping()
        return JSONResponse({"ok": ok, "database": "up" if ok else "down"}, 200 if ok else 503)

    return Route("/healthz", healthz, methods=["GET"])


def telegram_webhook_route(
    path: str, app: Application[Any, Any, Any, Any, Any, Any], secret: str
) -> Route:
    """Checks Telegram's secret header on every request, then queues the update."""

    async def webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("telegram webhook: wrong or missing secret")
            return Response(status_code=403)
        if not app.running:
            # Shutting down: PTB would drop it after we said 200. 503 makes Telegram retry.
            return Response(status_code=503)
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            return Response(status_code=413)
        try:
            update = Update.de_json(json.loads(body), app.bot)
        except (ValueError, TypeError, KeyError):
            log.warning("telegram webhook: unreadable update")
            return Response(status_code=400)
        await app.update_queue.put(update)
        return Response(status_code=200)

    return Route(path, webhook, methods=["POST"])


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
