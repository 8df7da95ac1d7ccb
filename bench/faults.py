"""Fault injection: `helpline run` through Slack storms and outages and SIGKILLs, end to end.

Run::

    python -m bench.faults [--database sqlite|postgres|both] [--postgres-url URL]
                           [--enquirers 20] [--kills 5] [--seed 1]

Everything is real but the two platforms: the service runs as ``helpline run`` in a child
process (webhook mode, as in production, with the Slack desk on), against the fake
Telegram Bot API and the fake Slack Web API from ``tests/fakes`` in this process; the fake
Telegram posts updates to the webhook like Telegram does (several at once, resending what
was not answered 2xx). The database is fresh for each scenario: a SQLite file, or the
PostgreSQL database of ``--postgres-url`` (wiped: DROP SCHEMA public CASCADE).

Scenarios:

- ``slack-429-storm``: the first 60 ``chat.postMessage`` calls answer 429 (Retry-After
  0.05 s, so the run is short; the count is what matters: the old worker gave a card up
  after 50 attempts, rate limits included) while enquiries are submitted.
- ``slack-outage``: Slack answers 503 to everything for a while, with enquiries arriving
  meanwhile; then it comes back.
- ``kill-during-card-post``: SIGKILL while ``chat.postMessage`` is in flight (Slack has
  posted the card; the service never hears back), restart, and a new case right after.
- ``kill-after-turn-saved``: ``sendMessage`` answers 429 retry_after 30, a button is
  pressed, SIGKILL while the service waits, restart.
- ``chaos``: ``--enquirers`` whole conversations (18 turns each) at once, with the service
  SIGKILLed ``--kills`` times at random moments and restarted each time.

For each it prints what was lost and what was duplicated: cases (each enquiry that got a
reference must be exactly one case), Slack cards (one per case), and replies to enquirers
(each conversation must receive exactly the messages a run without faults receives; a
missing one is lost, an extra one duplicated). Telegram offers no way to ask whether a
message arrived, so a SIGKILL in the instant between Telegram accepting a reply and the
service recording it can repeat that one reply: the figures would show it. Nothing is
asserted; the last line is the total.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.common import postgres_url, prepare_postgres
from bench.enquiry import Turn, confirmation_mark, ticked_mark
from bench.enquiry import script as enquiry
from flows.conversation import CaseStatus
from storage import db
from storage.models import Case
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.keys import DATA_KEY
from tests.support.telegram import free_port

ROOT = Path(__file__).resolve().parents[1]
DESK = "C0DESK"
SECRET = "faults-webhook-secret"
SIGNING_SECRET = "bench"  # Slack's, for requests the benchmark signs as Slack
REFERENCE = re.compile(r"HL-[A-Z0-9]{6}")
DEFAULT_POSTGRES_URL = postgres_url("faults")
PATIENCE = 60.0  # how long a step may wait for its reply (a restart included)


# -- the service as a child process -----------------------------------------------------------


class Service:
    """`helpline run` in a child process, killed and restarted at will."""

    def __init__(
        self,
        tg: FakeTelegram,
        slack: FakeSlack,
        database_url: str,
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("TELEGRAM_", "HELPLINE_", "SLACK_"))
            },
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "TELEGRAM_WEBHOOK_URL": "https://helpline.example.org/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_CHAT_RATE": "1000",
            "TELEGRAM_CHAT_BURST": "1000",
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_CHANNEL_ID": DESK,
            "SLACK_API_URL": slack.base_url,
            "HELPLINE_DATABASE_URL": database_url,
            "HELPLINE_DATA_KEY": DATA_KEY,  # PostgreSQL needs one; one for every process
            "HELPLINE_HTTP_PORT": str(self.port),
            "HELPLINE_LEASE_SECONDS": "2",
            "HELPLINE_OUTBOX_POLL_SECONDS": "0.1",
            "HELPLINE_OUTBOX_BACKOFF_SECONDS": "0.1",
            "HELPLINE_OUTBOX_BACKOFF_CAP_SECONDS": "1",
            "HELPLINE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.tg = tg
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/chat/socket"

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self) -> None:
        before = len(self.tg.calls_of("setWebhook"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "run"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1
        await self.tg.wait_for(lambda t: len(t.calls_of("setWebhook")) > before, timeout=60)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.kills += 1

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.kill()


# -- an enquirer -------------------------------------------------------------------------------


PREFIX = 40  # messages are compared by their opening words (references and times differ)
Script = list[tuple[Turn, Counter[str]]]
"""Each turn of the enquiry (``bench.enquiry``) and the messages (by opening words) it is
answered with."""


def said(tg: FakeTelegram, chat: int) -> Counter[str]:
    """What the bot has said in the chat, by opening words."""
    return Counter(t[:PREFIX] for t in tg.sent_texts(chat))


def act(tg: FakeTelegram, chat: int, turn: Turn) -> bool:
    """Type, command, or press the newest button with the turn's label (a repeated older
    message must not be pressed by mistake); False if there is no such button."""
    if turn.action == "say":
        if turn.text.startswith("/"):
            tg.push_command(chat, turn.text)
        else:
            tg.push_message(chat, turn.text)
        return True
    for message in tg.bot_messages(chat):
        markup = message.get("reply_markup") or {}
        found = [b for row in markup.get("inline_keyboard", []) for b in row]
        for button in [b for b in found if b["text"] == turn.text]:
            tg.push_callback(chat, button["callback_data"], message_id=message["message_id"])
            return True
    return False


async def answered(
    tg: FakeTelegram, chat: int, before: Counter[str], wanted: Counter[str], tick: bool
) -> bool:
    """Whether the bot answered as a fault-free run does (or, for a tick, showed it)."""

    def done(t: FakeTelegram) -> bool:
        if tick:
            return ticked_mark() in str(t.bot_messages(chat)[:1])
        now = said(t, chat)
        return all(now[p] >= before[p] + n for p, n in wanted.items())

    try:
        await tg.wait_for(done, timeout=PATIENCE)
    except AssertionError:
        return False
    return True


async def enquire(
    tg: FakeTelegram, chat: int, script: Script | None = None
) -> tuple[str | None, int, Script]:
    """A whole enquiry: its reference (None if it never came), how many actions were
    never answered as the script says, and (without a script) the script it made."""
    unanswered = 0
    made: Script = []
    for index, turn in enumerate(enquiry()):
        tick = turn.action == "tick"
        before = said(tg, chat)
        if not act(tg, chat, turn):
            unanswered += 1
            continue
        if script is None:  # a fault-free run: whatever comes is the answer
            if not tick:

                def moved(t: FakeTelegram, was: Counter[str] = before) -> bool:
                    return said(t, chat) != was

                await tg.wait_for(moved, timeout=PATIENCE)
            await asyncio.sleep(0.3)
            made.append((turn, said(tg, chat) - before))
            continue
        if not await answered(tg, chat, before, script[index][1], tick):
            unanswered += 1
    texts = tg.sent_texts(chat)
    found = next((REFERENCE.search(t) for t in texts if confirmation_mark() in t), None)
    return (found.group() if found else None), unanswered, made


# -- counting --------------------------------------------------------------------------------


@dataclass
class Tally:
    scenario: str
    database: str
    cases: int = 0
    cases_lost: int = 0
    cases_duplicated: int = 0
    cards_lost: int = 0
    cards_duplicated: int = 0
    replies_lost: int = 0
    replies_duplicated: int = 0
    restarts: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


async def count_cases(database_url: str, channel: str | None = None) -> Counter[str]:
    """Cases stored, by reference (those of one ``channel``, or all)."""
    engine = db.create_engine(database_url, data_key=DATA_KEY)
    query = select(Case.reference, func.count()).where(Case.status != CaseStatus.SIGNPOSTED)
    if channel is not None:
        query = query.where(Case.channel == channel)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(query.group_by(Case.reference))
            return Counter({ref: int(n) for ref, n in rows})
    finally:
        await engine.dispose()


def cards(slack: FakeSlack) -> Counter[str]:
    """Cards posted, by the reference in their header (a card names linked cases too)."""
    found: Counter[str] = Counter()
    for message in slack.messages(DESK):
        blocks = message.get("blocks") or [{}]
        header = json.dumps(blocks[0])
        found.update(set(REFERENCE.findall(header)))
    return found


async def tally_cases_and_cards(
    tally: Tally,
    database_url: str,
    slack: FakeSlack,
    references: list[str | None],
    channel: str | None = None,
) -> None:
    """Every reference an enquirer got is one case with one card; nothing else exists (on
    ``channel``, when the enquirers of several channels share the database)."""
    stored = await count_cases(database_url, channel)
    given = [r for r in references if r]
    tally.cases = len(stored)
    tally.cases_lost = sum(1 for r in given if stored[r] == 0) + references.count(None)
    tally.cases_duplicated = sum(n - 1 for n in stored.values() if n > 1)
    tally.cases_duplicated += sum(1 for r in stored if r not in given)  # a case nobody was told
    posted = cards(slack)
    if channel is not None:  # the other channels' cards are theirs to count
        posted = Counter({r: n for r, n in posted.items() if r in stored})
    tally.cards_lost = sum(1 for r in stored if posted[r] == 0)
    tally.cards_duplicated = sum(n - 1 for n in posted.values() if n > 1)


async def wait_for_cards(slack: FakeSlack, references: list[str | None], timeout: float) -> None:
    wanted = {r for r in references if r}
    with contextlib.suppress(AssertionError):
        await slack.wait_for(lambda s: wanted <= set(cards(s)), timeout=timeout)
    await asyncio.sleep(1.5)  # a late duplicate would show up meanwhile


# -- scenarios -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh(kind: str, postgres_url: str) -> AsyncIterator[str]:
    if kind == "postgres":
        await prepare_postgres(postgres_url)
        yield postgres_url
        return
    with tempfile.TemporaryDirectory(prefix="helpline-faults-") as tmp:
        yield f"sqlite+aiosqlite:///{tmp}/faults.db"


Scenario = Callable[
    [FakeTelegram, FakeSlack, Service, str, Tally, argparse.Namespace], Awaitable[None]
]


async def slack_storm(
    tg: FakeTelegram, slack: FakeSlack, svc: Service, url: str, t: Tally, args: argparse.Namespace
) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=0.05, times=60)
    outcomes = await asyncio.gather(*(enquire(tg, 100 + n, args.script) for n in range(3)))
    references = [r for r, _, _ in outcomes]
    await wait_for_cards(slack, references, 60)
    rate_limited = sum(c.status == 429 for c in slack.calls_of("chat.postMessage"))
    t.notes.append(f"{rate_limited} x 429 answered")
    await tally_cases_and_cards(t, url, slack, references)


async def slack_outage(
    tg: FakeTelegram, slack: FakeSlack, svc: Service, url: str, t: Tally, args: argparse.Namespace
) -> None:
    slack.go_down()
    outcomes = await asyncio.gather(*(enquire(tg, 200 + n, args.script) for n in range(3)))
    references = [r for r, _, _ in outcomes]
    await asyncio.sleep(3)
    t.notes.append(f"{len(slack.refused)} calls refused while down")
    slack.come_back()
    await wait_for_cards(slack, references, 60)
    await tally_cases_and_cards(t, url, slack, references)


async def kill_during_card_post(
    tg: FakeTelegram, slack: FakeSlack, svc: Service, url: str, t: Tally, args: argparse.Namespace
) -> None:
    slack.hold("chat.postMessage")
    first, _, _ = await enquire(tg, 300, args.script)
    await slack.wait_for(lambda s: s.messages(DESK), timeout=60)
    svc.kill()
    slack.release("chat.postMessage")
    await svc.start()
    started = time.monotonic()
    second, _, _ = await enquire(tg, 301, args.script)
    await wait_for_cards(slack, [first, second], 60)
    t.notes.append(f"the next case's card came {time.monotonic() - started:.1f} s after restart")
    await tally_cases_and_cards(t, url, slack, [first, second])


async def kill_after_turn_saved(
    tg: FakeTelegram, slack: FakeSlack, svc: Service, url: str, t: Tally, args: argparse.Namespace
) -> None:
    chat = 400
    script: Script = args.script
    act(tg, chat, script[0][0])
    await answered(tg, chat, Counter(), script[0][1], False)
    tg.fail_next("sendMessage", status=429, retry_after=30)
    before = said(tg, chat)
    act(tg, chat, script[1][0])
    await tg.wait_for(lambda x: any(c.status == 429 for c in x.calls_of("sendMessage")), timeout=60)
    svc.kill()
    await svc.start()
    if not await answered(tg, chat, before, script[1][1], False):
        t.replies_lost += 1
    await asyncio.sleep(2)  # a second copy would arrive meanwhile
    expected = sum(n for _, wanted in script[:2] for n in wanted.values())
    t.replies_duplicated += max(0, len(tg.sent_texts(chat)) - expected)


async def chaos(
    tg: FakeTelegram, slack: FakeSlack, svc: Service, url: str, t: Tally, args: argparse.Namespace
) -> None:
    rng = random.Random(args.seed)
    chats = [500 + n for n in range(args.enquirers)]
    running = asyncio.gather(*(enquire(tg, chat, args.script) for chat in chats))
    for _ in range(args.kills):
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        if running.done():
            break
        svc.kill()
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        await svc.start()
    outcomes = await running
    references = [r for r, _, _ in outcomes]
    await wait_for_cards(slack, references, 60)
    await asyncio.sleep(2)  # replies the outbox still owed would arrive meanwhile
    for chat, (_, unanswered, _) in zip(chats, outcomes, strict=True):
        got = len(tg.sent_texts(chat))
        t.replies_lost += max(unanswered, args.per_chat - got)
        t.replies_duplicated += max(0, got - args.per_chat)
    t.notes.append(f"{svc.kills} SIGKILLs, {args.enquirers} conversations at once")
    await tally_cases_and_cards(t, url, slack, references)


SCENARIOS: list[tuple[str, Scenario]] = [
    ("slack-429-storm", slack_storm),
    ("slack-outage", slack_outage),
    ("kill-during-card-post", kill_during_card_post),
    ("kill-after-turn-saved", kill_after_turn_saved),
    ("chaos", chaos),
]


@contextlib.asynccontextmanager
async def one_service(
    kind: str, postgres_url: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[FakeTelegram, FakeSlack, Service, str]]:
    """A fresh database and the fakes, with one service taking Telegram's webhook."""
    async with fresh(kind, postgres_url) as url, FakeTelegram() as tg, FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as cwd:
            svc = Service(tg, slack, url, Path(cwd), env)
            await svc.start()
            tg.push_to_webhook(svc.webhook_url)
            try:
                yield tg, slack, svc, url
            finally:
                await svc.stop()


async def fault_free(kind: str, postgres_url: str) -> Script:
    """One enquiry with nothing going wrong: what each action is answered with."""
    async with one_service(kind, postgres_url) as (tg, _, _, _):
        _, _, script = await enquire(tg, 999)
        return script


async def run_scenario(name: str, scenario: Scenario, kind: str, args: argparse.Namespace) -> Tally:
    tally = Tally(name, kind)
    started = time.monotonic()
    async with one_service(kind, args.postgres_url) as (tg, slack, svc, url):
        await scenario(tg, slack, svc, url, tally, args)
    tally.restarts = svc.starts - 1
    tally.seconds = time.monotonic() - started
    return tally


def report(tallies: list[Tally]) -> None:
    header = (
        f"  {'scenario':<22} {'db':<8} {'cases':>5}  {'lost: cases cards replies':<26}"
        f" {'duplicated: cases cards replies':<32} {'restarts':>8} {'time':>7}"
    )
    print(header)
    for t in tallies:
        lost = f"{t.cases_lost:>5} {t.cards_lost:>5} {t.replies_lost:>7}"
        dup = f"{t.cases_duplicated:>5} {t.cards_duplicated:>5} {t.replies_duplicated:>7}"
        print(
            f"  {t.scenario:<22} {t.database:<8} {t.cases:>5}  {lost:<26}     {dup:<27}"
            f" {t.restarts:>8} {t.seconds:>6.1f}s  {'; '.join(t.notes)}"
        )
    cases_lost = sum(t.cases_lost + t.cards_lost for t in tallies)
    duplicated = sum(t.cases_duplicated + t.cards_duplicated for t in tallies)
    replies_lost = sum(t.replies_lost for t in tallies)
    repeated = sum(t.replies_duplicated for t in tallies)
    print(f"\n  CASES AND CARDS: lost {cases_lost} / duplicated {duplicated}")
    print(f"  REPLIES TO ENQUIRERS: lost {replies_lost} / repeated {repeated}")
    if repeated:
        print(
            "  (a reply repeats only when the SIGKILL lands between Telegram taking it and the\n"
            "   service recording that it went: Telegram cannot be asked whether a message\n"
            "   arrived, so it is sent again rather than risk it never arriving)"
        )


async def bench(args: argparse.Namespace) -> None:
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    print("helpline-intake: fault injection (helpline run as a child process, webhook mode)")
    if "postgres" in kinds:
        print(f"  PostgreSQL: {make_url(args.postgres_url).render_as_string()} (wiped)")
    print()
    tallies = []
    for kind in kinds:
        args.script = await fault_free(kind, args.postgres_url)
        args.per_chat = sum(n for _, wanted in args.script for n in wanted.values())
        print(f"  [{kind}] a fault-free enquiry receives {args.per_chat} messages")
        for name, scenario in SCENARIOS:
            if args.only and name not in args.only:
                continue
            tallies.append(await run_scenario(name, scenario, kind, args))
    print()
    report(tallies)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    parser.add_argument("--enquirers", type=int, default=20, help="conversations in 'chaos'")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs in 'chaos'")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=[n for n, _ in SCENARIOS])
    asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
