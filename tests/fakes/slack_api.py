"""A fake Slack Web API for tests, on loopback, spoken to by the real slack_sdk over HTTP.

Why a server and not a mocked ``AsyncWebClient``: the bugs we care about live on the wire (JSON
versus form bodies, ``ok: false`` answers the SDK turns into ``SlackApiError``, 429 with
``Retry-After`` that the SDK's retry handlers read, 5xx with HTML bodies, thread replies, the
``auth.test`` Bolt makes before the first listener runs). Only real HTTP exercises them.

The module-level builders play Slack's side towards a Bolt app: signed request bodies shaped like
the interactivity and Events API requests Slack sends, and :func:`serve_bolt` to serve an app.

Only the Web API methods the application (and Bolt for it) calls are here, one ``_api_<method>``
handler each: auth.test, chat.postMessage, chat.update, chat.postEphemeral,
conversations.history, conversations.replies, views.open.

Usage::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.token, base_url=slack.base_url)
        app = AsyncApp(client=client, signing_secret=SECRET)
        ...  # register listeners
        async with serve_bolt(app) as url:
            body = block_action_body("claim", "case-1", user_id="U1", user_name="sam",
                                     channel_id="C1", message_ts=ts)
            assert (await post_signed(url, body, SECRET)).status == 200
            await slack.wait_for(lambda s: s.ephemerals, description="an ephemeral")

Deliberate strictness (real Slack is sometimes laxer, but these catch our bugs): replies to an
unknown ``thread_ts`` fail with ``thread_not_found``; blocks over Slack's documented limits fail
with ``invalid_blocks``; a modal title over 24 characters fails with ``invalid_arguments``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import uvicorn
from aiohttp import web
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import JSON, Call, Failure, FakeApiError, FakeApiServer, decode_json

__all__ = [
    *("JSON", "ApiError", "AppResponse", "Call", "FakeSlack", "block_action_body", "event_body"),
    *("post_signed", "serve_bolt", "signed_headers", "view_submission_body"),
]

# Form-encoded values of these keys are JSON strings on the wire; decode them for the store.
_JSON_PARAMS = {"blocks", "attachments", "view", "metadata"}
_BASE_TS_MICROS = 1_700_000_000_000_000
_TOKEN = web.RequestKey("slack_token", str)  # the call's token, from the body or the header

_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_MODAL = 100
MAX_SECTION_TEXT = 3000
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_MESSAGE_TEXT = 40_000
MAX_MODAL_TITLE = 24


class ApiError(FakeApiError):
    """Raised inside a method handler to answer ``{"ok": false, "error": ...}``.

    Slack answers most errors with HTTP 200; rate limits with 429 and ``Retry-After``; outages
    with 5xx, often with an HTML body (``html=True``) that the SDK cannot parse as JSON.
    """

    def __init__(
        self,
        error: str,
        status: int = 200,
        *,
        retry_after: float | None = None,
        html: bool = False,
        detail: str | None = None,
    ) -> None:
        super().__init__(error)
        self.error, self.status, self.retry_after, self.html = error, status, retry_after, html
        self.detail = detail

    def response(self) -> web.Response:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = _seconds_header(self.retry_after)
        if self.html:
            page = (
                f"<html><head><title>{self.status} {self.error}</title></head>"
                f"<body><h1>{self.status} {self.error}</h1></body></html>"
            )
            return web.Response(
                text=page, status=self.status, content_type="text/html", headers=headers
            )
        body: JSON = {"ok": False, "error": self.error}
        if self.detail:
            body["response_metadata"] = {"messages": [f"[ERROR] {self.detail}"]}
        return web.json_response(body, status=self.status, headers=headers)


class FakeSlack(FakeApiServer):
    """In-memory Slack workspace: records what the app calls and stores what it posts."""

    def __init__(
        self,
        token: str = "xoxb-test-token",
        *,
        team_id: str = "T1",
        team: str = "Helpline Test",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        bot_name: str = "helpline-bot",
        app_id: str = "A1",
        app_token: str = "xapp-1-A1-test-token",
    ) -> None:
        super().__init__()
        self.app_token = app_token  # Socket Mode's app-level token (apps.connections.open)
        self.sockets: list[web.WebSocketResponse] = []  # Socket Mode connections open now
        self.acks: dict[str, JSON] = {}  # envelope_id -> the app's acknowledgement
        self.connections_opened = 0
        self._envelope_ids = itertools.count(1)
        self.homes: dict[str, JSON] = {}  # user id -> their App Home view (views.publish)
        self.token, self.team_id, self.team = token, team_id, team
        self.bot_user_id, self.bot_id = bot_user_id, bot_id
        self.bot_name, self.app_id = bot_name, app_id
        self.refused: list[Call] = []  # calls answered 503 while go_down() was in force
        self.ephemerals: list[JSON] = []
        self.views: dict[str, JSON] = {}  # view id -> view as opened
        self.rate_limited = 0  # 429s given by enforce_channel_rate
        self.channels: dict[str, JSON] = {}
        self.usergroups: dict[str, list[str]] = {}  # user group id -> member user ids
        self._ts = itertools.count(1)
        self._view_ids = itertools.count(1)
        self._top: dict[str, list[str]] = {}  # channel -> top-level ts in order
        self._replies: dict[tuple[str, str], list[str]] = {}  # (channel, parent ts) -> reply ts
        self._by_ts: dict[tuple[str, str], JSON] = {}
        self._held: dict[str, asyncio.Event] = {}  # methods whose answers wait (see hold)
        self.answers_lost = 0  # answers to held calls that the caller never read
        self._down: ApiError | None = None
        self._min_post_interval = 0.0
        self._rate_retry_after: float | None = None
        self._last_post: dict[str, float] = {}

    @property
    def base_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)``: the SDK posts to ``{base_url}{method}``."""
        return f"{self.url}/api/"

    # -- workspace setup -------------------------------------------------------------------
    def add_channel(
        self, channel_id: str, name: str, *, is_private: bool = False, is_member: bool = True
    ) -> JSON:
        """Register a channel; posting to one with ``is_member=False`` fails ``not_in_channel``.
        Unregistered channel ids work too."""
        channel = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_private,
            "is_private": is_private,
            "is_member": is_member,
        }
        self.channels[channel_id] = channel
        return channel

    def add_message(
        self, channel: str, text: str, *, user: str, thread_ts: str | None = None
    ) -> JSON:
        """Store a message a person posted (the app cannot chat.update it)."""
        message = self._store(channel, {"user": user, "text": text}, thread_ts)
        self._changed()
        return message

    # -- assertions and queries ------------------------------------------------------------
    def messages(self, channel: str) -> list[JSON]:
        """Top-level messages in the channel, oldest first, as shown now (live dicts)."""
        return [self._by_ts[(channel, ts)] for ts in self._top.get(channel, [])]

    def thread(self, channel: str, ts: str) -> list[JSON]:
        """Replies in the thread under ``ts``, oldest first (the parent itself not included)."""
        return [self._by_ts[(channel, r)] for r in self._replies.get((channel, ts), [])]

    def message(self, channel: str, ts: str) -> JSON | None:
        return self._by_ts.get((channel, ts))

    def texts(self, channel: str) -> list[str]:
        return [m.get("text", "") for m in self.messages(channel)]

    @property
    def last_view(self) -> JSON | None:
        return next(reversed(self.views.values()), None)

    def _state_summary(self) -> str:
        lines = [f"  {c}: {[m.get('text') for m in self.messages(c)]!r}" for c in sorted(self._top)]
        return (
            "messages so far:\n"
            + ("\n".join(lines) or "  (none)")
            + f"\nephemerals: {[e.get('text') for e in self.ephemerals]!r}"
        )

    # -- behaviour controls ----------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: float = 1,
        times: int = 1,
        *,
        error: str | None = None,
        html: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        429 answers ``ratelimited`` with a ``Retry-After`` header. 5xx answers a JSON error
        (``internal_error``/``service_unavailable``/``fatal_error``) or, with ``html=True``, an
        HTML page. ``status=200`` with ``error="..."`` answers that Slack error code.
        """
        self._queue_failure(method, Failure(status, retry_after, error, html), times)

    def hold(self, method: str) -> asyncio.Event:
        """Do what ``method`` asks at once (post the message, say) but hold the answer until
        the returned event is set: a caller killed meanwhile never learns it succeeded."""
        gate = self._held[method] = asyncio.Event()
        return gate

    def release(self, method: str) -> None:
        """Stop holding ``method``'s answers (those waiting go out now)."""
        gate = self._held.pop(method, None)
        if gate is not None:
            gate.set()

    def go_down(self, *, html: bool = False) -> None:
        """Answer every Web API call with 503 until :meth:`come_back` (refusals in ``refused``)."""
        self._down = ApiError("service_unavailable", 503, html=html)

    def come_back(self) -> None:
        self._down = None

    def enforce_channel_rate(
        self, seconds: float = 1.0, *, retry_after_seconds: float | None = None
    ) -> None:
        """Answer 429 to chat.postMessage closer than ``seconds`` to the last accepted one per
        channel (thread replies count for their channel). ``Retry-After`` is the remainder
        rounded up to whole seconds like Slack, or ``retry_after_seconds`` when given.

        Beware: slack_sdk's ``AsyncRateLimitErrorRetryHandler`` does ``int(header)``, so a
        fractional header ("0.2") makes it raise ``ValueError``; only our own handlers can use
        fractional values. ``seconds=0`` switches enforcement off.
        """
        self._min_post_interval = seconds
        self._rate_retry_after = retry_after_seconds

    # -- HTTP ------------------------------------------------------------------------------
    def _routes(self) -> list[web.RouteDef]:
        """The Web API, plus the Socket Mode WebSocket that apps.connections.open points to."""
        return [web.get("/link/", self._socket), *super()._routes()]

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self.sockets):
            await ws.close()
        await super().__aexit__(*exc)

    # -- Socket Mode: a WebSocket on loopback, envelopes and acknowledgements ---------------
    async def _api_apps_connections_open(self, p: JSON) -> JSON:
        """Socket Mode's first call (with the app-level token): where to connect."""
        self.connections_opened += 1
        ticket = f"t{self.connections_opened}"
        return {"url": f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}&app_id={self.app_id}"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """One Socket Mode connection: ``hello`` first, then acknowledgements read back."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self.sockets),
                    "debug_info": {
                        "host": "fake-slack",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                if isinstance(data, dict) and data.get("envelope_id"):
                    self.acks[str(data["envelope_id"])] = data
        finally:
            self.sockets.remove(ws)
        return ws

    async def send_envelope(
        self,
        kind: str,
        payload: JSON,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        envelope_id: str | None = None,
    ) -> str:
        """Send an envelope (``events_api``, ``interactive``, ``slash_commands``) over the
        newest open connection, as Slack does; returns its id (see :meth:`wait_for_ack`)."""
        if not self.sockets:
            raise AssertionError("no Socket Mode connection is open")
        envelope_id = envelope_id or f"env-{next(self._envelope_ids)}"
        envelope: JSON = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout" if retry_attempt else ""
        await self.sockets[-1].send_json(envelope)
        return envelope_id

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> JSON:
        """The app's acknowledgement of an envelope (Slack redelivers without one)."""
        await self.wait_for(
            lambda s: envelope_id in s.acks, timeout=timeout, description=f"an ack of {envelope_id}"
        )
        return self.acks[envelope_id]

    async def ask_to_reconnect(self) -> None:
        """Slack's ``disconnect`` (``refresh_requested``): the app opens a new connection."""
        for ws in list(self.sockets):
            await ws.send_json(
                {
                    "type": "disconnect",
                    "reason": "refresh_requested",
                    "debug_info": {"host": "fake-slack"},
                }
            )

    async def _api_views_publish(self, p: JSON) -> JSON:
        """A user's App Home tab: a ``home`` view, replaced whole on every publish."""
        user = str(p.get("user_id") or "")
        if not _USER_ID.match(user):
            raise ApiError("invalid_arguments", detail="missing required field: user_id")
        payload = self._view_payload(p)
        if payload["type"] != "home":
            raise ApiError("invalid_arguments", detail="view type must be home")
        previous = self.homes.get(user)
        if p.get("hash") and previous and p["hash"] != previous["hash"]:
            raise ApiError("hash_conflict")
        view_id = previous["id"] if previous else f"V{next(self._view_ids):06d}"
        view = {
            "id": view_id,
            "team_id": self.team_id,
            **payload,
            "hash": f"{time.time():.6f}.{view_id}",
        }
        self.homes[user] = view
        return {"view": view}

    def _method_of(self, request: web.Request) -> str | web.Response:
        api, _, method = request.match_info["path"].partition("/")
        if api != "api" or not method or "/" in method:
            return web.Response(status=404, text="404: Not Found")
        return method

    def _key(self, method: str) -> str:
        return method.replace(".", "_")

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        """Query string plus a JSON, urlencoded or multipart body; the token goes aside."""
        raw = await self._read_form(request)
        token = raw.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        if token:
            request[_TOKEN] = str(token)
        return {k: decode_json(v) if k in _JSON_PARAMS else v for k, v in raw.items()}

    async def _dispatch(self, call: Call, request: web.Request) -> Any:
        """An outage refuses everything, before injected failures, auth and the method."""
        if self._down is not None:
            self.refused.append(call)
            raise self._down
        return await super()._dispatch(call, request)

    def _admit(self, call: Call, request: web.Request) -> None:
        token = request.get(_TOKEN)
        if not token:
            raise ApiError("not_authed")
        if call.method == "apps.connections.open":
            if token != self.app_token:
                raise ApiError("not_allowed_token_type" if token == self.token else "invalid_auth")
        elif token != self.token:
            raise ApiError("invalid_auth")

    def _injected(self, failure: Failure) -> ApiError:
        status, html = failure.status, failure.html
        if status == 429:
            return ApiError("ratelimited", 429, retry_after=failure.retry_after, html=html)
        if status >= 500:
            default = {500: "internal_error", 503: "service_unavailable"}.get(status, "fatal_error")
            return ApiError(failure.error or default, status, html=html)
        return ApiError(failure.error or "invalid_arguments", status, html=html)

    def _unknown_method(self, method: str) -> ApiError:
        return ApiError("unknown_method")

    def _missing_parameter(self, name: str) -> ApiError:
        return ApiError("invalid_arguments", detail=f"missing required field: {name}")

    async def _answer(self, call: Call, result: Any) -> web.Response:
        """``{"ok": true, ...}``, held back while :meth:`hold` holds the method."""
        gate = self._held.get(call.method)
        if gate is not None:
            self._changed()  # done, and visible, while the answer waits
            try:
                await gate.wait()
            except asyncio.CancelledError:
                self.answers_lost += 1
                raise
        headers = {"x-oauth-scopes": "chat:write,channels:history"}
        return web.json_response({"ok": True, **result}, headers=headers)

    def _check_rate(self, channel: str) -> None:
        if self._min_post_interval <= 0:
            return
        now = time.monotonic()
        wait = self._last_post.get(channel, -1e9) + self._min_post_interval - now
        if wait > 0:
            self.rate_limited += 1
            retry_after = self._rate_retry_after
            raise ApiError(
                "ratelimited",
                429,
                retry_after=math.ceil(wait) if retry_after is None else retry_after,
            )

    # -- Web API methods -------------------------------------------------------------------
    async def _api_auth_test(self, p: JSON) -> JSON:
        return {
            "url": f"https://{_domain(self.team)}.slack.com/",
            "team": self.team,
            "team_id": self.team_id,
            "user": self.bot_name,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _api_chat_postMessage(self, p: JSON) -> JSON:
        channel = self._channel(p)
        self._check_content(p, MAX_BLOCKS_MESSAGE)
        thread_ts = p.get("thread_ts") or None
        if thread_ts is not None:
            parent = self._by_ts.get((channel, thread_ts))
            if parent is None:
                raise ApiError("thread_not_found")
            thread_ts = parent.get("thread_ts", thread_ts)  # a reply to a reply joins the parent
        self._check_rate(channel)
        content: JSON = {k: p[k] for k in ("text", "blocks", "attachments", "metadata") if k in p}
        msg = self._store(channel, {**self._bot_fields(), **content}, thread_ts)
        self._last_post[channel] = time.monotonic()
        return {"channel": channel, "ts": msg["ts"], "message": msg}

    async def _api_chat_update(self, p: JSON) -> JSON:
        channel = self._channel(p)
        msg = self._by_ts.get((channel, p.get("ts", "")))
        if msg is None:
            raise ApiError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise ApiError("cant_update_message")
        self._check_content(p, MAX_BLOCKS_MESSAGE)
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in p:
                msg[key] = p[key]
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": channel, "ts": msg["ts"], "text": msg.get("text", ""), "message": msg}

    async def _api_chat_postEphemeral(self, p: JSON) -> JSON:
        channel = self._channel(p)
        if not p.get("user"):
            raise ApiError("user_not_found")
        self._check_content(p, MAX_BLOCKS_MESSAGE)
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": p["user"],
                "text": p.get("text", ""),
                "blocks": p.get("blocks"),
                "thread_ts": p.get("thread_ts"),
                "message_ts": ts,
            }
        )
        return {"message_ts": ts}

    async def _api_views_open(self, p: JSON) -> JSON:
        if not p.get("trigger_id"):
            raise ApiError("invalid_trigger_id")
        return {"view": self._new_view(p)}

    async def _api_conversations_history(self, p: JSON) -> JSON:
        """Top-level messages, newest first, a page at a time (``cursor`` is an offset).
        Metadata is included only with ``include_all_metadata``, as on Slack."""
        channel = self._channel(p)
        newest_first = list(reversed(self.messages(channel)))
        return self._page(newest_first, p)

    async def _api_conversations_replies(self, p: JSON) -> JSON:
        """A thread: its parent, then the replies oldest first, a page at a time."""
        channel = self._channel(p)
        parent = self._by_ts.get((channel, str(p.get("ts", ""))))
        if parent is None:
            raise ApiError("thread_not_found")
        return self._page([parent, *self.thread(channel, parent["ts"])], p)

    def _page(self, messages: list[JSON], p: JSON) -> JSON:
        start = int(p.get("cursor") or 0)
        limit = max(1, min(int(p.get("limit") or 100), 999))
        page = messages[start : start + limit]
        with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        shown = [{k: v for k, v in m.items() if with_metadata or k != "metadata"} for m in page]
        more = start + limit < len(messages)
        return {
            "messages": shown,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _api_usergroups_users_list(self, p: JSON) -> JSON:
        group = str(p.get("usergroup", ""))
        if group not in self.usergroups:
            raise ApiError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    # -- helpers ---------------------------------------------------------------------------
    def _next_ts(self) -> str:
        micros = _BASE_TS_MICROS + next(self._ts) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel(self, p: JSON) -> str:
        channel = p.get("channel")
        if not channel or not isinstance(channel, str):
            raise ApiError("channel_not_found")
        known = self.channels.get(channel)
        if known is not None and not known.get("is_member", True):
            raise ApiError("not_in_channel")
        return channel

    def _bot_fields(self) -> JSON:
        return {
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
        }

    def _store(self, channel: str, content: JSON, thread_ts: str | None) -> JSON:
        ts = self._next_ts()
        msg: JSON = {"type": "message", "ts": ts, **content}
        if thread_ts is not None:
            msg["thread_ts"] = thread_ts
            replies = self._replies.setdefault((channel, thread_ts), [])
            replies.append(ts)
            parent = self._by_ts[(channel, thread_ts)]
            parent.update(
                thread_ts=thread_ts,
                reply_count=len(replies),
                latest_reply=ts,
                reply_users=sorted({*parent.get("reply_users", []), content.get("user", "")}),
            )
        else:
            self._top.setdefault(channel, []).append(ts)
        self._by_ts[(channel, ts)] = msg
        return msg

    def _check_content(self, p: JSON, max_blocks: int) -> None:
        if "text" in p and len(str(p["text"])) > MAX_MESSAGE_TEXT:
            raise ApiError("msg_too_long")
        if p.get("blocks") is not None:
            _check_blocks(p["blocks"], max_blocks)
        if not p.get("text") and not p.get("blocks") and not p.get("attachments"):
            raise ApiError("no_text")

    def _view_payload(self, p: JSON) -> JSON:
        """A view as Slack keeps it, checked as Slack checks it (title length, blocks)."""
        view = p.get("view")
        if not isinstance(view, dict) or "type" not in view:
            raise ApiError("invalid_arguments", detail="missing required field: view")
        title = (view.get("title") or {}).get("text", "")
        if len(title) > MAX_MODAL_TITLE:
            raise ApiError(
                "invalid_arguments",
                detail=f"must be less than {MAX_MODAL_TITLE + 1} characters "
                "[json-pointer:/view/title/text]",
            )
        _check_blocks(view.get("blocks", []), MAX_BLOCKS_MODAL)
        return {
            "type": view["type"],
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": view.get("external_id", p.get("external_id", "")),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "notify_on_close": view.get("notify_on_close", False),
        }

    def _new_view(self, p: JSON) -> JSON:
        view = p.get("view")
        if not isinstance(view, dict) or "type" not in view:
            raise ApiError("invalid_arguments", detail="missing required field: view")
        title = (view.get("title") or {}).get("text", "")
        if len(title) > MAX_MODAL_TITLE:
            raise ApiError(
                "invalid_arguments",
                detail=f"must be less than {MAX_MODAL_TITLE + 1} characters "
                "[json-pointer:/view/title/text]",
            )
        _check_blocks(view.get("blocks", []), MAX_BLOCKS_MODAL)
        view_id = f"V{next(self._view_ids):06d}"
        opened = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": view.get("external_id", p.get("external_id", "")),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "notify_on_close": view.get("notify_on_close", False),
            "state": {"values": {}},
            "hash": f"{time.time():.6f}.{view_id}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        self.views[view_id] = opened
        return opened


# -- driving a Bolt app as Slack would ---------------------------------------------------------


def signed_headers(
    signing_secret: str,
    body: str,
    *,
    timestamp: int | None = None,
    content_type: str | None = None,
) -> dict[str, str]:
    """Headers Slack sends with a request: timestamp, ``v0=`` HMAC signature and content type
    (JSON when the body looks like JSON, else form-encoded)."""
    ts = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=str(ts), body=body)
    if signature is None:  # only without a secret, which Slack never has
        raise ValueError("a signing secret is needed to sign a request")
    if content_type is None:
        is_json = body.lstrip().startswith("{")
        content_type = "application/json" if is_json else "application/x-www-form-urlencoded"
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature,
        "Content-Type": content_type,
    }


def _team(team_id: str) -> JSON:
    return {"id": team_id, "domain": "helpline-test"}


def _user(user_id: str, user_name: str, team_id: str) -> JSON:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def _form_payload(payload: JSON) -> str:
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def block_action_body(
    action_id: str,
    value: str,
    *,
    user_id: str,
    user_name: str,
    channel_id: str,
    message_ts: str,
    trigger_id: str = "t1",
    response_url: str | None = None,
    block_id: str = "b",
    team_id: str = "T1",
    message: JSON | None = None,
) -> str:
    """A button press on a message, form-encoded (``payload=<json>``) as Slack posts it.

    Pass ``message`` (e.g. ``fake.message(channel, ts)``) to include the message as shown.
    """
    payload: JSON = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": message or {"type": "message", "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "text": {"type": "plain_text", "text": action_id},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return _form_payload(payload)


def view_submission_body(
    callback_id: str,
    values: dict[str, Any],
    private_metadata: str,
    *,
    user_id: str,
    user_name: str,
    team_id: str = "T1",
    view_id: str = "V1",
    trigger_id: str = "t1",
) -> str:
    """A modal submission, form-encoded. ``values`` is Slack's ``view.state.values`` shape:
    ``{block_id: {action_id: {"type": "plain_text_input", "value": "..."}}}``."""
    payload: JSON = {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, user_name, team_id),
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "title": {"type": "plain_text", "text": "Case"},
            "blocks": [],
            "state": {"values": values},
            "hash": f"{time.time():.6f}.hash",
            "root_view_id": view_id,
            "previous_view_id": None,
            "external_id": "",
            "app_id": "A1",
            "bot_id": "BBOT",
        },
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }
    return _form_payload(payload)


def event_body(
    event: JSON,
    *,
    event_id: str,
    team_id: str = "T1",
    api_app_id: str = "A1",
    bot_user_id: str = "UBOT",
) -> str:
    """An Events API ``event_callback`` envelope, JSON as Slack posts it."""
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "api_app_id": api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team_id,
                    "user_id": bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
    )


@dataclass
class AppResponse:
    """What the app answered Slack's request with."""

    status: int
    text: str
    headers: dict[str, str]


async def post_signed(
    url: str,
    body: str,
    signing_secret: str,
    *,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    headers: dict[str, str] | None = None,
) -> AppResponse:
    """POST ``body`` to the app, signed like Slack; ``retry_num`` marks an Events redelivery."""
    all_headers = signed_headers(signing_secret, body, timestamp=timestamp)
    if retry_num is not None:
        all_headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
    all_headers |= headers or {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body.encode(), headers=all_headers) as resp,
    ):
        return AppResponse(resp.status, await resp.text(), dict(resp.headers))


@contextlib.asynccontextmanager
async def serve_bolt(app: AsyncApp, path: str = "/slack/events") -> AsyncIterator[str]:
    """Serve a Bolt AsyncApp over HTTP (Starlette + uvicorn on 127.0.0.1, free port), the way
    production mounts it; yields the URL to post Slack requests to."""
    handler = AsyncSlackRequestHandler(app)

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request)

    asgi = Starlette(routes=[Route(path, endpoint, methods=["POST"])])
    config = uvicorn.Config(
        asgi,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = _TestServer(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 5
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            await task
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        server.should_exit = True
        await task


class _TestServer(uvicorn.Server):
    """uvicorn without its SIGINT/SIGTERM handlers, which would swallow Ctrl-C under pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _seconds_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _domain(team: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", team.lower()).strip("-")


def _check_blocks(blocks: Any, max_blocks: int) -> None:
    """Slack's documented limits; breaking one answers ``invalid_blocks``."""

    def bad(detail: str) -> ApiError:
        return ApiError("invalid_blocks", detail=detail)

    if not isinstance(blocks, list):
        raise bad("blocks must be an array")
    if len(blocks) > max_blocks:
        raise bad(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            raise bad(f"missing required field: type [json-pointer:/blocks/{i}]")
        if len(str(block.get("block_id", ""))) > MAX_ACTION_ID:
            raise bad(f"block_id too long [json-pointer:/blocks/{i}/block_id]")
        text = block.get("text")
        too_long = isinstance(text, dict) and len(text.get("text", "")) > MAX_SECTION_TEXT
        if block["type"] == "section" and too_long:
            raise bad(
                f"must be less than {MAX_SECTION_TEXT + 1} characters "
                f"[json-pointer:/blocks/{i}/text/text]"
            )
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        if isinstance(block.get("element"), dict):
            elements.append(block["element"])
        for element in elements:
            if not isinstance(element, dict):
                continue
            if len(str(element.get("action_id", ""))) > MAX_ACTION_ID:
                raise bad(f"action_id too long [json-pointer:/blocks/{i}]")
            if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
                raise bad(f"value too long [json-pointer:/blocks/{i}]")


def home_action_body(
    action_id: str,
    value: str,
    *,
    user_id: str,
    user_name: str,
    view_id: str,
    trigger_id: str = "t1",
    team_id: str = "T1",
) -> str:
    """A button press in a user's App Home (a ``view`` container: no channel, no message)."""
    payload: JSON = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": view_id},
        "trigger_id": trigger_id,
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": {"id": view_id, "type": "home", "team_id": team_id, "state": {"values": {}}},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "home",
                "value": value,
                "text": {"type": "plain_text", "text": action_id},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return _form_payload(payload)


def app_home_opened_event(user_id: str, *, tab: str = "home") -> JSON:
    """The ``app_home_opened`` event Slack sends when a user opens the app's Home tab."""
    return {
        "type": "app_home_opened",
        "user": user_id,
        "channel": "D" + user_id[1:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
