"""``GET /metrics``: the service's figures in Prometheus' text format.

Two kinds of figure. What happened in this process (updates handled, the intake's
latency, sends that failed) is counted as it happens, through the callbacks this object
hands to the intake service and the outbox worker. What the database holds (cases by
status and channel, the oldest unclaimed case, overdue cases, the outbox's depth and age)
is read when Prometheus asks, so every replica reports the same truth. Each service has
its own registry: nothing is global, and two services in one process (tests) do not mix.
Names start ``helpline_``; labels never carry anything anyone wrote.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot import logs
from bot.clock import Clock
from storage import figures as figure_store

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a turn takes a few milliseconds; a slow database shows in the upper buckets."""


class Metrics:
    """The instruments, the callbacks that feed them, and the route that shows them."""

    def __init__(self) -> None:
        """The instruments, registered in a registry of their own (not the global one)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._web_chats: Callable[[], int] = lambda: 0
        r = self.registry
        self.updates = Counter(
            "helpline_updates_handled",
            "Inbound messages handled (duplicates not counted), by channel.",
            ["channel"],
            registry=r,
        )
        self.intake_seconds = Histogram(
            "helpline_intake_seconds",
            "Time to handle one inbound message, from arrival to its turn saved.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.send_failures = Counter(
            "helpline_send_failures",
            "Outbox sends that failed (retried or given up), by destination.",
            ["destination"],
            registry=r,
        )
        self.cases = Gauge(
            "helpline_cases", "Cases by status and channel.", ["status", "channel"], registry=r
        )
        self.oldest_unclaimed = Gauge(
            "helpline_oldest_unclaimed_seconds",
            "Age of the oldest case waiting to be claimed (0 when none waits).",
            registry=r,
        )
        self.overdue = Gauge(
            "helpline_overdue_cases", "Open cases past their reply time.", registry=r
        )
        self.outbox_pending = Gauge(
            "helpline_outbox_pending", "Outbox rows waiting to be sent.", registry=r
        )
        self.outbox_oldest = Gauge(
            "helpline_outbox_oldest_seconds",
            "Age of the oldest outbox row waiting to be sent (0 when none waits).",
            registry=r,
        )
        self.outbox_failed = Gauge(
            "helpline_outbox_failed",
            "Outbox rows given up (see `helpline outbox --failed`).",
            registry=r,
        )
        self.outbox_parked = Gauge(
            "helpline_outbox_parked",
            "Outbox rows for a channel not configured here (the desk's, without Slack): kept.",
            registry=r,
        )
        self.web_chats = Gauge(
            "helpline_web_chats_open", "Web chats open on this replica.", registry=r
        )

    def count_web_chats(self, count: Callable[[], int]) -> None:
        """Where ``helpline_web_chats_open`` is read from: the web channel's hub, which is
        built after the metrics (none built: the gauge stays 0)."""
        self._web_chats = count

    # What the services call --------------------------------------------------------

    def handled(self, channel: str, seconds: float) -> None:
        """One inbound message handled on ``channel`` in ``seconds``."""
        self.updates.labels(channel=channel).inc()
        self.intake_seconds.labels(channel=channel).observe(seconds)

    def send_failed(self, destination: str) -> None:
        """A send to ``destination`` (``slack``, or the enquirer's channel) failed."""
        self.send_failures.labels(destination=destination).inc()

    # What Prometheus reads ------------------------------------------------------------

    async def refresh(
        self,
        sessions: async_sessionmaker[AsyncSession],
        now: datetime,
        sent: Collection[str] | None = None,
    ) -> None:
        """Read the database's figures into the gauges (``sent``: the outbox kinds this
        service sends; the rows of others are parked, not pending)."""
        async with sessions() as session:
            found = await figure_store.figures(session, now, sent=sent)
        self.cases.clear()
        for (status, channel), count in found.cases.items():
            self.cases.labels(status=status, channel=channel).set(count)
        self.oldest_unclaimed.set(_age(found.oldest_unclaimed_at, now))
        self.overdue.set(found.overdue)
        self.outbox_pending.set(found.outbox_pending)
        self.outbox_oldest.set(_age(found.outbox_oldest_at, now))
        self.outbox_failed.set(found.outbox_failed)
        self.outbox_parked.set(found.outbox_parked)
        self.web_chats.set(self._web_chats())

    def route(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        timeout: float,
        sent: Collection[str] | None = None,
    ) -> Route:
        """``GET /metrics``: 503 (and the process's own counters) if the database does not
        answer within ``timeout``, so a scrape never hangs."""

        async def metrics(request: Request) -> Response:
            status = 200
            try:
                await asyncio.wait_for(self.refresh(sessions, clock(), sent), timeout)
            except Exception as error:
                log.warning("metrics: the database did not answer (%s)", logs.kind(error))
                status = 503
            return Response(generate_latest(self.registry), status, media_type=CONTENT_TYPE_LATEST)

        return Route("/metrics", metrics, methods=["GET"])


def _age(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0
