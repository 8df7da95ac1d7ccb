"""``GET /healthz`` and ``GET /livez``: is the service able to do its job, and is it alive."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import logs
from bot.clock import Clock
from storage import db, inbox, outbox_status


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
        sent: Collection[str] | None = None,
    ) -> None:
        """``sent``: the outbox kinds this service has senders for (rows of others wait
        for their channel to be configured, and are reported as parked, not stuck)."""
        self._sent = sent
        self._engine = engine
        self._sessions = sessions
        self._clock = clock
        self._stuck_after = timedelta(seconds=stuck_after)
        self._timeout = timeout
        self._head = db.head_revision()
        self._looking: asyncio.Task[dict[str, Any]] | None = None

    def route(self) -> Route:
        """The ``/healthz`` route, so the server mounts it like any other."""

        async def healthz(request: Request) -> Response:
            body = await self.check()
            return JSONResponse(body, 200 if body["ok"] else 503)

        return Route("/healthz", healthz, methods=["GET"])

    async def check(self) -> dict[str, Any]:
        """The health report: one look at the database at a time, however many probes ask."""
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
                sent = await outbox_status.summary(session, now, self._stuck_after, sent=self._sent)
                held = await inbox.summary(session, now, self._stuck_after)
            body["outbox"] = {
                "pending": sent.pending,
                "stuck": sent.stuck,
                "failed": sent.failed,
                "parked": sent.parked,
            }
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
