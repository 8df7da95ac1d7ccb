"""What the fake Telegram and Slack servers share: a loopback aiohttp server that records every
call, answers injected failures first, dispatches the rest to one handler method per API method,
and lets a test wait for the effects of work the application does concurrently.

A fake subclasses :class:`FakeApiServer` and says only what differs between the two APIs: where
the method name sits in the path, how parameters are typed, how an error and a success look on
the wire. Adding an API method to a fake is adding one ``_api_<name>`` method.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

JSON = dict[str, Any]

# How often wait_for looks again without being woken: a predicate may read state outside the fake
# (log records, the database), which no call announces.
_FALLBACK_POLL_SECONDS = 0.05
_RECENT_CALLS_SHOWN = 15


@dataclass
class Call:
    """One API request the application made; ``status`` is the HTTP status the fake answered,
    ``error`` the API's error code or description when it refused."""

    method: str
    params: dict[str, Any]
    status: int = 200
    error: str | None = None


@dataclass(frozen=True)
class Failure:
    """An answer queued by ``fail_next``: what the next call of a method gets instead."""

    status: int
    retry_after: float
    error: str | None = None
    html: bool = False


class FakeApiError(Exception, abc.ABC):
    """Raised inside a handler to refuse the call; each fake says how a refusal looks.

    ``status`` is the HTTP status, ``error`` the error code or description recorded on the
    :class:`Call`.
    """

    status: int
    error: str

    @abc.abstractmethod
    def response(self) -> web.Response:
        """The refusal as the real API sends it."""


class FakeApiServer(abc.ABC):
    """An API server on 127.0.0.1 (free port) for the life of ``async with``.

    Each request names a method (:meth:`_method_of`); the fake records a :class:`Call`, answers
    a failure queued by :meth:`fail_next` if there is one, lets :meth:`_admit` refuse it, then
    runs ``_api_<key>`` where the key is :meth:`_key` of the method name.
    """

    # Methods left out of the recent calls shown when a wait times out (e.g. long polls).
    _quiet_methods: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._failures: dict[str, list[Failure]] = {}
        self._waiters: set[asyncio.Event] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        app = web.Application()
        app.add_routes(self._routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """The server's root, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._port}"

    def _routes(self) -> list[web.RouteDef]:
        """Every path goes to :meth:`_handle`; a fake needing another endpoint adds a route."""
        return [web.route("*", "/{path:.*}", self._handle)]

    # -- queries and waiting ---------------------------------------------------------------
    def calls_of(self, method: str) -> list[Call]:
        """The calls of one method, in order."""
        key = self._key(method)
        return [c for c in self.calls if self._key(c.method) == key]

    async def wait_for(
        self,
        predicate: Callable[[Self], object],
        timeout: float = 5.0,
        *,
        description: str = "predicate",
    ) -> None:
        """Wait until ``predicate(self)`` is true: the application works concurrently, so tests
        wait for its effects. Looked at again whenever the fake's state changes (and every
        50 ms for state outside the fake); on timeout, fails saying what the fake saw."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        changed = asyncio.Event()
        self._waiters.add(changed)
        try:
            while not predicate(self):
                left = deadline - loop.time()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {description}\n{self._summary()}"
                    )
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(left, _FALLBACK_POLL_SECONDS))
        finally:
            self._waiters.discard(changed)

    def _changed(self) -> None:
        """Wake every :meth:`wait_for`: call this after any change a predicate could see."""
        for waiter in self._waiters:
            waiter.set()

    def _summary(self) -> str:
        """What the fake saw, for a timed-out wait: the fake's own state, then recent calls."""
        recent = [
            f"{c.method}[{c.status}{' ' + c.error if c.error else ''}]"
            for c in self.calls
            if c.method not in self._quiet_methods
        ]
        return f"{self._state_summary()}\nrecent calls: {recent[-_RECENT_CALLS_SHOWN:]}"

    @abc.abstractmethod
    def _state_summary(self) -> str:
        """The part of a timed-out wait's message that shows what the fake holds."""

    # -- injected failures -----------------------------------------------------------------
    def _queue_failure(self, method: str, failure: Failure, times: int) -> None:
        self._failures.setdefault(self._key(method), []).extend([failure] * times)

    @abc.abstractmethod
    def _injected(self, failure: Failure) -> FakeApiError:
        """The refusal a queued failure answers with."""

    # -- HTTP ------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        method = self._method_of(request)
        if isinstance(method, web.Response):
            return method
        call = Call(method, await self._read_params(request))
        self.calls.append(call)
        self._changed()
        try:
            response = await self._answer(call, await self._dispatch(call, request))
        except FakeApiError as err:
            call.status, call.error = err.status, err.error
            response = err.response()
        # Waiters wake once the answer is on its way, not when the fake has stored the effect:
        # a test that waits for a posted message then acts expects the app to know it posted.
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionResetError:  # the client hung up (a service stopping mid long-poll)
            pass
        finally:
            self._changed()
        return response

    async def _dispatch(self, call: Call, request: web.Request) -> Any:
        """A queued failure first, then :meth:`_admit`, then the method's handler."""
        key = self._key(call.method)
        if self._failures.get(key):
            raise self._injected(self._failures[key].pop(0))
        self._admit(call, request)
        handler: Callable[[JSON], Any] | None = getattr(self, f"_api_{key}", None)
        if handler is None:
            raise self._unknown_method(call.method)
        try:
            return await handler(call.params)
        except KeyError as missing:
            raise self._missing_parameter(str(missing)) from None

    @staticmethod
    async def _read_form(request: web.Request) -> dict[str, Any]:
        """Query string plus a JSON, urlencoded or multipart body, values as sent."""
        raw: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                raw.update(await request.json())
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                raw[key] = (
                    value if isinstance(value, str) else f"<file {getattr(value, 'filename', '')}>"
                )
        return raw

    @abc.abstractmethod
    def _method_of(self, request: web.Request) -> str | web.Response:
        """The API method the request calls, or the answer to a request that calls none
        (such a request is not recorded)."""

    @abc.abstractmethod
    def _key(self, method: str) -> str:
        """The method name as the handler (``_api_<key>``) and ``fail_next`` know it."""

    @abc.abstractmethod
    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        """The call's parameters, typed as the API types them."""

    @abc.abstractmethod
    def _admit(self, call: Call, request: web.Request) -> None:
        """Refuse a call before its handler runs (wrong token, rate limit) by raising."""

    @abc.abstractmethod
    def _unknown_method(self, method: str) -> FakeApiError:
        """The answer to a method the fake does not have."""

    @abc.abstractmethod
    def _missing_parameter(self, name: str) -> FakeApiError:
        """The answer to a call lacking a required parameter."""

    @abc.abstractmethod
    async def _answer(self, call: Call, result: Any) -> web.Response:
        """A successful call's answer as the API sends it (call :meth:`_changed` before
        holding it back: the effect is visible while the answer waits)."""


def decode_json(value: Any) -> Any:
    """JSON-decode a form value when it is JSON ("42", "true", '{"inline_keyboard": ...}')."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
