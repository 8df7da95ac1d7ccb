"""``POST /slack/events``: Slack's signed requests, checked before Bolt sees them.

In order, each step refusing before the next costs anything:

1. the signature headers: a timestamp that is a number within five minutes, a ``v0=``
   signature (401 otherwise; nothing is read);
2. the size: a declared or actual body over the limit gets 413 as soon as that is known;
3. the signature itself, over the body read (401);
4. the payload's shape: an interaction must be a JSON object with what our listeners use
   (a user, a non-empty list of actions, a view with a state); anything else is 400;
5. replays: an interaction whose signature was seen before is acknowledged and ignored
   (Slack never resends interactions, so a second copy is someone replaying it; events
   are deduplicated by ``event_id`` as they are handled).

Then Bolt dispatches it, as its Starlette adapter would.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot import logs
from bot.clock import Clock
from bot.http.bodies import CLOSE, parse_json, read_limited, too_large
from storage import conversations as convo_store

log = logging.getLogger(__name__)
MAX_SLACK_BYTES = 1_000_000  # interactions and events are a few kB; a big modal, tens
SKEW = 60 * 5  # Slack's own rule for request timestamps
REPLAYS = "slack:signatures"


def shape_problem(body: bytes, content_type: str) -> str | None:
    """What is wrong with a signed request's payload for our listeners (None if fine)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if content_type.startswith("application/json"):
        try:
            data = parse_json(body)
        except ValueError:
            return "not JSON"
        return None if isinstance(data, dict) and isinstance(data.get("type"), str) else "no type"
    form = parse_qs(text, keep_blank_values=True)
    if "payload" not in form:
        return None  # a slash command or the like: plain form fields, Bolt's to read
    try:
        payload = parse_json(form["payload"][0].encode())
    except ValueError:
        return "payload is not JSON"
    return _interaction_problem(payload)


def _interaction_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return "payload has no type"
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return "payload has no user"
    kind = payload["type"]
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            return "no actions"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "an action without an id"
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
            return "no view"
        state = view.get("state")
        if kind == "view_submission" and (
            not isinstance(state, dict) or not isinstance(state.get("values"), dict)
        ):
            return "a view with no state"
    return None


def is_interaction(body: bytes, content_type: str) -> bool:
    """A button press or modal submission (form-encoded ``payload=``), not an event."""
    return not content_type.startswith("application/json") and body.startswith(b"payload=")


class SlackEndpoint:
    """Our HTTP endpoint for Slack's requests when Socket Mode is not used (see above)."""

    def __init__(
        self,
        *,
        app: AsyncApp,
        signing_secret: str,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        max_bytes: int = MAX_SLACK_BYTES,
    ) -> None:
        self._app = app
        self._verifier = SignatureVerifier(signing_secret)
        self._sessions = sessions
        self._clock = clock
        self._max = max_bytes

    def route(self, path: str = "/slack/events") -> Route:
        """The route to add to the service's HTTP app."""
        return Route(path, self.handle, methods=["POST"])

    async def handle(self, request: Request) -> Response:
        """Answer one request from Slack, refusing it at the first check it fails (see above)."""
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not _fresh(timestamp) or not signature.startswith("v0="):
            return Response(status_code=401, headers=CLOSE)
        body = await read_limited(request, self._max)
        if body is None:
            log.warning("slack request too large")
            return too_large()
        if not self._verifier.is_valid(body, timestamp, signature):
            log.warning("slack request with a bad signature")
            return Response(status_code=401)
        content_type = request.headers.get("content-type", "")
        problem = shape_problem(body, content_type)
        if problem:
            log.warning("slack request refused: %s", problem)
            return Response(status_code=400)
        if is_interaction(body, content_type) and await self._replayed(signature):
            log.warning("slack interaction replayed: ignored")
            return Response(status_code=200)
        bolt_response = await self._app.async_dispatch(to_async_bolt_request(request, body))
        answer: Response = to_starlette_response(bolt_response)
        return answer

    async def _replayed(self, signature: str) -> bool:
        try:
            async with self._sessions() as session, session.begin():
                first = await convo_store.first_time(session, REPLAYS, signature, self._clock())
        except Exception as error:  # cannot tell: let it through (the desk is race-safe)
            log.warning("slack replay check failed: %s", logs.kind(error))
            return False
        return not first


def _fresh(timestamp: str) -> bool:
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(time.time() - int(timestamp)) <= SKEW
