"""Benchmark: a burst of submitted cases, and how long their Slack cards take to arrive.

Run::

    python -m bench.slack_burst [--cases 100] [--database sqlite|postgres|both]
                                [--rate 1.0] [--poll S] [--backoff S] [--postgres-url URL]

What it does, per database:

1. A fresh database: a SQLite file in a temporary directory, or the PostgreSQL database
   ``bench`` (created if missing) wiped with ``DROP SCHEMA public CASCADE; CREATE SCHEMA
   public``; ``bot.core.open_core`` then brings it up to date (``storage.db.upgrade``)
   and builds the real ``IntakeService``, exactly as ``helpline run`` does.
2. N chats are driven, concurrently, through the real ``IntakeService.handle`` up to the
   review step (the same typed answers as the tests' ``PROFESSIONAL_TO_REVIEW``). Nothing
   is written to the outbox yet, and this part is not timed.
3. The fake Slack Web API (``tests.fakes.slack_api.FakeSlack``, aiohttp on loopback) is
   told to enforce one ``chat.postMessage`` per ``--rate`` seconds per channel, answering
   429 with ``Retry-After`` in whole seconds, rounded up, as Slack does. The desk's Slack
   side is built by ``bot.slack.app.build_slack`` from settings pointing at the fake (as
   ``bot.app.build`` builds it: the real slack_sdk ``AsyncWebClient`` and ``SlackCards``);
   the real ``OutboxWorker`` is started with its senders (same poll interval and backoff
   as the settings' defaults unless overridden). Nothing wakes the worker when a case is
   submitted (the service's worker is woken): it finds the cards on its next poll, so the
   figures measure polling, leasing and the rate limit, as they always have.
4. The clock starts, and all N chats send "send" at once (``asyncio.gather`` of N
   ``IntakeService.handle`` calls): each commits its case and its ``slack.card`` outbox
   row in one transaction. The benchmark then watches the fake's channel until N cards are
   there and no card row is pending, waits a little longer to catch late duplicates, and
   stops the worker.

It prints figures and asserts nothing: time until all cards were posted against the
theoretical minimum ((N-1) x the interval: the first card can go at once, each later one
no sooner than one interval after the previous), the 429s, and the checks that must be
0 (cases with no card, references with more than one top-level message). It also splits
the worker's time (bench-only subclass of ``OutboxWorker`` that times its passes without
changing what they do) into leasing, sending, recording results and unleasing the rows
held back behind a 429, so the overhead over the minimum can be attributed.

Everything runs in one process and one event loop (fake Slack, worker, intake), as the
service itself runs the worker and intake on one loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from bench.common import database, postgres_url
from bot import logs
from bot.core import Core, open_core
from bot.services.outbox import OutboxWorker, Result, Retry, Sender
from bot.settings import Settings
from bot.slack.app import build_slack
from flows.conversation import CaseStatus
from flows.messages import Inbound
from storage import outbox as outbox_store
from storage.models import Case, OutboxMessage
from tests.fakes.slack_api import FakeSlack
from tests.support.conversations import PROFESSIONAL_TO_REVIEW

DESK = "C0DESK"
CHANNEL = "telegram"
REFERENCE = re.compile(r"HL-[A-Z0-9]{6}")
DEFAULT_POSTGRES_URL = postgres_url("slack")
DEFAULT_POLL = float(Settings.model_fields["outbox_poll_seconds"].default)
DEFAULT_BACKOFF = float(Settings.model_fields["outbox_backoff_seconds"].default)

# A professional's enquiry typed answer by answer, up to the review step (the tests' own
# script); "send" then submits it.
TO_REVIEW = PROFESSIONAL_TO_REVIEW


# -- instrumentation (measures only; the worker's behaviour is OutboxWorker's) -------------


@dataclass
class WorkerTimes:
    """Where the worker's time went (passes, attempts, sender calls, Retry-After seen)."""

    passes: int = 0
    pass_s: float = 0.0
    attempts: int = 0
    attempt_s: float = 0.0
    sends: int = 0
    send_s: float = 0.0
    retry_after: Counter[float | None] = field(default_factory=Counter)


class TimedWorker(OutboxWorker):
    """``OutboxWorker`` with stopwatches around its passes and attempts."""

    def __init__(self, times: WorkerTimes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.times = times

    async def drain_once(self) -> int:
        start = time.perf_counter()
        try:
            return await super().drain_once()
        finally:
            self.times.passes += 1
            self.times.pass_s += time.perf_counter() - start

    async def _attempt(self, row: OutboxMessage) -> Result:
        start = time.perf_counter()
        try:
            return await super()._attempt(row)
        finally:
            self.times.attempts += 1
            self.times.attempt_s += time.perf_counter() - start


def timed(sender: Sender, times: WorkerTimes) -> Sender:
    """``sender`` with its calls counted and timed into ``times``."""

    async def send(row: OutboxMessage) -> Result:
        start = time.perf_counter()
        try:
            result = await sender(row)
        finally:
            times.sends += 1
            times.send_s += time.perf_counter() - start
        if isinstance(result, Retry):
            times.retry_after[result.after] += 1
        return result

    return send


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One database's run: settings, timings and the checks that must be 0."""

    database: str
    cases: int
    rate: float
    retry_after: float | None
    poll: float
    backoff: float
    to_review_s: float = 0.0
    submit_s: float = 0.0
    first_card_s: float | None = None
    all_cards_s: float | None = None
    drained_s: float | None = None
    card_times: list[float] = field(default_factory=list)
    cards_posted: int = 0
    post_calls: int = 0
    rate_limited: int = 0
    submitted: int = 0
    lost: int = 0
    duplicated: int = 0
    extra_cards: int = 0
    stray_cards: int = 0
    no_ts: int = 0
    rows_sent: int = 0
    rows_failed: int = 0
    rows_pending: int = 0
    attempts_total: int = 0
    attempts_max: int = 0
    times: WorkerTimes = field(default_factory=WorkerTimes)


async def drive_to_review(core: Core, chats: list[str]) -> None:
    """Every chat through the real intake up to the review step (not timed)."""

    async def one(chat: str) -> None:
        handled = None
        for i, answer in enumerate(TO_REVIEW):
            handled = await core.intake.handle(
                CHANNEL, chat, Inbound.typed(answer), dedupe=("bench", f"{chat}:{i}")
            )
        if handled is None or handled.step != "review":
            raise RuntimeError(f"chat {chat} did not reach review (at {handled and handled.step})")

    await asyncio.gather(*(one(chat) for chat in chats))


async def pending_cards(core: Core) -> int:
    """Card rows not yet sent or given up."""
    async with core.sessions() as session:
        return await outbox_store.pending_count(session, [outbox_store.SLACK_CARD])


async def run_one(kind: str, args: argparse.Namespace) -> Outcome:
    """The whole run on one database (see the module docstring)."""
    n = args.cases
    out = Outcome(kind, n, args.rate, args.retry_after, args.poll, args.backoff)
    async with (
        database(kind, args.postgres_url, "helpline-slack-burst-") as url,
        FakeSlack() as slack,
    ):
        settings = Settings(
            _env_file=None,
            database_url=url,
            slack_bot_token=slack.token,
            slack_signing_secret="bench-signing-secret",
            slack_channel_id=DESK,
            slack_api_url=slack.base_url,
        )
        async with open_core(settings) as core:
            chats = [str(700_000 + i) for i in range(n)]
            start = time.perf_counter()
            await drive_to_review(core, chats)
            out.to_review_s = time.perf_counter() - start

            # The desk's senders as the service builds them, each timed.
            desk = build_slack(settings, core)
            senders = {kind: timed(send, out.times) for kind, send in desk.senders.items()}
            worker = TimedWorker(
                out.times,
                sessions=core.sessions,
                senders=senders,
                clock=core.clock,
                leases=core.leases,
                poll_interval=args.poll,
                backoff_base=args.backoff,
            )
            slack.enforce_channel_rate(args.rate, retry_after_seconds=args.retry_after)
            stop = asyncio.Event()
            worker_task = asyncio.create_task(worker.run(stop))
            # Let the worker start: its first pass races the submissions, as in a running
            # service (nothing wakes it on a submission; it finds cards on its next poll).
            await asyncio.sleep(0)

            t0 = time.perf_counter()
            submissions = asyncio.gather(
                *(
                    core.intake.handle(
                        CHANNEL, chat, Inbound.typed("send"), dedupe=("bench", f"{chat}:send")
                    )
                    for chat in chats
                )
            )
            submit_task = asyncio.ensure_future(submissions)
            timeout = max(60.0, 3 * n * max(args.rate, 1.0) + 30)
            seen = 0
            try:
                while time.perf_counter() - t0 < timeout:
                    count = len(slack.messages(DESK))
                    now = time.perf_counter() - t0
                    if count > seen:
                        out.card_times.extend([now] * (count - seen))
                        seen = count
                    if submit_task.done() and not out.submit_s:
                        out.submit_s = now
                    if count >= n and submit_task.done():
                        if await pending_cards(core) == 0:
                            out.drained_s = time.perf_counter() - t0
                            break
                        await asyncio.sleep(0.02)
                        continue
                    await asyncio.sleep(0.002)
                handled = await submit_task
                out.submitted = sum(1 for h in handled if h.case is not None)
                # Late duplicates (a row sent twice) would show up in the next passes.
                await asyncio.sleep(max(1.0, 2 * args.poll))
            finally:
                stop.set()
                await asyncio.wait_for(worker_task, timeout=30)
                if not submit_task.done():
                    submit_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await submit_task

            if out.card_times:
                out.first_card_s = out.card_times[0]
                if len(out.card_times) >= n:
                    out.all_cards_s = out.card_times[n - 1]
            await check(core, slack, out)
    return out


async def check(core: Core, slack: FakeSlack, out: Outcome) -> None:
    """Count what reached the fake against what the database holds."""
    messages = slack.messages(DESK)
    out.cards_posted = len(messages)
    posts = slack.calls_of("chat.postMessage")
    out.post_calls = len(posts)
    out.rate_limited = sum(1 for c in posts if c.status == 429)
    per_reference: Counter[str] = Counter()
    for message in messages:
        refs = set(REFERENCE.findall(message.get("text", "") + json.dumps(message.get("blocks"))))
        if not refs:
            out.stray_cards += 1
        per_reference.update(refs)
    async with core.sessions() as session:
        cases = (
            await session.execute(
                select(Case.reference, Case.slack_ts).where(Case.status == CaseStatus.NEW)
            )
        ).all()
        rows = (
            (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.kind == outbox_store.SLACK_CARD)
                )
            )
            .scalars()
            .all()
        )
    references = {r.reference for r in cases}
    out.lost = sum(1 for r in references if per_reference[r] == 0)
    out.duplicated = sum(1 for r, c in per_reference.items() if c > 1)
    out.extra_cards = sum(c - 1 for c in per_reference.values() if c > 1)
    out.stray_cards += sum(1 for r in per_reference if r not in references)
    out.no_ts = sum(1 for r in cases if not r.slack_ts)
    out.rows_sent = sum(1 for r in rows if r.sent_at is not None)
    out.rows_failed = sum(1 for r in rows if r.failed_at is not None)
    out.rows_pending = len(rows) - out.rows_sent - out.rows_failed
    out.attempts_total = sum(r.attempts for r in rows)
    out.attempts_max = max((r.attempts for r in rows), default=0)


# -- output -----------------------------------------------------------------------------------


def retry_after_setting(value: float | None) -> str:
    """The fake's Retry-After, in words."""
    if value is None:
        return "the wait left, rounded up to whole seconds (as Slack)"
    return f"always {value:g} s (--retry-after; not what Slack does)"


def _s(value: float | None) -> str:
    return "did not finish" if value is None else f"{value:.2f} s"


def report(out: Outcome) -> None:
    """One database's figures."""
    n, minimum = out.cases, (out.cases - 1) * out.rate
    t = out.times
    lines: list[tuple[str, str]] = [
        ("database", out.database),
        ("cases submitted at once", f"{out.submitted} of {n}"),
        ("fake Slack limit", f"1 chat.postMessage / {out.rate:g} s per channel, else 429"),
        ("fake's Retry-After", retry_after_setting(out.retry_after)),
        ("worker poll / backoff", f"{out.poll:g} s / {out.backoff:g} s"),
        ("(untimed) N chats to review", f"{out.to_review_s:.2f} s"),
        ("all N submissions committed", _s(out.submit_s)),
        ("first card posted", _s(out.first_card_s)),
        ("TIME UNTIL ALL CARDS POSTED", _s(out.all_cards_s)),
        ("theoretical minimum (N-1) x interval", f"{minimum:.2f} s"),
    ]
    if out.all_cards_s is not None:
        over = out.all_cards_s - minimum
        per = over / max(n - 1, 1)
        lines.append(("over the minimum", f"{over:.2f} s ({per * 1000:.0f} ms per card)"))
    gaps = [b - a for a, b in zip(out.card_times, out.card_times[1:], strict=False)]
    if gaps:
        lines.append(
            (
                "gap between cards",
                f"median {statistics.median(gaps):.3f} s, mean {statistics.fmean(gaps):.3f} s, "
                f"max {max(gaps):.3f} s",
            )
        )
    lines += [
        ("outbox rows drained (all marked sent)", _s(out.drained_s)),
        ("cards posted", str(out.cards_posted)),
        ("chat.postMessage calls", str(out.post_calls)),
        ("429s received", str(out.rate_limited)),
        (
            "Retry-After values seen",
            ", ".join(
                f"{k:g} s x{v}" if k is not None else f"none x{v}"
                for k, v in sorted(t.retry_after.items(), key=lambda kv: kv[0] or 0)
            )
            or "-",
        ),
        ("CARDS LOST (cases with no card)", str(out.lost)),
        ("CARDS DUPLICATED (refs with >1 card)", f"{out.duplicated} ({out.extra_cards} extra)"),
        ("cards with no known reference", str(out.stray_cards)),
        ("cases without slack_ts recorded", str(out.no_ts)),
        (
            "card rows sent / failed / pending",
            f"{out.rows_sent} / {out.rows_failed} / {out.rows_pending}",
        ),
        ("attempts per row", f"total {out.attempts_total}, max {out.attempts_max}"),
        ("worker passes", f"{t.passes} ({t.pass_s:.2f} s busy in passes)"),
        (
            "  leasing and releasing (per pass)",
            f"{t.pass_s - t.attempt_s:.2f} s",
        ),
        ("  sender (load case + HTTP)", f"{t.sends} calls, {t.send_s:.2f} s"),
        ("  recording results (1 txn each)", f"{t.attempt_s - t.send_s:.2f} s"),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"  {label:<{width}}  {value}")
    print()


async def bench(args: argparse.Namespace) -> None:
    """Each database asked for, one after the other."""
    logs.configure("WARNING")
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    print("helpline-intake: Slack card burst benchmark")
    print(
        f"  {args.cases} cases; fake Slack allows 1 message per {args.rate:g} s per channel; "
        f"worker poll {args.poll:g} s, backoff {args.backoff:g} s"
    )
    print(f"  Retry-After: {retry_after_setting(args.retry_after)}")
    if "postgres" in kinds:
        print(f"  PostgreSQL: {make_url(args.postgres_url).render_as_string()} (wiped)")
    print()
    for kind in kinds:
        report(await run_one(kind, args))


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.slack_burst``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.slack_burst",
        description="Time N submitted cases' Slack cards through the outbox at 1 msg/s.",
    )
    parser.add_argument("--cases", type=int, default=100, help="cases submitted at once")
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "both"), default="sqlite", help="the store"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="the fake's minimum seconds between messages per channel (Slack: 1.0)",
    )
    parser.add_argument(
        "--retry-after",
        type=float,
        default=None,
        help="fixed Retry-After in seconds, fractions allowed (default: the wait left rounded "
        "up to whole seconds, as Slack sends it)",
    )
    parser.add_argument(
        "--poll", type=float, default=DEFAULT_POLL, help="worker poll interval (settings default)"
    )
    parser.add_argument(
        "--backoff", type=float, default=DEFAULT_BACKOFF, help="worker backoff base (default)"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error("--cases must be at least 1")
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
