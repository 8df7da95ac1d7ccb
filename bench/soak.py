"""Soak: two replicas on one PostgreSQL database, enquirers at once, a SIGKILL, Slack 429s.

Run::

    python -m bench.soak [--postgres-url URL] [--enquirers 20] [--seed 1] [--storm 40]

Two ``helpline run`` child processes (webhook mode, the Slack desk on) share a fresh
PostgreSQL database (``--postgres-url``, wiped). Telegram's webhook requests go through a
round-robin forwarder on loopback, alternating between the replicas (the way the Caddy of
``deploy/compose.yaml`` shares them), and to the other one while one is down. Meanwhile
the fake Slack answers the first ``--storm`` ``chat.postMessage`` calls with 429, and one
replica is SIGKILLed part-way through and restarted.

It prints what the other benchmarks print for faults: cases, cards and replies lost and
duplicated (every reference an enquirer got is one case with one card; every
conversation receives what a fault-free one receives), and how long each took to arrive:
an enquiry's 18 turns, and a case's card after its last turn. There is no web chat
channel yet, so no web chat enquirers take part. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy.engine import make_url

from bench.faults import (
    DEFAULT_POSTGRES_URL,
    Service,
    Tally,
    cards,
    enquire,
    fault_free,
    fresh,
    report,
    tally_cases_and_cards,
    wait_for_cards,
)
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.telegram import free_port


class RoundRobin:
    """Forwards each webhook request to the next replica; to the other if it is down."""

    def __init__(self, targets: list[Service]) -> None:
        self.targets = targets
        self.port = free_port()
        self.forwarded = [0 for _ in targets]
        self._next = itertools.cycle(range(len(targets)))
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-telegram")}
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        first = next(self._next)
        for attempt in range(len(self.targets)):
            index = (first + attempt) % len(self.targets)
            try:
                async with self._http.post(
                    self.targets[index].webhook_url, data=body, headers=headers
                ) as answer:
                    self.forwarded[index] += 1
                    return web.Response(status=answer.status, body=await answer.read())
            except aiohttp.ClientError:
                continue  # that replica is down: the other takes it
        return web.Response(status=502)

    async def __aenter__(self) -> RoundRobin:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        app = web.Application()
        app.router.add_post("/telegram/webhook", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()


@contextlib.asynccontextmanager
async def replicas(
    tg: FakeTelegram, slack: FakeSlack, url: str, cwd: Path, count: int = 2
) -> AsyncIterator[list[Service]]:
    services = [Service(tg, slack, url, cwd) for _ in range(count)]
    try:
        for service in services:
            await service.start()
        yield services
    finally:
        for service in services:
            await service.stop()


def seconds(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.1f} s, p95 {p95:.1f} s, max {ordered[-1]:.1f} s"


async def soak(args: argparse.Namespace) -> Tally:
    tally = Tally("soak: 2 replicas", "postgres")
    rng = random.Random(args.seed)
    started = time.monotonic()
    async with (
        fresh("postgres", args.postgres_url) as url,
        FakeTelegram() as tg,
        FakeSlack() as slack,
    ):
        with tempfile.TemporaryDirectory() as cwd:
            async with replicas(tg, slack, url, Path(cwd)) as services, RoundRobin(services) as rr:
                tg.push_to_webhook(rr.url)
                slack.fail_next("chat.postMessage", status=429, retry_after=0.2, times=args.storm)
                chats = [700 + n for n in range(args.enquirers)]
                turns: dict[int, float] = {}
                card_delay: list[float] = []

                async def one(chat: int) -> tuple[str | None, int]:
                    await asyncio.sleep(rng.uniform(0, 2))
                    begun = time.monotonic()
                    reference, unanswered, _ = await enquire(tg, chat, args.script)
                    turns[chat] = time.monotonic() - begun
                    if reference:
                        done = time.monotonic()
                        with contextlib.suppress(AssertionError):
                            await slack.wait_for(lambda s: cards(s)[reference] > 0, timeout=120)
                            card_delay.append(time.monotonic() - done)
                    return reference, unanswered

                running = asyncio.gather(*(one(chat) for chat in chats))
                await asyncio.sleep(rng.uniform(2.0, 4.0))
                index = rng.randrange(len(services))
                killed_at = time.monotonic() - started
                services[index].kill()
                await asyncio.sleep(1.0)
                down = time.monotonic()
                await services[index].start()
                back = time.monotonic() - down + 1.0
                outcomes = await running
                references = [r for r, _ in outcomes]
                await wait_for_cards(slack, references, 120)
                await asyncio.sleep(2)  # replies still owed would arrive meanwhile
                for chat, (_, unanswered) in zip(chats, outcomes, strict=True):
                    got = len(tg.sent_texts(chat))
                    tally.replies_lost += max(unanswered, args.per_chat - got)
                    tally.replies_duplicated += max(0, got - args.per_chat)
                await tally_cases_and_cards(tally, url, slack, references)
                rate_limited = sum(c.status == 429 for c in slack.calls_of("chat.postMessage"))
                tally.restarts = sum(s.starts - 1 for s in services)
                tally.notes.append(
                    f"webhook requests per replica {rr.forwarded}; replica {index + 1} "
                    f"SIGKILLed at {killed_at:.0f} s, serving again {back:.0f} s later; "
                    f"{rate_limited} x 429 from Slack"
                )
                print(f"  an enquiry's {len(args.script)} turns: {seconds(list(turns.values()))}")
                print(f"  a card after the enquiry's last turn: {seconds(card_delay)}")
    tally.seconds = time.monotonic() - started
    return tally


async def bench(args: argparse.Namespace) -> None:
    print("helpline-intake: soak (2 replicas of helpline run, one PostgreSQL database)")
    print(f"  PostgreSQL: {make_url(args.postgres_url).render_as_string()} (wiped)")
    args.script = await fault_free("postgres", args.postgres_url)
    args.per_chat = sum(n for _, wanted in args.script for n in wanted.values())
    print(f"  a fault-free enquiry receives {args.per_chat} messages")
    print(f"  {args.enquirers} enquirers at once; Slack answers {args.storm} posts with 429")
    tally = await soak(args)
    print()
    report([tally])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    parser.add_argument("--enquirers", type=int, default=20)
    parser.add_argument("--storm", type=int, default=40, help="chat.postMessage 429s")
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
