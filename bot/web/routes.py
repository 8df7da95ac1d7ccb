"""The web chat's HTTP routes: the page, its static files, the widget, the exit beacon.

Every response carries a strict Content-Security-Policy (scripts, styles, images and
connections from this server only; no inline script), and the chat page is never cached
(``no-store``), so a shared computer's browser keeps no copy of it.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from bot.http.bodies import read_limited, too_large
from bot.web.chat import WebChat
from bot.web.socket import ChatSocket, Origins
from flows.copy import Copy

STATIC = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "widget.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
PLACEHOLDER = re.compile(r"\{\{([a-z_][a-z0-9_.]*)\}\}")
MAX_BEACON = 200  # bytes: a token, nothing else


@cache
def _static(name: str) -> bytes:
    return (resources.files("bot.web") / "static" / name).read_bytes()


def security_headers(origins: Origins, *, page: bool) -> dict[str, str]:
    """What every web chat response says about where it may load from and be shown."""
    ancestors = " ".join(["'self'", *sorted(origins.listed)])
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {ancestors}"
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if page:
        headers["Cache-Control"] = "no-store"
    else:
        headers["Cache-Control"] = "public, max-age=300"
    return headers


def render_page(copy: Copy, *, exit_url: str, embedded: bool) -> str:
    """The chat page with its words from copy.toml, each escaped for HTML."""
    values = {"exit_url": exit_url, "embedded": "true" if embedded else "false"}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        return html.escape(values[key] if key in values else copy(key), quote=True)

    return PLACEHOLDER.sub(fill, _static("chat.html").decode())


def safe_exit_url(url: str) -> str:
    """Only an http(s) address may be the quick exit's destination."""
    return url if url.startswith(("https://", "http://")) else "https://www.bbc.co.uk/weather"


def web_routes(
    *, chat: WebChat, socket: ChatSocket, origins: Origins, exit_url: str
) -> list[BaseRoute]:
    """``/chat``, ``/chat/static/…``, ``/chat/widget.js``, ``/chat/exit`` and the socket."""
    exit_url = safe_exit_url(exit_url)
    page_headers = security_headers(origins, page=True)
    static_headers = security_headers(origins, page=False)

    async def page(request: Request) -> Response:
        embedded = request.query_params.get("embed") == "1"
        body = render_page(chat.copy, exit_url=exit_url, embedded=embedded)
        return Response(body, media_type="text/html; charset=utf-8", headers=page_headers)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("Not found", status_code=404, headers=static_headers)
        return Response(_static(name), media_type=STATIC[name], headers=static_headers)

    async def widget(request: Request) -> Response:
        return Response(
            _static("widget.js"), media_type=STATIC["widget.js"], headers=static_headers
        )

    async def leave(request: Request) -> Response:
        """The quick exit's beacon: the body is the session token (text/plain)."""
        body = await read_limited(request, MAX_BEACON)
        if body is None:
            return too_large()
        if body:
            await chat.end(body.decode(errors="replace").strip())
        return Response(status_code=204, headers=page_headers)

    return [
        Route("/chat", page, methods=["GET"]),
        Route("/chat/static/{name}", static, methods=["GET"]),
        Route("/chat/widget.js", widget, methods=["GET"]),
        Route("/chat/exit", leave, methods=["POST"]),
        WebSocketRoute("/chat/socket", socket.serve),
    ]
