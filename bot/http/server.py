"""The service's one HTTP server (uvicorn, Starlette), started and stopped by the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

WS_MAX_BYTES = 256 * 1024  # one WebSocket frame; a web chat message is at most 4,000 characters


def build_http_app(routes: Sequence[BaseRoute]) -> Starlette:
    """Every route the channels and the health checks serve, in one Starlette app."""
    return Starlette(routes=list(routes))


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave SIGTERM and SIGINT to the app, which stops the parts in order."""
        yield


def http_server(app: Starlette, host: str, port: int) -> QuietServer:
    """The service's HTTP server on ``host:port``, with no access log and no lifespan: the app
    logs what it means to, and starts and stops the parts itself.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        # Web chat messages are short: compressing them saves little, costs about 50 kB of
        # zlib state per open socket, and mixing secrets with what a page sends under one
        # compression context is how BREACH-style attacks work.
        ws_per_message_deflate=False,
        ws_max_size=WS_MAX_BYTES,
    )
    return QuietServer(config)


@contextlib.asynccontextmanager
async def serving(app: Starlette, host: str, port: int) -> AsyncIterator[None]:
    """The HTTP server, listening before this returns and stopped on exit."""
    server = http_server(app, host, port)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():  # e.g. the port is taken: say so instead of hanging
            task.result()
            raise RuntimeError(f"HTTP server could not start on {host}:{port}")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
