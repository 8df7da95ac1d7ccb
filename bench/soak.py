"""Soak: two replicas on one PostgreSQL database, enquirers at once, a SIGKILL, Slack 429s.

Run::

    python -m bench.soak [--postgres-url URL] [--enquirers 20] [--web-enquirers 10]
                         [--seed 1] [--storm 40]

Two ``helpline run`` child processes (webhook mode, the Slack desk and the web chat on)
share a fresh PostgreSQL database (``--postgres-url``, wiped). Telegram's webhook requests
go through a round-robin forwarder on loopback, alternating between the replicas (the way
the Caddy of ``deploy/compose.yaml`` shares them), and to the other one while one is down.
At the same time ``--web-enquirers`` web chats each do the whole enquiry over a WebSocket
(``bench.webchat.Chat``, which behaves as the page does: each connection goes to the next
replica, a socket that closes is opened again with the last message number it drew, and
frames not acknowledged are sent again with their ids). Meanwhile the fake Slack answers
the first ``--storm`` ``chat.postMessage`` calls with 429, and one replica is SIGKILLed
part-way through and restarted: the web chats it held reconnect to the other and finish
there. Once a web case's card is in Slack, a practitioner replies to it through the desk
(the reply form, signed as Slack posts it) on the replica the chat's socket is *not* on,
so the reply reaches the browser only through the other replica's poll of the database.

It prints what the other benchmarks print for faults: cases, cards and replies lost and
duplicated, Telegram and web chat on their own rows (every reference an enquirer got is
one case with one card; every conversation receives what a fault-free one receives, and
each web chat its practitioner's reply once), and how long each took to arrive: an
enquiry's 18 turns, a case's card after its last turn, and a practitioner's reply in the
browser after the desk took it. Nothing is asserted.
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
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy.engine import make_url
from websockets.exceptions import WebSocketException

from bench.enquiry import confirmation_mark
from bench.enquiry import script as enquiry
from bench.faults import (
    DEFAULT_POSTGRES_URL,
    PATIENCE,
    PREFIX,
    REFERENCE,
    SIGNING_SECRET,
    Script,
    Service,
    Tally,
    cards,
    enquire,
    fault_free,
    fresh,
    one_service,
    report,
    tally_cases_and_cards,
    wait_for_cards,
)
from bench.webchat import UNLIMITED, Chat, lost_and_repeated, totals_by_token
from tests.fakes.slack_api import FakeSlack, post_signed
from tests.fakes.telegram_api import FakeTelegram
from tests.support.slack_desk import reply_values, submission
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
    services = [Service(tg, slack, url, cwd, UNLIMITED) for _ in range(count)]
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


WebOutcome = tuple[Chat, str | None, int]
REPLY = "Thank you, we have reported the account to TikTok."


def shown(chat: Chat) -> Counter[str]:
    """What a web chat shows (each numbered message once), by sender and opening words
    (references differ between runs)."""
    drawn = {m["seq"]: m for m in chat.messages}
    return Counter(
        f"{m.get('from')}: {REFERENCE.sub('HL-', m.get('text', ''))[:PREFIX]}"
        for m in drawn.values()
    )


def answers(chat: Chat, before: Counter[str], wanted: Counter[str]) -> Callable[[], bool]:
    """Whether the chat shows, since ``before``, what a fault-free turn is answered with."""
    return lambda: all(shown(chat)[k] >= before[k] + n for k, n in wanted.items())


async def web_enquire(chat: Chat, script: Script | None = None) -> tuple[str | None, int, Script]:
    """A whole enquiry over the web chat, as :func:`bench.faults.enquire` on Telegram: its
    reference, how many turns were not answered as the script says, the script it made."""
    unanswered = 0
    made: Script = []
    for index, turn in enumerate(enquiry()):
        before = shown(chat)
        try:
            await chat.act(turn)  # acknowledged: its messages came first, unless it was
            if script is not None:  # taken by a replica that died before storing them
                await chat.until(answers(chat, before, script[index][1]), PATIENCE)
        except (TimeoutError, LookupError, OSError, WebSocketException):
            unanswered += 1
            continue
        made.append((turn, shown(chat) - before))
    mark = confirmation_mark()
    texts = [m.get("text", "") for m in chat.messages if mark in m.get("text", "")]
    found = next((REFERENCE.search(t) for t in texts), None)
    return (found.group() if found else None), unanswered, made


async def web_fault_free(postgres_url: str) -> Script:
    """One web enquiry with nothing going wrong: what each turn is answered with."""
    async with one_service("postgres", postgres_url, UNLIMITED) as (_, _, svc, _):
        chat = Chat([svc.socket_url])
        await chat.open()
        try:
            _, _, script = await web_enquire(chat)
        finally:
            await chat.drop()
        return script


async def reply_from(service: Service, reference: str) -> bool:
    """A practitioner sends the reply form of ``reference``'s card to ``service``."""
    body = submission("reply_modal", reply_values(REPLY), reference)
    with contextlib.suppress(aiohttp.ClientError):
        return (await post_signed(service.events_url, body, SIGNING_SECRET)).status == 200
    return False


def practitioner(chat: Chat) -> int:
    return len({m["seq"] for m in chat.messages if m.get("from") == "practitioner"})


def late(lost: int, never: int) -> str:
    """Lost replies told apart: never arrived, or only after the enquirer stopped waiting."""
    return f"of the {lost} lost, {never} never arrived, the rest after {PATIENCE:.0f} s"


@dataclass
class WebCounts:
    """What the web chats' tally found beyond lost and duplicated."""

    never: int = 0
    """Messages lost that never arrived (the rest came after the enquirer's patience)."""
    repeated: int = 0
    """Messages drawn twice (a resend after a reconnect, dropped by number as the page does)."""
    reconnected: int = 0
    odd: Counter[str] = field(default_factory=Counter)
    """Which messages were missing or extra (the flow's wording and the script's)."""


def tally_web(tally: Tally, outcomes: list[WebOutcome], script: Script) -> WebCounts:
    """Web messages lost and duplicated, by what a fault-free chat shows, plus the reply."""
    expected = sum((wanted for _, wanted in script), Counter[str]())
    counts = WebCounts()
    for chat, reference, unanswered in outcomes:
        got = shown(chat)
        replies = practitioner(chat)
        got = Counter({k: n for k, n in got.items() if not k.startswith("practitioner")})
        missing, extra = expected - got, got - expected
        counts.odd.update({f"missing {k}": n for k, n in missing.items()})
        counts.odd.update({f"extra {k}": n for k, n in extra.items()})
        unreplied = max(0, 1 - replies) if reference else 0
        tally.replies_lost += max(unanswered, sum(missing.values())) + unreplied
        tally.replies_duplicated += sum(extra.values()) + max(0, replies - 1)
        counts.never += sum(missing.values()) + unreplied
        counts.repeated += len(chat.seqs) - len(set(chat.seqs))
        counts.reconnected += chat.reconnects > 0
    return counts


async def soak(args: argparse.Namespace) -> list[Tally]:
    tg_tally = Tally("soak: Telegram", "postgres")
    web_tally = Tally("soak: web chat", "postgres")
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
                web_turns: list[float] = []
                card_delay: list[float] = []
                reply_delay: list[float] = []
                replied_across: list[bool] = []

                async def card_of(reference: str) -> None:
                    done = time.monotonic()
                    with contextlib.suppress(AssertionError):
                        await slack.wait_for(lambda s: cards(s)[reference] > 0, timeout=120)
                        card_delay.append(time.monotonic() - done)

                async def one(chat: int) -> tuple[str | None, int]:
                    await asyncio.sleep(rng.uniform(0, 2))
                    begun = time.monotonic()
                    reference, unanswered, _ = await enquire(tg, chat, args.script)
                    turns[chat] = time.monotonic() - begun
                    if reference:
                        await card_of(reference)
                    return reference, unanswered

                urls = [s.socket_url for s in services]
                web_chats = [Chat(urls, start=n) for n in range(args.web_enquirers)]

                async def one_web(chat: Chat) -> WebOutcome:
                    await asyncio.sleep(rng.uniform(0, 2))
                    begun = time.monotonic()
                    try:
                        await chat.open(patience=PATIENCE)
                    except (OSError, WebSocketException, TimeoutError):
                        return chat, None, len(args.web_script)
                    reference, unanswered, _ = await web_enquire(chat, args.web_script)
                    web_turns.append(time.monotonic() - begun)
                    if reference:
                        await card_of(reference)
                        here = chat.replica
                        other = services[1 - here]
                        across = other.up and await reply_from(other, reference)
                        if across or await reply_from(services[here], reference):
                            replied_across.append(across)
                            asked = time.monotonic()
                            with contextlib.suppress(TimeoutError):
                                await chat.until(lambda: practitioner(chat) > 0, PATIENCE)
                                reply_delay.append(time.monotonic() - asked)
                    return chat, reference, unanswered

                half = len(web_chats) // 2
                running = asyncio.gather(
                    asyncio.gather(*(one(chat) for chat in chats)),
                    asyncio.gather(*(one_web(chat) for chat in web_chats)),
                )
                # Part-way: once half the web chats are a few turns in (the replicas take a
                # while to start on a busy machine), so the killed one holds some of them.
                while not running.done() and sum(len(c.seqs) >= 8 for c in web_chats) < half:
                    await asyncio.sleep(0.1)  # a benchmark may look, not a test
                await asyncio.sleep(rng.uniform(0.0, 2.0))
                index = rng.randrange(len(services))
                killed_at = time.monotonic() - started
                held = sum(c.replica == index and not c.closed for c in web_chats)
                services[index].kill()
                await asyncio.sleep(1.0)
                down = time.monotonic()
                await services[index].start()
                back = time.monotonic() - down + 1.0
                outcomes, web = await running
                references = [r for r, _ in outcomes]
                web_references = [r for _, r, _ in web]
                await wait_for_cards(slack, references + web_references, 120)
                await asyncio.sleep(2)  # replies still owed would arrive meanwhile
                tg_never = 0
                for chat_id, (_, unanswered) in zip(chats, outcomes, strict=True):
                    got = len(tg.sent_texts(chat_id))
                    tg_tally.replies_lost += max(unanswered, args.per_chat - got)
                    tg_never += max(0, args.per_chat - got)
                    tg_tally.replies_duplicated += max(0, got - args.per_chat)
                counts = tally_web(web_tally, web, args.web_script)
                for tally, never in ((tg_tally, tg_never), (web_tally, counts.never)):
                    if tally.replies_lost:
                        tally.notes.insert(0, late(tally.replies_lost, never))
                stored = await totals_by_token(url, web_chats)
                lost, _ = lost_and_repeated(web_chats, stored)
                for web_chat in web_chats:
                    await web_chat.drop()
                await tally_cases_and_cards(tg_tally, url, slack, references, "telegram")
                await tally_cases_and_cards(web_tally, url, slack, web_references, "web")
                rate_limited = sum(c.status == 429 for c in slack.calls_of("chat.postMessage"))
                restarts = sum(s.starts - 1 for s in services)
                tg_tally.restarts = web_tally.restarts = restarts
                tg_tally.notes.append(
                    f"webhook requests per replica {rr.forwarded}; replica {index + 1} "
                    f"SIGKILLed at {killed_at:.0f} s, serving again {back:.0f} s later; "
                    f"{rate_limited} x 429 from Slack"
                )
                web_tally.notes.append(
                    f"{held} chats open on the killed replica, {counts.reconnected} of "
                    f"{len(web)} reconnected; {counts.repeated} messages "
                    f"drawn twice after a reconnect (dropped by number); {lost} in the "
                    f"database never drawn; {sum(replied_across)} of {len(replied_across)} "
                    "replies sent from the replica the chat was not on"
                )
                print(f"  an enquiry's {len(args.script)} turns: {seconds(list(turns.values()))}")
                print(f"  a web enquiry's turns: {seconds(web_turns)}")
                print(f"  a card after the enquiry's last turn: {seconds(card_delay)}")
                print(f"  a practitioner's reply in the browser: {seconds(reply_delay)}")
                for what, n in sorted(counts.odd.items()):  # the flow's wording and the script's
                    print(f"  web chat message {what!r} x {n}")
    tg_tally.seconds = web_tally.seconds = time.monotonic() - started
    return [tg_tally, web_tally]


async def bench(args: argparse.Namespace) -> None:
    print("helpline-intake: soak (2 replicas of helpline run, one PostgreSQL database)")
    print(f"  PostgreSQL: {make_url(args.postgres_url).render_as_string()} (wiped)")
    args.script = await fault_free("postgres", args.postgres_url)
    args.per_chat = sum(n for _, wanted in args.script for n in wanted.values())
    args.web_script = await web_fault_free(args.postgres_url)
    per_web = sum(n for _, wanted in args.web_script for n in wanted.values())
    print(f"  a fault-free enquiry receives {args.per_chat} messages on Telegram;")
    print(f"  a fault-free web chat shows {per_web} (its own included), then the reply")
    print(
        f"  {args.enquirers} Telegram and {args.web_enquirers} web enquirers at once;"
        f" Slack answers {args.storm} posts with 429"
    )
    tallies = await soak(args)
    print()
    report(tallies)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    parser.add_argument("--enquirers", type=int, default=20, help="on Telegram")
    parser.add_argument("--web-enquirers", type=int, default=10, help="on the web chat")
    parser.add_argument("--storm", type=int, default=40, help="chat.postMessage 429s")
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
