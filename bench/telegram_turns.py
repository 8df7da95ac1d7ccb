"""Benchmark: whole Telegram conversations through the real service, against a fake Bot API.

Run::

    python -m bench.telegram_turns [--enquirers N] [--database sqlite|postgres|both]
                                   [--baseline/--no-baseline] [--solo N] [--profile DIR]
                                   [--replicas N]

What it does, per scenario (ours on SQLite, ours on PostgreSQL, ours on PostgreSQL as N
webhook replicas, a plain-PTB baseline on PTB's default httpx transport, and the same
baseline on our aiohttp transport):

1. Starts the fake Bot API server (``tests/fakes/telegram_api.FakeTelegram``, aiohttp on
   loopback) and the simulated enquirers in *this* process.
2. Starts the service in a *child* process: the real PTB ``Application`` from
   ``bot.telegram.build_application(..., polling=True, rate_limited=False)`` wired by hand
   from ``open_core`` + ``TelegramChannel`` exactly as ``bot/run.py serve`` does
   (initialize, ``start_polling(poll_interval=0, timeout=10)``, start). We do not call
   ``serve`` itself because it always turns the rate limiter on and starts the HTTP server.
   The database is fresh: a SQLite file in a temporary directory, or the PostgreSQL
   database (``bench_telegram`` unless ``--postgres-url``; created if missing) wiped
   (``DROP SCHEMA public CASCADE; CREATE SCHEMA public``) and brought up to date by
   ``storage.db.upgrade`` (inside ``open_core``).
3. Three warm-up conversations, then ``--solo`` conversations one at a time (the latency of
   one update with nothing else competing for the event loop; run first, because the load
   phases leave PTB's HTTP pool full of connections that every later request scans), then
   N enquirers at once, each completing the same 18 turns as the test harness's
   ``complete_enquiry`` (/start, buttons, a multiple-choice tick + Done, typed answers,
   "Send my enquiry"). Each waits for the bot's reply before its next turn, like a person;
   all N run concurrently. Then another N (new chats), to see whether memory grows with
   finished conversations. Buttons are matched by exact label first, so "No" presses "No"
   (the harness's substring match presses "Yes, someone is in danger now").

Why the service runs in its own process (the brief allowed either way round): the CPU
time, ``ru_maxrss`` and RSS figures are then the service's alone, not mixed with the fake
server (which keeps every message it ever saw) or the drivers; and each scenario gets a
fresh process, so ``ru_maxrss`` (a per-process high-water mark) is not inherited from the
previous scenario. The parent (fake + drivers) and the child (service) talk over the
child's stdin/stdout in JSON lines; the child's stderr is its (WARNING-level) log.

Latency is measured inside the service: a subclass of ``PerChatUpdateProcessor`` times
``process_update`` for each update, i.e. from the moment PTB hands the fetched update to
the processor until its handler returned, which includes waiting for the chat's lock and
every Bot API call the handler makes (answerCallbackQuery, editMessageReplyMarkup,
sendMessage) over HTTP to the fake. ``build_application`` builds its processor itself, so
the benchmark swaps the class name in ``bot.telegram.handlers`` while it builds the Application
(no change to ``bot/``). The part spent in ``IntakeService.handle`` (the database
transaction and the flow step) is timed separately by wrapping that method on the
service's instance. Under load both are mostly queueing: with N updates in flight on one
event loop, Little's law puts latency near N / throughput. "CPU per update" is the
service process's CPU time in the load phases (all threads, incl. aiosqlite's) divided by
the updates.

The PTB rate limiter (``AIORateLimiter``, 30 messages/s) is OFF: the fake is local and has
no limits, and with it on, throughput would measure the limiter. The baseline is a plain
PTB bot: a ``ConversationHandler`` with in-memory state (no database), the same questions
and buttons, the same update processor, the same fake and the same drivers.
``baseline-aiohttp`` is that bot on our transport (``bot/telegram_http.py``): what PTB and
HTTP cost with no database, flow or transcript, i.e. the floor under our figures.

Replicas (``--replicas``, default 2, PostgreSQL only): N service processes, each with our
HTTP server and webhook route and no polling. The fake POSTs each update at once to the
next replica in turn, as Telegram would through a round-robin load balancer, so one chat's
turns land on different processes and only the database's per-chat row lock keeps them in
order. Their CPU, memory and samples are added up. "machine CPU use" (from
/proc/stat) shows when the machine, not the service, is the limit: PostgreSQL, the fake and
the drivers share the same cores.

Nothing is asserted: it prints figures and the issue's targets beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import gc
import io
import itertools
import json
import os
import platform
import pstats
import resource
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file, not only as -m from the checkout
    sys.path.insert(0, str(ROOT))

TOKEN = "123:ABC"
# Its own database (created if missing, wiped every run), so that running it beside the
# other benchmarks (bench.slack_burst uses "bench") does not wipe theirs.
DEFAULT_POSTGRES_URL = os.environ.get(
    "HELPLINE_BENCH_TELEGRAM_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_telegram",
)
WEBHOOK_PATH = "/telegram/webhook"
WEBHOOK_SECRET = "bench-secret"
TURN_TIMEOUT = 60.0  # seconds an enquirer waits for a reply before giving up on the chat
POLL_TIMEOUT = 10  # getUpdates long-poll timeout the service uses

# The same turns as tests/bot/telegram_harness.complete_enquiry. "tick" edits the question's
# buttons in place; everything else is answered with a new question (a message with buttons).
SCRIPT: tuple[tuple[str, str], ...] = (
    ("say", "/start"),
    ("tap", "School or college staff"),
    ("tap", "Teacher"),
    ("tap", "Secondary"),
    ("say", "south east"),
    ("tap", "social network"),
    ("tap", "TikTok"),
    ("tick", "Online Reputation"),
    ("tap", "Done"),
    ("say", "Fake account using our logo"),
    ("say", "Someone set up an account pretending to be the school."),
    ("tap", "Done"),
    ("say", "https://www.tiktok.com/@not_our_school"),
    ("tap", "not yet"),
    ("tap", "No"),
    ("tap", "this chat"),
    ("say", "skip"),
    ("tap", "Send my enquiry"),
)
DONE_MARK = "reference"  # the last reply of a finished enquiry says "Your reference is HL-…"

TARGET_UPDATES_PER_S = 500.0
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
# RSS after the second N finished conversations may exceed RSS after the first N by this
# much before we call it growth (allocator noise; a leak of 10 kB per chat is 2 MB at 200).
MEMORY_SLACK_KB = 2048


# =========================================================================================
# The service side (child process)
# =========================================================================================


def _timed_processor_class() -> type:
    from bot.telegram.handlers import PerChatUpdateProcessor

    class TimedUpdateProcessor(PerChatUpdateProcessor):
        """Our per-chat processor, timing each update from hand-over to handler done."""

        def __init__(self, max_concurrent_updates: int = 256) -> None:
            super().__init__(max_concurrent_updates)
            self.samples: list[float] = []

        async def process_update(self, update: object, coroutine: Any) -> None:
            start = time.perf_counter()
            try:
                await super().process_update(update, coroutine)
            finally:
                self.samples.append(time.perf_counter() - start)

    return TimedUpdateProcessor


@contextlib.contextmanager
def _processor_swapped(cls: type) -> Iterator[None]:
    """Let ``build_application`` construct our timed processor instead of its own."""
    import bot.telegram.handlers

    original = bot.telegram.PerChatUpdateProcessor
    bot.telegram.PerChatUpdateProcessor = cls  # type: ignore[misc]
    try:
        yield
    finally:
        bot.telegram.PerChatUpdateProcessor = original  # type: ignore[misc]


class _Reporter:
    """Answers the parent's "mark" commands with what happened since the last mark."""

    def __init__(self, app: Any, intake_samples: list[float] | None) -> None:
        self.app = app
        self.processor = app.update_processor
        self.intake_samples = intake_samples
        self.cpu = time.process_time()
        self.profiler: cProfile.Profile | None = None

    async def idle(self) -> None:
        """Wait (briefly) until no update is queued or being processed."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            self.processor.current_concurrent_updates or not self.app.update_queue.empty()
        ):
            await asyncio.sleep(0.002)

    async def mark(self, command: dict[str, Any]) -> dict[str, Any]:
        await self.idle()
        cpu = time.process_time()
        samples, self.processor.samples = list(self.processor.samples), []
        intake = list(self.intake_samples or ())
        if self.intake_samples is not None:
            self.intake_samples.clear()
        profile = command.get("profile")
        if profile == "start" and self.profiler is None:
            self.profiler = cProfile.Profile()
            self.profiler.enable()
        elif profile and profile != "start" and self.profiler is not None:
            self.profiler.disable()
            self.profiler.dump_stats(profile)
            self.profiler = None
        gc.collect()
        _malloc_trim()
        figures = {
            "updates": len(samples),
            "latency_ms": [round(s * 1000, 3) for s in samples],
            "intake_ms": [round(s * 1000, 3) for s in intake]
            if self.intake_samples is not None
            else None,
            "cpu_s": cpu - self.cpu,
            "rss_kb": _current_rss_kb(),
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "objects": len(gc.get_objects()),
            "blocks": sys.getallocatedblocks(),
            "chat_data": len(self.app.chat_data),
        }
        self.cpu = time.process_time()
        return figures


def _malloc_trim() -> None:
    """Give freed heap back to the OS (glibc), so RSS reflects what is still in use."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _timed(obj: Any, name: str, samples: list[float]) -> None:
    """Time every call of the coroutine method ``obj.name`` (on this instance only)."""
    original = getattr(obj, name)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            samples.append(time.perf_counter() - start)

    setattr(obj, name, timed)


def _current_rss_kb() -> int:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


_PROTOCOL: Any = None  # the child's channel to the parent: the original stdout


def _protect_stdout() -> None:
    """Keep stdout for the protocol; anything else printed goes to stderr."""
    global _PROTOCOL
    _PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _say(message: dict[str, Any]) -> None:
    _PROTOCOL.write(json.dumps(message) + "\n")
    _PROTOCOL.flush()


async def _command_loop(app: Any, intake_samples: list[float] | None = None) -> None:
    """Start polling, then read JSON commands from stdin until "stop" or end of input."""
    from telegram import Update

    if app.updater is not None:  # polling; a webhook replica has no updater
        await app.updater.start_polling(
            poll_interval=0, timeout=POLL_TIMEOUT, allowed_updates=Update.ALL_TYPES
        )
    await app.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    reporter = _Reporter(app, intake_samples)
    _say({"event": "ready", "pid": os.getpid()})
    try:
        while line := await reader.readline():
            command = json.loads(line)
            if command["cmd"] == "mark":
                _say(await reporter.mark(command))
            elif command["cmd"] == "stop":
                break
    finally:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        await app.stop()
        await app.shutdown()
    _say({"event": "stopped"})


async def serve_child(
    kind: str,
    database_url: str,
    base_url: str,
    webhook_port: int | None = None,
    *,
    wipe: bool = True,
) -> None:
    """The service process: ours (``kind == "ours"``) or the plain-PTB baseline.

    With ``webhook_port``, ours is one webhook replica: no polling; our HTTP server takes
    updates on ``/telegram/webhook`` (the same route and secret check as ``helpline run``).
    """
    from telegram.warnings import PTBUserWarning

    from bot import logs

    logs.configure("WARNING")
    warnings.filterwarnings("ignore", category=PTBUserWarning)
    processor = _timed_processor_class()
    if kind in ("baseline", "baseline-aiohttp"):
        app = build_baseline(TOKEN, base_url, processor(256), aiohttp=kind == "baseline-aiohttp")
        await app.initialize()
        await _command_loop(app)
        return

    from bench.common import prepare_postgres
    from bot.app import background, enquirer_senders, outbox_worker
    from bot.core import open_core
    from bot.settings import Settings
    from bot.telegram.handlers import TelegramChannel, build_application

    if database_url.startswith("postgres") and wipe:  # later replicas share the first's
        await prepare_postgres(database_url)
    settings = Settings(
        database_url=database_url,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=base_url,
        telegram_webhook_url=None,
        telegram_webhook_secret=None,
    )
    async with open_core(settings) as core:
        channel = TelegramChannel(
            intake=core.intake,
            copy=core.flow.copy,
            retention_days=settings.retention_days,
            send_patience=settings.telegram_send_patience,
            ledger=core.replies,  # replies durable with their turn, as in `helpline run`
            inbox=webhook_port is not None,
        )
        intake_samples: list[float] = []
        _timed(core.intake, "handle", intake_samples)  # the DB transaction + the flow step
        with _processor_swapped(processor):
            app = build_application(
                token=TOKEN,
                base_url=base_url,
                channel=channel,
                polling=webhook_port is None,
                rate_limited=False,
            )
        await app.initialize()
        await channel.set_commands(app)
        worker = outbox_worker(settings, core, enquirer_senders(core, app.bot, channel))
        async with (
            background(core.leases.run),
            background(core.replies.run),
            background(worker.run),
            _webhook_server(app, webhook_port, core),
        ):
            await _command_loop(app, intake_samples)


@contextlib.asynccontextmanager
async def _webhook_server(app: Any, port: int | None, core: Any) -> Any:
    """Our HTTP server with the webhook route on ``port`` (nothing when ``port`` is None):
    updates stored in the inbox before they are answered, as in ``helpline run``."""
    if port is None:
        yield
        return
    from bot.http.server import TelegramWebhook, build_http_app, http_server

    webhook = TelegramWebhook(
        app, WEBHOOK_SECRET, sessions=core.sessions, clock=core.clock, leases=core.leases
    )
    webhook.start()
    server = http_server(build_http_app([webhook.route(WEBHOOK_PATH)]), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        await webhook.close()
        server.should_exit = True
        await task


# -----------------------------------------------------------------------------------------
# The baseline: a plain PTB bot, ConversationHandler, state in memory, no database
# -----------------------------------------------------------------------------------------

BACK = "← Back"


@dataclass(frozen=True)
class _Question:
    name: str
    text: str
    options: tuple[str, ...] = ()
    kind: str = "choose"  # choose | multi | text | description


GREETING = (
    "Hello. This is the helpline's intake. We help professionals who work with children "
    "and young people with online safety issues: harmful content, fake accounts, "
    "cyberbullying, sexting and more. We are not an emergency service: if anyone is in "
    "immediate danger, call 999. Answer a few short questions and we will record your "
    "enquiry for one of our practitioners, who will reply within two working days. Use "
    "the buttons or type your answer; /back, /restart and /cancel work at any time, and "
    "/privacy explains what we keep and for how long. Please do not send images."
)


def _question(name: str, text: str, options: str = "", kind: str = "choose") -> _Question:
    return _Question(name, text, tuple(options.split("|")) if options else (), kind)


# The same questions, option labels and order as our flow's (as of writing), so messages
# and keyboards are about the same size on the wire.
QUESTIONS: tuple[_Question, ...] = (
    _question(
        "role_group",
        "First, who are you contacting us as?",
        "School or college staff|Social care, health or local authority|Police|"
        "Charity or voluntary organisation|Parent or carer|I'm under 18|Member of the public|"
        "Someone else",
    ),
    _question(
        "role",
        "Which of these fits best?",
        "Teacher|Designated safeguarding lead (DSL or deputy DSL)|Headteacher or principal|"
        "Deputy or assistant headteacher|Other school staff (office, pastoral, support)|"
        "IT or network support for a school|Multi-academy trust (MAT) staff",
    ),
    _question(
        "setting",
        "What kind of setting is this about?",
        "Secondary school|Primary school|Further education or college|"
        "Early years (nursery, pre-school)|Not a school setting",
    ),
    _question(
        "region",
        "Where are you based?",
        "North East|North West|Yorkshire and the Humber|East Midlands|West Midlands|"
        "East of England|London|South East|South West|Wales|Scotland|Northern Ireland|"
        "Outside the UK",
    ),
    _question(
        "platform_type",
        "Where is the content or behaviour you're worried about?",
        "A social network or video app (TikTok, Instagram…)|A website|"
        "Another app (messaging, homework…)|An online game|Email|On a phone or tablet|"
        "An online community or forum|A chatroom|"
        "Shared phone to phone (AirDrop, Bluetooth, file sharing)|Not sure",
    ),
    _question(
        "platform",
        "Which platform or app is it on?",
        "TikTok|Instagram|Snapchat|Facebook|X (Twitter)|YouTube|WhatsApp|Discord|Roblox|"
        "Reddit|Twitch|Telegram|Another platform",
    ),
    _question(
        "categories",
        "What is it about? Choose all that apply.",
        "Online Reputation|Cyberbullying|Potentially Harmful Content|General Enquiry|Sexting|"
        "Sexual Harassment|Technical Settings|Sextortion|Child Sexual Exploitation|Grooming|"
        "Hate Speech|Excessive Use|Media Literacy/Education|e-Crime|Gaming|Data Privacy|"
        "Policy Enquiry|Love/Relationships/Sexuality|Media Enquiry|Other",
        "multi",
    ),
    _question(
        "subject",
        "Give it a short title, like an email subject (for example: Fake account using our "
        "school logo).",
        kind="text",
    ),
    _question(
        "description",
        "Now tell us what has happened, in your own words: who is affected, what was posted "
        "or said, and when. You can send several messages; choose Done when you've finished.",
        "Done",
        "description",
    ),
    _question(
        "links",
        "Send any links (web addresses) to the content or accounts, all in one message, or "
        "choose No links.",
        "No links",
        "text",
    ),
    _question(
        "already_reported",
        "Have you already reported it to the platform?",
        "Yes, I've reported it|No, not yet|Not sure",
    ),
    _question(
        "danger",
        "Is a child or anyone else in immediate danger right now?",
        "Yes, someone is in danger now|No",
    ),
    _question(
        "reply_via", "How should we reply to you?", "Reply here in this chat|By email|By phone"
    ),
    _question(
        "name",
        "Your name and organisation (optional: it helps us, but you can skip it).",
        "Skip",
        "text",
    ),
    _question(
        "review",
        "Here is your enquiry. Please check it before you send it.",
        "Send my enquiry|Change an answer|Cancel and delete",
    ),
)
GOT_IT = "Got it. Send more if you like, or choose Done when you've finished describing it."


def build_baseline(token: str, base_url: str, processor: Any, *, aiohttp: bool = False) -> Any:
    """A plain PTB bot asking the same questions: ConversationHandler, state in memory.

    With ``aiohttp``, it talks HTTP through our transport (``bot.telegram.transport``) instead
    of PTB's default httpx one: the same bot, so the difference between it and ours is
    what the database, the flow and the transcript cost, and what is left of it is PTB's.
    """
    import secrets

    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import (
        ApplicationBuilder,
        CallbackQueryHandler,
        CommandHandler,
        ContextTypes,
        ConversationHandler,
        MessageHandler,
        filters,
    )

    Context = ContextTypes.DEFAULT_TYPE

    def markup(index: int, ticked: set[int] | None = None) -> InlineKeyboardMarkup:
        question = QUESTIONS[index]
        rows = []
        for n, label in enumerate(question.options):
            if question.kind == "multi":
                tick = "✅ " if n in (ticked or set()) else "▫️ "
                rows.append([InlineKeyboardButton(tick + label, callback_data=f"t:{n}")])
            else:
                rows.append([InlineKeyboardButton(label, callback_data=f"c:{n}")])
        if question.kind == "multi":
            rows.append([InlineKeyboardButton("Done ✓", callback_data="done")])
        if index:
            rows.append([InlineKeyboardButton(BACK, callback_data="back")])
        return InlineKeyboardMarkup(rows)

    async def ask(update: Update, context: Context, index: int) -> int:
        question = QUESTIONS[index]
        text = question.text
        if question.name == "review":
            answers = context.chat_data or {}
            summary = "\n".join(f"{k}: {v}" for k, v in answers.items() if k != "ticked")
            text = f"{text}\n\n{summary}"
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup(index))
        return index

    async def start(update: Update, context: Context) -> int:
        assert update.effective_chat is not None and context.chat_data is not None
        context.chat_data.clear()
        await context.bot.send_message(update.effective_chat.id, GREETING)
        return await ask(update, context, 0)

    async def finish(update: Update, context: Context) -> int:
        chat = update.effective_chat
        assert chat is not None
        reference = "HL-" + secrets.token_hex(3).upper()
        text = (
            f"Thank you. Your enquiry has been sent. Your reference is {reference}. A "
            "practitioner will reply in this chat within two working days. If anything "
            "changes, or anyone is in danger, call 999. Use /status to see where it stands."
        )
        new = InlineKeyboardMarkup([[InlineKeyboardButton("Start a new enquiry", "c:new")]])
        await context.bot.send_message(chat.id, text, reply_markup=new)
        context.application.drop_chat_data(chat.id)  # finished: keep nothing in memory
        return ConversationHandler.END

    def on_button(index: int) -> Any:
        question = QUESTIONS[index]

        async def handler(update: Update, context: Context) -> int:
            query = update.callback_query
            assert query is not None and context.chat_data is not None
            await query.answer()
            data = query.data or ""
            if data.startswith("t:") and question.kind == "multi":
                ticked: set[int] = context.chat_data.setdefault("ticked", set())
                ticked ^= {int(data[2:])}
                await query.edit_message_reply_markup(markup(index, ticked))
                return index
            await query.edit_message_reply_markup(None)
            if data == "back":
                return await ask(update, context, max(index - 1, 0))
            if data.startswith("c:") and question.kind != "description":
                context.chat_data[question.name] = question.options[int(data[2:])]
            elif data == "done" and question.kind == "multi":
                ticked = context.chat_data.pop("ticked", set())
                context.chat_data[question.name] = [question.options[n] for n in sorted(ticked)]
            if question.name == "review":
                choice = context.chat_data.get("review")
                if choice == "Send my enquiry":
                    return await finish(update, context)
                if choice == "Change an answer":
                    return await ask(update, context, 0)
                context.application.drop_chat_data(update.effective_chat.id)  # type: ignore[union-attr]
                return ConversationHandler.END
            return await ask(update, context, index + 1)

        return handler

    def on_text(index: int) -> Any:
        question = QUESTIONS[index]

        async def handler(update: Update, context: Context) -> int:
            message = update.effective_message
            assert message is not None and message.text is not None
            assert context.chat_data is not None
            text = message.text.strip()
            if question.kind == "description":
                context.chat_data[question.name] = (
                    context.chat_data.get(question.name, "") + "\n" + text
                ).strip()
                await message.reply_text(GOT_IT, reply_markup=markup(index))
                return index
            if question.kind == "text":
                context.chat_data[question.name] = text
                return await ask(update, context, index + 1)
            match = next((o for o in question.options if o.lower() == text.lower()), None)
            if match is None or question.kind == "multi":
                return await ask(update, context, index)  # not an option: ask again
            context.chat_data[question.name] = match
            return await ask(update, context, index + 1)

        return handler

    text_only = filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND
    conversation = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            index: [
                CallbackQueryHandler(on_button(index)),
                MessageHandler(text_only, on_text(index)),
            ]
            for index in range(len(QUESTIONS))
        },
        fallbacks=[CommandHandler("start", start)],
        allow_reentry=True,
    )
    builder = ApplicationBuilder().token(token).base_url(base_url).concurrent_updates(processor)
    if aiohttp:
        from bot.telegram.transport import AiohttpRequest

        builder = builder.request(AiohttpRequest()).get_updates_request(
            AiohttpRequest(connection_pool_size=1, read_timeout=30.0)
        )
    app = builder.build()
    app.add_handler(conversation)
    return app


# =========================================================================================
# The driver side (parent process): fake Bot API, simulated enquirers, report
# =========================================================================================


def _fake_class() -> type:
    from tests.fakes.telegram_api import FakeTelegram

    class BenchTelegram(FakeTelegram):
        """The fake, telling a waiting enquirer as soon as the bot has answered its turn.

        The bot has answered a turn when it sends a message with buttons (every question
        has at least a Back button) or, for a tick, edits the buttons in place.
        """

        def __init__(self) -> None:
            super().__init__(token=TOKEN)
            self._waiting: dict[int, tuple[str, asyncio.Future[None]]] = {}
            self.replicas: list[str] = []  # webhook URLs; empty = the service polls
            self._next = itertools.count()
            self._deliveries: set[asyncio.Task[None]] = set()
            self._http: Any = None

        def push_raw(self, update: dict[str, Any]) -> int:
            """With replicas, POST the update at once, as Telegram does with a webhook,
            to the next replica in turn (a round-robin load balancer): a chat's turns
            land on different processes, so the database's per-chat lock does the work.
            """
            update_id = super().push_raw(update)
            if self.replicas:
                queued = self._queue.pop()
                url = self.replicas[next(self._next) % len(self.replicas)]
                task = asyncio.create_task(self._deliver(url, queued.update))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
            return update_id

        async def _deliver(self, url: str, update: dict[str, Any]) -> None:
            import aiohttp

            if self._http is None:
                connector = aiohttp.TCPConnector(limit=0)
                self._http = aiohttp.ClientSession(connector=connector)
            headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
            for _ in range(50):  # Telegram retries a webhook that did not answer 2xx
                async with self._http.post(url, json=update, headers=headers) as resp:
                    if resp.status == 200:
                        return
                await asyncio.sleep(0.1)

        async def __aexit__(self, *exc: object) -> None:
            if self._http is not None:
                await self._http.close()
            await super().__aexit__(*exc)

        def expect(self, chat_id: int, kind: str) -> asyncio.Future[None]:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting[chat_id] = (kind, future)
            return future

        def _answered(self, chat_id: Any, kind: str) -> None:
            waiting = self._waiting.get(chat_id)
            if waiting and waiting[0] == kind and not waiting[1].done():
                waiting[1].set_result(None)
                del self._waiting[chat_id]

        async def _api_sendmessage(self, p: dict[str, Any]) -> Any:
            message = await super()._api_sendmessage(p)
            if p.get("reply_markup"):
                self._answered(p["chat_id"], "send")
            return message

        async def _api_editmessagereplymarkup(self, p: dict[str, Any]) -> Any:
            result = await super()._api_editmessagereplymarkup(p)
            if p.get("reply_markup"):
                self._answered(p.get("chat_id"), "edit")
            return result

    return BenchTelegram


def press(tg: Any, chat_id: int, label: str) -> None:
    """Press the button labelled ``label`` (exactly, else containing it) on the last message."""
    message = tg.last_message(chat_id)
    if message is None:
        raise LookupError("the bot has not written in this chat")
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    buttons = [b for row in rows for b in row]
    wanted = label.lower()
    button = next((b for b in buttons if b["text"].lower() == wanted), None) or next(
        (b for b in buttons if wanted in b["text"].lower()), None
    )
    if button is None:
        raise LookupError(f"no button like {label!r}")
    tg.push_callback(chat_id, button["callback_data"], message_id=message["message_id"])


@dataclass
class Outcome:
    turns: int = 0
    completed: bool = False
    error: str = ""


async def converse(tg: Any, chat_id: int) -> Outcome:
    """One enquirer: each turn, act, then wait for the bot's answer (like a person)."""
    outcome = Outcome()
    try:
        for action, arg in SCRIPT:
            answered = tg.expect(chat_id, "edit" if action == "tick" else "send")
            if action == "say" and arg.startswith("/"):
                tg.push_command(chat_id, arg)
            elif action == "say":
                tg.push_message(chat_id, arg)
            else:
                press(tg, chat_id, arg)
            await asyncio.wait_for(answered, TURN_TIMEOUT)
            outcome.turns += 1
        last = tg.last_message(chat_id) or {}
        outcome.completed = DONE_MARK in last.get("text", "")
        if not outcome.completed:
            outcome.error = "the last reply was not a confirmation"
    except (TimeoutError, LookupError) as error:
        outcome.error = f"turn {outcome.turns + 1}: {type(error).__name__} {error}".strip()
    return outcome


@dataclass
class Phase:
    wall_s: float
    driver_cpu_s: float
    outcomes: list[Outcome]
    machine_busy_s: float = 0.0  # CPU seconds every process on the machine used (all cores)

    @property
    def completed(self) -> int:
        return sum(o.completed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.completed


def _machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def run_phase(tg: Any, first_chat: int, count: int, *, concurrent: bool = True) -> Phase:
    cpu, start, busy = time.process_time(), time.perf_counter(), _machine_busy_s()
    if concurrent:
        outcomes = list(await asyncio.gather(*(converse(tg, first_chat + i) for i in range(count))))
    else:
        outcomes = [await converse(tg, first_chat + i) for i in range(count)]
    return Phase(
        time.perf_counter() - start,
        time.process_time() - cpu,
        outcomes,
        _machine_busy_s() - busy,
    )


class ServiceProcess:
    """The service in a child process, spoken to in JSON lines over its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(
        cls,
        kind: str,
        database_url: str,
        base_url: str,
        webhook_port: int | None = None,
        *,
        wipe: bool = True,
    ) -> ServiceProcess:
        webhook = ["--webhook-port", str(webhook_port)] if webhook_port else []
        webhook += [] if wipe else ["--keep-database"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.telegram_turns",
            "--serve",
            kind,
            "--database-url",
            database_url,
            "--base-url",
            base_url,
            *webhook,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            limit=1 << 24,
        )
        service = cls(proc)
        ready = await asyncio.wait_for(service.read(), 60)
        if ready.get("event") != "ready":
            raise RuntimeError(f"service did not start: {ready}")
        return service

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            code = await self.proc.wait()
            raise RuntimeError(f"the service process exited (code {code}); see its log above")
        return dict(json.loads(line))

    async def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def mark(self, profile: str | None = None) -> dict[str, Any]:
        await self.send({"cmd": "mark", "profile": profile})
        return await asyncio.wait_for(self.read(), 60)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.send({"cmd": "stop"})
            await asyncio.wait_for(self.proc.wait(), 15)

    async def kill(self) -> None:
        """Make sure the child is gone (it is ours: end it by its own handle)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


@dataclass
class Figures:
    name: str
    enquirers: int
    updates: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    intake_ms: list[float] | None = None
    solo_ms: list[float] = field(default_factory=list)
    solo_intake_ms: list[float] | None = None
    cpu_s: float = 0.0
    driver_cpu_s: float = 0.0
    machine_busy_s: float = 0.0
    maxrss_kb: int = 0
    rss_first_kb: int = 0
    rss_second_kb: int = 0
    objects_delta: int = 0
    blocks_delta: int = 0
    chat_data: int = 0
    profile: str | None = None
    failure: str | None = None

    @property
    def rate(self) -> float:
        return self.updates / self.wall_s if self.wall_s else 0.0


class Replicas:
    """Several service processes, marked together: their figures add up."""

    def __init__(self, services: list[ServiceProcess]) -> None:
        self.services = services

    @classmethod
    async def start(cls, kind: str, database_url: str, tg: Any, replicas: int) -> Replicas:
        if replicas <= 1:
            return cls([await ServiceProcess.start(kind, database_url, tg.base_url)])
        from tests.support.telegram import free_port

        ports = [free_port() for _ in range(replicas)]
        started = cls([])
        try:
            for n, port in enumerate(ports):  # one at a time; the first wipes the database
                service = await ServiceProcess.start(
                    kind, database_url, tg.base_url, port, wipe=n == 0
                )
                started.services.append(service)
        except BaseException:
            await started.kill()
            raise
        tg.replicas = [f"http://127.0.0.1:{port}{WEBHOOK_PATH}" for port in ports]
        return started

    async def mark(self, profile: str | None = None) -> dict[str, Any]:
        marks = [await s.mark(profile if i == 0 else None) for i, s in enumerate(self.services)]
        if len(marks) == 1:
            return marks[0]
        combined = dict(marks[0])
        for mark in marks[1:]:
            for key, value in mark.items():
                if value is not None and combined.get(key) is not None:
                    combined[key] = combined[key] + value  # lists join, figures add up
        return combined

    async def stop(self) -> None:
        for service in self.services:
            await service.stop()

    async def kill(self) -> None:
        for service in self.services:
            await service.kill()


async def run_scenario(
    name: str,
    kind: str,
    database_url: str,
    enquirers: int,
    solo: int,
    profile: str | None,
    replicas: int = 1,
) -> Figures:
    """Warm up, one at a time, N at once, another N at once; the service's figures for each.

    With ``replicas`` > 1, that many service processes take webhooks in turn; their CPU,
    memory and samples are added up (the profile, if any, is the first one's).
    """
    figures = Figures(name, enquirers, profile=profile)
    async with _fake_class()() as tg:
        service = await Replicas.start(kind, database_url, tg, replicas)
        try:
            # Sequential first: the load phases leave the HTTP pool full of connections.
            await run_phase(tg, 1_000_000, 3, concurrent=False)  # warm-up, not counted
            await service.mark()
            solo_phase = await run_phase(tg, 2_000_000, solo, concurrent=False)
            solo_mark = await service.mark("start" if profile else None)
            first = await run_phase(tg, 3_000_000, enquirers)
            first_mark = await service.mark()
            second = await run_phase(tg, 4_000_000, enquirers)
            second_mark = await service.mark(profile)
            await service.stop()
        finally:
            await service.kill()
    figures.updates = first_mark["updates"] + second_mark["updates"]
    figures.wall_s = first.wall_s + second.wall_s
    figures.completed = first.completed + second.completed
    figures.failed = first.failed + second.failed + solo_phase.failed
    figures.errors = sorted(
        {o.error for p in (solo_phase, first, second) for o in p.outcomes if o.error}
    )
    figures.latency_ms = first_mark["latency_ms"] + second_mark["latency_ms"]
    figures.solo_ms = solo_mark["latency_ms"]
    if first_mark["intake_ms"] is not None:
        figures.intake_ms = first_mark["intake_ms"] + second_mark["intake_ms"]
        figures.solo_intake_ms = solo_mark["intake_ms"]
    figures.cpu_s = first_mark["cpu_s"] + second_mark["cpu_s"]
    figures.driver_cpu_s = first.driver_cpu_s + second.driver_cpu_s
    figures.machine_busy_s = first.machine_busy_s + second.machine_busy_s
    figures.maxrss_kb = second_mark["maxrss_kb"]
    figures.rss_first_kb, figures.rss_second_kb = first_mark["rss_kb"], second_mark["rss_kb"]
    figures.objects_delta = second_mark["objects"] - first_mark["objects"]
    figures.blocks_delta = second_mark["blocks"] - first_mark["blocks"]
    figures.chat_data = second_mark["chat_data"]
    return figures


# -----------------------------------------------------------------------------------------
# Report
# -----------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN when there is nothing to rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def tick(ok: bool) -> str:
    return "✓" if ok else "✗"


def memory_grew(f: Figures) -> bool:
    return f.rss_second_kb - f.rss_first_kb > MEMORY_SLACK_KB


def _latency(label: str, values: list[float] | None, q: float, digits: int = 1) -> tuple[str, ...]:
    """A percentile row; p50 and p99 carry the issue's target and a ✓/✗."""
    if values is None:
        return (label, "—", "")
    value = percentile(values, q)
    target = {50: TARGET_P50_MS, 99: TARGET_P99_MS}.get(int(q))
    mark = f"≤ {target:g} ms  {tick(value <= target)}" if target is not None else ""
    return (label, f"{value:.{digits}f} ms", mark)


def rows_for(f: Figures) -> list[tuple[str, ...]]:
    """(figure, value, target) rows for one scenario."""
    n, mb = f.enquirers, 1024
    delta = f.rss_second_kb - f.rss_first_kb
    per_update = f.cpu_s / f.updates * 1000 if f.updates else float("nan")
    wall = f.wall_s or float("nan")
    rate_target = f"≥ {TARGET_UPDATES_PER_S:.0f}  {tick(f.rate >= TARGET_UPDATES_PER_S)}"
    return [
        ("conversations completed", f"{f.completed} ({f.failed} failed)", ""),
        ("updates processed", f"{f.updates}", ""),
        ("wall time", f"{f.wall_s:.1f} s", ""),
        ("throughput", f"{f.rate:.0f} updates/s", rate_target),
        _latency(f"update p50, {n} at once", f.latency_ms, 50),
        _latency(f"update p95, {n} at once", f.latency_ms, 95),
        _latency(f"update p99, {n} at once", f.latency_ms, 99),
        _latency(f"  of which intake p50, {n} at once", f.intake_ms, 50),
        _latency(f"  of which intake p99, {n} at once", f.intake_ms, 99),
        _latency("update p50, one at a time", f.solo_ms, 50, 2),
        _latency("update p95, one at a time", f.solo_ms, 95, 2),
        _latency("update p99, one at a time", f.solo_ms, 99, 2),
        _latency("  of which intake p50, one at a time", f.solo_intake_ms, 50, 2),
        _latency("  of which intake p99, one at a time", f.solo_intake_ms, 99, 2),
        ("service CPU per update", f"{per_update:.2f} ms", ""),
        ("service CPU use (load phases)", f"{f.cpu_s / wall:.0%} of a core", ""),
        ("fake+drivers CPU use", f"{f.driver_cpu_s / wall:.0%} of a core", ""),
        (
            "machine CPU use (all processes)",
            f"{f.machine_busy_s / wall / (os.cpu_count() or 1):.0%} of {os.cpu_count()} cores",
            "",
        ),
        ("peak RSS (ru_maxrss)", f"{f.maxrss_kb / mb:.1f} MB", ""),
        (f"RSS after {n} conversations", f"{f.rss_first_kb / mb:.1f} MB", ""),
        (f"RSS after another {n}", f"{f.rss_second_kb / mb:.1f} MB", ""),
        (
            "RSS delta (second batch)",
            f"{delta / mb:+.2f} MB ({delta / max(n, 1):+.1f} kB/chat)",
            f"no growth  {tick(not memory_grew(f))}",
        ),
        ("  Python objects / blocks delta", f"{f.objects_delta:+d} / {f.blocks_delta:+d}", ""),
        ("  PTB chat_data entries kept", f"{f.chat_data}", ""),
    ]


LABEL_WIDTH, CELL_WIDTH = 38, 28
NOTES = (
    "notes: 'update' = from PTB handing the update to the processor until its handler returned,",
    "       incl. the chat lock and the replies sent over HTTP to the fake; 'intake' = the part",
    "       in IntakeService.handle (DB transaction + flow). 'N at once' is mostly queueing: with",
    "       N updates in flight on one event loop, latency ≈ N / throughput (Little's law).",
    "       'one at a time' is the cost of one update with nothing else running. RSS is read",
    "       after gc.collect() + malloc_trim(0); memory ✓ = second batch grew RSS ≤ "
    f"{MEMORY_SLACK_KB // 1024} MB.",
)


def print_scenario(f: Figures) -> None:
    print(f"\n== {f.name} ==")
    if f.failure:
        print(f"  not run: {f.failure}")
        return
    for label, value, target in rows_for(f):
        target = f"target {target}" if target else ""
        print(f"  {label:<{LABEL_WIDTH}}{value:<{CELL_WIDTH}}{target}".rstrip())
    for error in f.errors[:5]:
        print(f"  ! {error}")
    if f.profile:
        print_profile(f.profile)


def print_comparison(results: dict[str, Figures]) -> None:
    columns = list(results)
    table: dict[str, dict[str, str]] = {}
    targets: dict[str, str] = {}
    for column in columns:
        figures = results.get(column)
        if figures is None or figures.failure:
            continue
        for label, value, target in rows_for(figures):
            threshold, _, mark = target.rpartition("  ")
            table.setdefault(label, {})[column] = f"{value} {mark}".rstrip()
            targets[label] = threshold
    if not table:
        return
    print("\n== comparison ==")
    head = "".join(c.ljust(CELL_WIDTH) for c in columns)
    print(f"  {'figure':<{LABEL_WIDTH}}{head}target")
    for label, cells in table.items():
        row = "".join(cells.get(c, "—").ljust(CELL_WIDTH) for c in columns)
        print(f"  {label:<{LABEL_WIDTH}}{row}{targets[label]}".rstrip())
    print()
    print("\n".join("  " + line for line in NOTES))


def print_profile(path: str, top: int = 25) -> None:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    print(f"\n  cProfile of the service during the measured phases ({path}), by own time:")
    print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()))


# -----------------------------------------------------------------------------------------
# Entry point
# -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.telegram_turns",
        description="Whole Telegram conversations through the service against a fake Bot API.",
    )
    parser.add_argument("--enquirers", type=int, default=200, help="concurrent enquirers")
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "both"), default="sqlite", help="our store"
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run a plain PTB ConversationHandler bot with in-memory state, on PTB's "
        "httpx transport and on ours (aiohttp)",
    )
    parser.add_argument(
        "--solo", type=int, default=10, help="conversations run one at a time for latency"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="wiped each run!")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="cProfile the service during the measured phases (slows it down) into DIR",
    )
    # The child process (internal).
    parser.add_argument(
        "--serve", choices=("ours", "baseline", "baseline-aiohttp"), help=argparse.SUPPRESS
    )
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--webhook-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keep-database", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="with PostgreSQL, also run this many webhook replicas sharing the load "
        "(round-robin); 1 to skip",
    )
    return parser.parse_args(argv)


async def bench(args: argparse.Namespace) -> None:
    import sqlalchemy
    import telegram

    from bot import logs

    logs.configure("WARNING")
    task = asyncio.current_task()
    if task is not None:  # SIGTERM: stop like Ctrl-C, cleaning up on the way out
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    print("helpline-intake: Telegram turns benchmark")
    print(
        f"  per scenario: 3 warm-up conversations, {args.solo} one at a time (latency), then "
        f"{args.enquirers} enquirers at once × {len(SCRIPT)} turns, then another "
        f"{args.enquirers} at once (memory)"
    )
    print(
        "  fake Bot API (aiohttp, loopback) + enquirers in this process; service in a child "
        "process, polling (poll_interval=0)"
    )
    print(
        "  PTB rate limiter OFF (rate_limited=False): the fake is local; production keeps "
        "AIORateLimiter at 30 messages/s"
    )
    print(
        f"  Python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, {os.cpu_count()} CPUs"
    )
    scenarios: list[tuple[str, str, str, int]] = []
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        if args.database in ("sqlite", "both"):
            scenarios.append(("ours-sqlite", "ours", f"sqlite+aiosqlite:///{tmp}/bench.db", 1))
        if args.database in ("postgres", "both"):
            scenarios.append(("ours-postgres", "ours", args.postgres_url, 1))
            if args.replicas > 1:
                name = f"ours-postgres-{args.replicas}x"
                scenarios.append((name, "ours", args.postgres_url, args.replicas))
        if args.baseline:
            scenarios.append(("baseline", "baseline", "", 1))
            scenarios.append(("baseline-aiohttp", "baseline-aiohttp", "", 1))
        results: dict[str, Figures] = {}
        for name, kind, url, replicas in scenarios:
            profile = None
            if args.profile:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                profile = str(Path(args.profile).resolve() / f"{name}.prof")
            print(f"\nrunning {name} …", flush=True)
            try:
                figures = await run_scenario(
                    name, kind, url, args.enquirers, args.solo, profile, replicas
                )
            except (RuntimeError, OSError, TimeoutError) as error:
                figures = Figures(name, args.enquirers, failure=str(error) or repr(error))
            results[name] = figures
            print_scenario(figures)
        print_comparison(results)
        if args.profile:
            print(f"\n(profiled run: figures are slower than usual; stats in {args.profile})")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
        _protect_stdout()
        try:
            asyncio.run(
                serve_child(
                    args.serve,
                    args.database_url or "",
                    args.base_url,
                    args.webhook_port,
                    wipe=not args.keep_database,
                )
            )
        except Exception as error:  # the parent reports that we stopped; say why, briefly
            print(f"bench service ({args.serve}): {type(error).__name__}: {error}", file=sys.stderr)
            sys.exit(1)
        return
    try:
        asyncio.run(bench(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; the service was stopped and temporary files removed")
        sys.exit(130)


if __name__ == "__main__":
    main()
