"""A fake Telegram Bot API server for tests, on loopback, spoken to by the real PTB over HTTP.

Why a server and not a mocked ``Bot``: the bugs we care about live in the wire format (form
encoding, ``reply_markup`` as a JSON string, schema-valid results, HTTP error codes that PTB
maps onto exceptions, long polling and offsets). Only real HTTP exercises them.

Only the Bot API methods the bot (and PTB for it) calls are here, one ``_api_<method>`` handler
each: getMe, getUpdates, setWebhook, deleteWebhook, setMyCommands, sendMessage,
editMessageReplyMarkup, answerCallbackQuery, deleteMessage.

Usage::

    async with FakeTelegram() as tg:
        app = ApplicationBuilder().token(tg.token).base_url(tg.base_url).build()
        tg.push_message(42, "hello")
        assert "hello" in await tg.wait_for_text(42, "hello")
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.server import JSON, Call, Failure, FakeApiError, FakeApiServer, decode_json

__all__ = ["JSON", "ApiError", "Call", "ChatId", "FakeTelegram"]

ChatId = int | str

# Form values arrive as strings; these stay strings, everything else is JSON-decoded when it can be
# (so chat_id "42" -> 42, reply_markup '{"inline_keyboard": ...}' -> dict, "true" -> True).
_TEXT_PARAMS = {
    *("text", "parse_mode", "callback_query_id", "inline_message_id", "url", "secret_token"),
    *("language_code", "ip_address", "business_connection_id"),
}
# Bot API methods Telegram limits per chat (see enforce_per_chat_rate).
_RATE_LIMITED = frozenset({"sendmessage"})
_MEDIA: dict[str, JSON] = {
    "photo": {"width": 1280, "height": 960, "file_size": 120_000},
    "video": {"width": 1280, "height": 720, "duration": 12, "mime_type": "video/mp4"},
    "document": {"file_name": "report.pdf", "mime_type": "application/pdf", "file_size": 52_000},
    "voice": {"duration": 7, "mime_type": "audio/ogg", "file_size": 21_000},
    "sticker": {
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "\U0001f642",
    },
    "animation": {"width": 320, "height": 240, "duration": 3, "mime_type": "video/mp4"},
    "video_note": {"length": 240, "duration": 5, "file_size": 80_000},
    "audio": {"duration": 180, "mime_type": "audio/mpeg", "title": "Track", "performer": "Band"},
}


class ApiError(FakeApiError):
    """Raised inside a method handler to answer ``{"ok": false, ...}`` with an HTTP status."""

    def __init__(self, status: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after
        self.error = description

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status)


@dataclass
class _Queued:
    update: JSON
    delivered: bool = False


class FakeTelegram(FakeApiServer):
    """In-memory Telegram: records what the bot calls and feeds it updates you push."""

    _quiet_methods = frozenset({"getUpdates"})

    def __init__(self, token: str = "123:ABC", bot_username: str = "helpline_test_bot") -> None:
        super().__init__()
        self.token, self.bot_username = token, bot_username
        self.deleted: list[tuple[ChatId, int]] = []  # (chat_id, message_id) of deleteMessage
        self.webhook: dict[str, Any] | None = None  # params of the last setWebhook
        self.rate_limited = 0  # 429s given by enforce_per_chat_rate
        self._queue: list[_Queued] = []
        self._new_update = asyncio.Event()
        self._last_update_id = 0
        self._pushed = 0
        self._serial = itertools.count(1)  # for file and callback query ids
        self._message_ids: dict[ChatId, itertools.count[int]] = {}
        self._messages: dict[ChatId, dict[int, JSON]] = {}
        self._chats: dict[ChatId, JSON] = {}
        self._texts: list[tuple[ChatId, str]] = []  # (chat, text) of each sendMessage
        self._callback_ids: set[str] = set()
        self._min_send_interval = 0.0
        self._held: dict[str, asyncio.Event] = {}  # chats whose sendMessage calls wait
        self._last_send: dict[ChatId, float] = {}
        self._closing = False
        self._webhook_target: str | None = None
        self._pusher: asyncio.Task[None] | None = None
        self.webhook_statuses: list[int] = []  # what our webhook answered, in order

    # -- lifecycle -------------------------------------------------------------------------
    async def __aexit__(self, *exc: object) -> None:
        self._closing = True  # release long polls so the server shuts down at once
        self._new_update.set()
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
        await super().__aexit__(*exc)

    @property
    def base_url(self) -> str:
        """For PTB's ``base_url``: it calls ``{base_url}{token}/{method}``."""
        return f"{self.url}/bot"

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    @property
    def bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Helpline Test Bot",
            "username": self.bot_username,
        }

    # -- assertions and queries ------------------------------------------------------------
    def sent_texts(self, chat_id: ChatId) -> list[str]:
        """Texts of successful sendMessage calls to the chat, in order."""
        return [t for c, t in self._texts if c == chat_id]

    def bot_messages(self, chat_id: ChatId) -> list[JSON]:
        """The bot's undeleted messages in the chat, newest first, as shown now."""
        found = self._messages.get(chat_id, {}).values()
        return [m for m in reversed(list(found)) if m["from"]["id"] == self.bot_id]

    def last_message(self, chat_id: ChatId) -> JSON | None:
        """The newest undeleted bot message in the chat, as shown now (live dict, after edits)."""
        bot_msgs = [
            m for m in self._messages.get(chat_id, {}).values() if m["from"]["id"] == self.bot_id
        ]
        return bot_msgs[-1] if bot_msgs else None

    @property
    def queued(self) -> int:
        """Updates pushed and not yet taken (confirmed by getUpdates, or accepted by a webhook)."""
        return len(self._queue)

    @property
    def pushed(self) -> int:
        """Updates pushed so far (``push_*``), taken or not: what a test has asked of the bot."""
        return self._pushed

    def message(self, chat_id: ChatId, message_id: int) -> JSON | None:
        return self._messages.get(chat_id, {}).get(message_id)

    async def wait_for_text(self, chat_id: ChatId, substring: str, timeout: float = 5.0) -> str:
        """Wait until a message sent to the chat contains ``substring``."""

        def match() -> str | None:
            return next((t for t in self.sent_texts(chat_id) if substring in t), None)

        await self.wait_for(
            lambda _: match() is not None,
            timeout,
            description=f"text containing {substring!r} in chat {chat_id}",
        )
        return match() or ""

    def _state_summary(self) -> str:
        chats = sorted({c for c, _ in self._texts}, key=str)
        texts = "\n".join(f"  chat {c}: {self.sent_texts(c)!r}" for c in chats)
        return f"texts so far:\n{texts or '  (none)'}"

    # -- behaviour controls ----------------------------------------------------------------
    def fail_next(
        self, method: str, status: int = 429, retry_after: float = 1, times: int = 1
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (429 carries ``retry_after``)."""
        self._queue_failure(method, Failure(status, retry_after), times)

    def hold_sends(self, chat_id: ChatId) -> asyncio.Event:
        """Keep sendMessage calls to the chat waiting until the returned event is set."""
        gate = self._held[str(chat_id)] = asyncio.Event()
        return gate

    def enforce_per_chat_rate(self, seconds: float) -> None:
        """Answer 429 to send* calls closer than ``seconds`` to the last accepted one per chat.

        Real Telegram sends whole seconds in retry_after; we send the exact remainder so tests
        stay fast. ``rate_limited`` counts the refusals.
        """
        self._min_send_interval = seconds

    # -- injecting updates -----------------------------------------------------------------
    def push_raw(self, update: JSON) -> int:
        """Queue any update; an ``update_id`` is assigned when missing.

        Updates stay queued until a getUpdates with a higher ``offset`` confirms them after they
        were delivered, so pushing an already confirmed update_id again delivers it again.
        """
        if "update_id" not in update:
            update = {"update_id": self._last_update_id + 1, **update}
        self._last_update_id = max(self._last_update_id, update["update_id"])
        self._queue.append(_Queued(update))
        self._pushed += 1
        self._new_update.set()
        self._changed()
        return int(update["update_id"])

    def push_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Alex",
        update_id: int | None = None,
        **extra: Any,
    ) -> int:
        """Queue a user message. A repeated explicit ``update_id`` simulates redelivery."""
        msg = self._user_message(chat_id, user_id, chat_type, first_name)
        if text is not None:
            msg["text"] = text
        msg.update(extra)
        update: JSON = {"message": msg}
        if update_id is not None:
            update["update_id"] = update_id
        return self.push_raw(update)

    def push_edit(self, chat_id: int, message_id: int, text: str, **extra: Any) -> int:
        """Queue an edit the user made to one of their earlier messages."""
        chat = self._chats.get(chat_id) or {"id": chat_id, "type": "private", "first_name": "Alex"}
        now = int(time.time())
        msg = {"message_id": message_id, "date": now - 60, "edit_date": now, "chat": chat}
        msg.update({"from": self._user(chat_id, "Alex"), "text": text, **extra})
        return self.push_raw({"edited_message": msg})

    def push_command(self, chat_id: int, command: str, **kwargs: Any) -> int:
        """Queue ``/command [args]`` with the bot_command entity PTB's CommandHandler needs."""
        entity = {"type": "bot_command", "offset": 0, "length": len(command.split()[0])}
        return self.push_message(chat_id, command, entities=[entity], **kwargs)

    def push_media(
        self, chat_id: int, kind: str, *, caption: str | None = None, **kwargs: Any
    ) -> int:
        """Queue a photo/video/document/voice/sticker/animation/video_note/audio message.

        Like Telegram, an animation also carries a ``document`` field.
        """
        uid = f"{kind}-{next(self._serial)}"
        obj = {"file_id": f"FILE-{uid}", "file_unique_id": f"U-{uid}", **_MEDIA[kind]}
        media: JSON = {kind: [obj] if kind == "photo" else obj}
        if kind == "animation":
            media["document"] = {**obj, "file_name": "anim.mp4"}
        if caption is not None:
            media["caption"] = caption
        return self.push_message(chat_id, **media, **kwargs)

    def push_callback(
        self, chat_id: int, data: str, *, message_id: int | None = None, user_id: int | None = None
    ) -> int:
        """Queue a button press on a bot message (default: the last one in the chat)."""
        msg = self.message(chat_id, message_id) if message_id else self.last_message(chat_id)
        if msg is None:
            raise AssertionError(f"no bot message {message_id or ''} in chat {chat_id} to press")
        query_id = f"cbq-{next(self._serial)}"
        self._callback_ids.add(query_id)
        user = self._user(user_id or (chat_id if chat_id > 0 else 777), "Alex")
        return self.push_raw(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": copy.deepcopy(msg),  # as shown now, not after later edits
                    "chat_instance": f"ci-{chat_id}",
                    "data": data,
                }
            }
        )

    def push_to_webhook(self, local_url: str) -> None:
        """Behave like Telegram with a webhook set: POST every queued update to it.

        ``local_url`` stands in for the public URL given to setWebhook (which a test cannot
        reach). Like Telegram, up to ``max_connections`` of setWebhook (40 if not given)
        updates are in flight at once, taken from the queue in order, with the secret
        token from setWebhook; an answer other than 2xx is retried (after a pause), so an
        update is only dropped from the queue once the service has accepted it.
        """
        self._webhook_target = local_url
        self._pusher = asyncio.create_task(self._push_updates())

    async def _push_updates(self) -> None:
        in_flight: set[int] = set()  # ids of queued updates being posted now
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            try:
                while not self._closing:
                    hook = self.webhook
                    limit = int((hook or {}).get("max_connections") or 40)
                    waiting = [q for q in self._queue if id(q) not in in_flight]
                    if not (waiting and hook and self._webhook_target) or len(in_flight) >= limit:
                        self._new_update.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._new_update.wait(), 0.02)
                        continue
                    queued = waiting[0]
                    in_flight.add(id(queued))
                    task = asyncio.create_task(self._post_update(session, queued, in_flight))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _post_update(
        self, session: aiohttp.ClientSession, queued: _Queued, in_flight: set[int]
    ) -> None:
        secret = (self.webhook or {}).get("secret_token")
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        assert self._webhook_target is not None
        try:
            async with session.post(
                self._webhook_target, json=queued.update, headers=headers
            ) as resp:
                status = resp.status
        except aiohttp.ClientError:
            status = 0
        self.webhook_statuses.append(status)
        if 200 <= status < 300:
            self._queue.remove(queued)
            self._changed()
        else:
            self._changed()
            await asyncio.sleep(0.1)
        in_flight.discard(id(queued))
        self._new_update.set()

    async def deliver_webhook(
        self, url: str, update: JSON | int, secret_token: str | None = None
    ) -> int:
        """POST an update (or a pushed one, by update_id) to a webhook; returns the status."""
        if isinstance(update, int):
            queued = next(q for q in self._queue if q.update["update_id"] == update)
            self._queue.remove(queued)
            self._changed()
            update = queued.update
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret_token} if secret_token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=update, headers=headers) as resp,
        ):
            return resp.status

    # -- HTTP ------------------------------------------------------------------------------
    def _method_of(self, request: web.Request) -> str | web.Response:
        parts = request.match_info["path"].split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return self._reject(404)
        if parts[0][3:] != self.token:  # well-formed but wrong token: 401, like Telegram
            return self._reject(401 if ":" in parts[0] else 404)
        return parts[1]

    @staticmethod
    def _reject(status: int) -> web.Response:
        return ApiError(status, HTTPStatus(status).phrase).response()

    def _key(self, method: str) -> str:
        return method.lower()  # Bot API method names are case-insensitive

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        """Accept JSON, urlencoded or multipart bodies (and a query string), typed like Telegram."""
        raw = await self._read_form(request)
        return {k: v if k in _TEXT_PARAMS else decode_json(v) for k, v in raw.items()}

    def _injected(self, failure: Failure) -> ApiError:
        if failure.status == 429:
            retry_after = failure.retry_after
            return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        return ApiError(failure.status, f"{HTTPStatus(failure.status).phrase}: injected failure")

    def _admit(self, call: Call, request: web.Request) -> None:
        """The per-chat rate limit (see :meth:`enforce_per_chat_rate`)."""
        chat_id = call.params.get("chat_id")
        if self._key(call.method) not in _RATE_LIMITED or chat_id is None:
            return
        now = time.monotonic()
        wait = self._last_send.get(chat_id, -1e9) + self._min_send_interval - now
        if wait > 0:
            self.rate_limited += 1
            raise ApiError(429, f"Too Many Requests: retry after {wait:.2f}", round(wait, 3))
        self._last_send[chat_id] = now

    def _unknown_method(self, method: str) -> ApiError:
        return ApiError(400, f"Bad Request: method {method} is not supported by FakeTelegram")

    def _missing_parameter(self, name: str) -> ApiError:
        return ApiError(400, f"Bad Request: parameter {name} is required")

    async def _answer(self, call: Call, result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    # -- Bot API methods -------------------------------------------------------------------
    async def _api_getme(self, p: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_getupdates(self, p: JSON) -> list[JSON]:
        """Long polling: confirm delivered updates below ``offset``, then wait for new ones."""
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = p.get("offset")
        if offset is not None:
            self._queue = [
                q for q in self._queue if not (q.delivered and q.update["update_id"] < offset)
            ]
        deadline = time.monotonic() + float(p.get("timeout") or 0)
        while not self._queue and not self._closing and time.monotonic() < deadline:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        batch = self._queue[: int(p.get("limit") or 100)]
        for queued in batch:
            queued.delivered = True
        return [q.update for q in batch]

    async def _api_sendmessage(self, p: JSON) -> JSON:
        gate = self._held.get(str(p.get("chat_id")))
        if gate is not None:
            await gate.wait()
        text = p.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        self._check_markup(p.get("reply_markup"))
        msg = self._new_message(p["chat_id"], self.bot_user, text=text)
        for key in ("reply_markup", "entities"):
            if p.get(key):
                msg[key] = p[key]
        self._texts.append((p["chat_id"], text))
        return msg

    async def _api_editmessagereplymarkup(self, p: JSON) -> JSON | bool:
        """Replace a bot message's keyboard. As on Telegram, no reply_markup removes it."""
        if p.get("inline_message_id"):
            return True
        msg = self.message(p.get("chat_id", ""), p.get("message_id", 0))
        if msg is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if msg["from"]["id"] != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        markup = p.get("reply_markup")
        self._check_markup(markup)
        if markup == msg.get("reply_markup"):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message "
                "content and reply markup are exactly the same as a current "
                "content and reply markup of the message",
            )
        msg["edit_date"] = int(time.time())
        msg.pop("reply_markup", None)
        if markup:
            msg["reply_markup"] = markup
        return msg

    async def _api_deletemessage(self, p: JSON) -> bool:
        if self._messages.get(p["chat_id"], {}).pop(p["message_id"], None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        self.deleted.append((p["chat_id"], p["message_id"]))
        return True

    async def _api_answercallbackquery(self, p: JSON) -> bool:
        if p.get("callback_query_id") not in self._callback_ids:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        return True

    async def _api_setwebhook(self, p: JSON) -> bool:
        self.webhook = dict(p)
        return True

    async def _api_deletewebhook(self, p: JSON) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._queue.clear()
        return True

    async def _api_setmycommands(self, p: JSON) -> bool:
        return True

    # -- helpers ---------------------------------------------------------------------------
    def _user(self, user_id: int, first_name: str) -> JSON:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}

    def _user_message(
        self, chat_id: int, user_id: int | None, chat_type: str, first_name: str
    ) -> JSON:
        chat: JSON = {"id": chat_id, "type": chat_type}
        chat.update({"first_name": first_name} if chat_type == "private" else {"title": "Group"})
        self._chats[chat_id] = chat
        default_user = chat_id if chat_type == "private" else 777
        return self._new_message(chat_id, self._user(user_id or default_user, first_name))

    def _new_message(self, chat_id: ChatId, sender: JSON, **content: Any) -> JSON:
        """Create and store a message with the chat's next message_id (shared by both sides)."""
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        default_chat = {"id": chat_id, "type": "private" if str(chat_id)[0] != "-" else "group"}
        msg = {
            "message_id": next(counter),
            "date": int(time.time()),
            "chat": self._chats.get(chat_id, default_chat),
            "from": sender,
            **content,
        }
        self._messages.setdefault(chat_id, {})[msg["message_id"]] = msg
        return msg

    @staticmethod
    def _check_markup(markup: Any) -> None:
        """Reject callback_data outside 1-64 bytes, which Telegram refuses."""
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
