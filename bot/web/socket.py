"""The web chat's WebSocket (``/chat/socket``): one per open chat, frames as in PROTOCOL.md.

Thin: each frame is checked (origin, size, rate, shape), handed to :class:`WebChat`, and
acknowledged; a second task sends the chat's numbered messages the browser has not seen,
woken by the :class:`Hub`. Nothing the enquirer wrote is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from bot import logs
from bot.web.chat import MAX_TEXT, Erasure, Opened, WebChat
from bot.web.hub import Hub
from bot.web.limits import MinuteLimit
from flows.messages import Reply
from storage.web import FORGET, Numbered

log = logging.getLogger(__name__)
MAX_FRAME = 4 * MAX_TEXT + 1_000  # characters of JSON in one frame from the browser
HELLO_WAIT = 30.0  # seconds a socket may stay open without saying hello
TURNS = {"say", "choose", "toggle", "done", "command", "attachment"}
POLICY_VIOLATION = 1008


Send = Callable[[dict[str, Any]], Awaitable[None]]


class Stream:
    """The chat's numbered messages going to one socket, each once, in order."""

    def __init__(self, chat: WebChat, chat_id: str, last: int, send: Send) -> None:
        self._chat, self._chat_id, self.last, self._send = chat, chat_id, last, send
        self._lock = asyncio.Lock()

    async def flush(self) -> None:
        """Send whatever the chat holds after the last message sent."""
        async with self._lock:
            for message in await self._chat.after(self._chat_id, self.last):
                await self._send(_frame_of(message))
                self.last = message.seq

    async def follow(self, woken: asyncio.Event) -> None:
        """Flush now, and again whenever the chat is woken (until cancelled)."""
        while True:
            woken.clear()
            await self.flush()
            await woken.wait()


def _frame_of(message: Numbered) -> dict[str, Any]:
    """A stored message as the frame that shows it (a stored ``forget`` blanks the page)."""
    payload = message.payload
    if FORGET in payload:
        everything = payload[FORGET] == "all"
        return {"type": "forgotten", "seq": message.seq, "text": payload["text"], "all": everything}
    return {"type": "message", "seq": message.seq, **payload}


class Origins:
    """Which pages may open the socket (and frame the chat): its own, plus those listed."""

    def __init__(self, listed: str) -> None:
        self.listed = frozenset(o for o in (_origin(x) for x in listed.split(",")) if o)

    def allowed(self, origin: str | None, host: str | None) -> bool:
        """Browsers always send Origin with a WebSocket; a page elsewhere must be listed."""
        if not origin:
            return False
        if _origin(origin) in self.listed:
            return True
        return bool(host) and urlsplit(origin).netloc.lower() == (host or "").lower()


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


class ChatSocket:
    """Serves one browser's chat over a WebSocket."""

    def __init__(
        self,
        *,
        chat: WebChat,
        hub: Hub,
        origins: Origins,
        per_session: MinuteLimit,
        per_address: MinuteLimit,
        retention_days: int,
    ) -> None:
        self._chat = chat
        self._hub = hub
        self._origins = origins
        self._per_session = per_session
        self._per_address = per_address
        self._retention_days = retention_days

    async def serve(self, websocket: WebSocket) -> None:
        """One browser's chat, from hello until it closes."""
        headers = websocket.headers
        if not self._origins.allowed(headers.get("origin"), headers.get("host")):
            await websocket.close(code=POLICY_VIOLATION)  # before accepting: a 403
            return
        await websocket.accept()
        sending = asyncio.Lock()

        async def send(frame: dict[str, Any]) -> None:
            async with sending:
                await websocket.send_text(json.dumps(frame, ensure_ascii=False))

        try:
            hello = await asyncio.wait_for(self._frame(websocket), timeout=HELLO_WAIT)
            if hello is None or hello.get("type") != "hello":
                await websocket.close(code=POLICY_VIOLATION)
                return
            await self._serve(websocket, hello, send)
        except (WebSocketDisconnect, TimeoutError):
            pass
        except Exception as error:
            log.error("web chat socket failed: %s", logs.kind(error), exc_info=error)
            with contextlib.suppress(Exception):
                await websocket.close(code=1011)

    async def _serve(self, websocket: WebSocket, hello: dict[str, Any], send: Send) -> None:
        token, seen = hello.get("token"), hello.get("after")
        token = token if isinstance(token, str) else None
        after = seen if isinstance(seen, int) and seen > 0 else 0
        opened = await self._chat.open(token)
        reset = opened is None
        if opened is None:  # ended or expired: a new chat, and the browser starts afresh
            opened = await self._chat.open(None)
            assert opened is not None
            after = 0
        await send(
            {
                "type": "welcome",
                **({"token": opened.token} if opened.token else {}),
                "reset": reset,
            }
        )
        stream = Stream(self._chat, opened.chat_id, after, send)
        with self._hub.listening(opened.chat_id) as woken:
            pusher = asyncio.create_task(stream.follow(woken))
            try:
                await self._read(websocket, opened, token or opened.token or "", send, stream)
            finally:
                pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pusher

    async def _read(
        self, websocket: WebSocket, opened: Opened, token: str, send: Send, stream: Stream
    ) -> None:
        copy, chat_id = self._chat.copy, opened.chat_id
        address = websocket.client.host if websocket.client else "?"
        while True:
            frame = await self._frame(websocket)
            if frame is None:
                await send({"type": "notice", "text": copy("web.attachment_refused")})
                continue
            kind, client_id = frame.get("type"), frame.get("id")
            if kind == "exit":
                await self._chat.end(token)
                await send({"type": "ended"})
                await websocket.close()
                return
            if kind not in TURNS:
                continue  # keep, pings, or something newer than this server: ignored
            if not isinstance(client_id, str) or not 0 < len(client_id) <= 100:
                await send({"type": "notice", "text": copy("web.not_understood")})
                continue
            if not (self._per_session.allow(chat_id) and self._per_address.allow(address)):
                await send({"type": "notice", "id": client_id, "text": copy("web.slow_down")})
                continue
            if kind == "command" and frame.get("command") in ("status", "privacy"):
                await self._extra(chat_id, str(frame["command"]))
                await stream.flush()
                await send({"type": "ack", "id": client_id, "duplicate": False})
                continue
            erasure = self._chat.erasure(frame)
            inbound = self._chat.inbound(frame) if erasure is None else erasure
            if isinstance(inbound, str):  # refused: say why, take nothing
                await send({"type": "notice", "id": client_id, "text": copy(inbound)})
                await send({"type": "ack", "id": client_id, "duplicate": False})
                continue
            try:
                if isinstance(inbound, Erasure):
                    taken = await self._chat.erase(chat_id, inbound, client_id)
                else:
                    taken = await self._chat.take(chat_id, inbound, client_id)
            except Exception as error:  # not acknowledged: the browser sends it again
                log.error("web chat turn failed: %s", logs.kind(error), exc_info=error)
                await send(
                    {
                        "type": "notice",
                        "id": client_id,
                        "text": copy("web.try_again"),
                        "retry": True,
                    }
                )
                continue
            await stream.flush()  # the turn's messages go before its ack
            await send({"type": "ack", "id": client_id, "duplicate": taken.duplicate})

    async def _extra(self, chat_id: str, command: str) -> None:
        if command == "status":
            await self._chat.status(chat_id)
            return
        text = self._chat.copy("privacy.text", retention_days=self._retention_days)
        await self._chat.say_directly(chat_id, [Reply(text)])

    @staticmethod
    async def _frame(websocket: WebSocket) -> dict[str, Any] | None:
        """The next frame as a JSON object; None for anything else (binary, oversized,
        not JSON), which is refused without being read further."""
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if not isinstance(text, str) or len(text) > MAX_FRAME:
            return None
        try:
            frame = json.loads(text)
        except ValueError:
            return None
        return frame if isinstance(frame, dict) else None
