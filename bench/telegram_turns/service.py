"""The service under test, in a child process, and the parent's handle on it.

The child is ours (``bot.app.build`` + ``bot.app.running``, exactly what ``helpline run``
runs, with the benchmark's timed update processor passed in and the rate limiter off) or
the plain-PTB baseline (:mod:`bench.telegram_turns.baseline`). Parent and child talk in
JSON lines over the child's stdin/stdout; the child's stderr is its (WARNING-level) log.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import ctypes
import gc
import json
import os
import resource
import sys
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import IO, Any, Literal, ParamSpec, TypeVar

from telegram.ext import Application

from bot.telegram.processing import PerChatUpdateProcessor
from bot.telegram.webhook import DEFAULT_WEBHOOK_PATH
from tests.support.telegram import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123:ABC"
WEBHOOK_SECRET = "bench-secret"
Kind = Literal["ours", "baseline", "baseline-aiohttp"]
KINDS: tuple[Kind, ...] = ("ours", "baseline", "baseline-aiohttp")
PTBApplication = Application[Any, Any, Any, Any, Any, Any]
Mark = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")


class TimedUpdateProcessor(PerChatUpdateProcessor):
    """Our per-chat processor, timing each update from hand-over to handler done
    (waiting for the chat's lock included).

    Passed to ``bot.app.build(update_processor=...)`` (and to the baseline bot), so what
    is timed is the service's own processing, with nothing patched.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self.samples: list[float] = []

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        start = time.perf_counter()
        try:
            await super().do_process_update(update, coroutine)
        finally:
            self.samples.append(time.perf_counter() - start)


def stopwatch(
    method: Callable[P, Awaitable[R]], samples: list[float]
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``method`` with each call's duration appended to ``samples`` (measures only)."""

    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            samples.append(time.perf_counter() - start)

    return timed


def _malloc_trim() -> None:
    """Give freed heap back to the OS (glibc), so RSS reflects what is still in use."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _current_rss_kb() -> int:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Reporter:
    """Answers the parent's "mark" commands with what happened since the last mark."""

    def __init__(
        self,
        app: PTBApplication,
        processor: TimedUpdateProcessor,
        intake_samples: list[float] | None,
    ) -> None:
        self.app = app
        self.processor = processor
        self.intake_samples = intake_samples
        self.cpu = time.process_time()
        self.profiler: cProfile.Profile | None = None

    async def idle(self, handled: int | None) -> None:
        """Until the ``handled`` updates the parent sent are done (when it knows: one
        service takes them all), then until none is queued or in hand (briefly)."""
        if handled is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.processor.wait_finished(handled), 5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            self.processor.current_concurrent_updates or not self.app.update_queue.empty()
        ):
            await asyncio.sleep(0.002)

    async def mark(self, command: dict[str, Any]) -> Mark:
        await self.idle(command.get("handled"))
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
        figures: Mark = {
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


class Protocol:
    """The child's end of the JSON-lines channel: stdout is kept for it alone."""

    def __init__(self) -> None:
        self._out: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # anything else printed goes to stderr
        sys.stdout = sys.stderr

    def say(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    async def commands(self, reporter: Reporter) -> None:
        """Answer "mark" until "stop" or the end of input."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self.say({"event": "ready", "pid": os.getpid()})
        while line := await reader.readline():
            command = json.loads(line)
            if command["cmd"] == "mark":
                self.say(await reporter.mark(command))
            elif command["cmd"] == "stop":
                break


async def serve_ours(
    protocol: Protocol, database_url: str, base_url: str, webhook_port: int | None, *, wipe: bool
) -> None:
    """Our service as ``helpline run`` builds and runs it (``bot.app``), HTTP on a free
    port. With ``webhook_port``: one webhook replica (no polling; updates arrive at
    ``/telegram/webhook`` on that port, stored in the inbox before they are answered)."""
    from bench.common import prepare_postgres
    from bot.app import build, running
    from bot.settings import Settings

    if database_url.startswith("postgres") and wipe:  # later replicas share the first's
        await prepare_postgres(database_url)
    port = webhook_port or free_port()
    webhook_url = f"http://127.0.0.1:{port}{DEFAULT_WEBHOOK_PATH}" if webhook_port else None
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=base_url,
        telegram_webhook_url=webhook_url,
        telegram_webhook_secret=WEBHOOK_SECRET if webhook_url else None,
        http_host="127.0.0.1",
        http_port=port,
        slack_bot_token=None,
    )
    processor = TimedUpdateProcessor(256)
    helpline = build(settings, update_processor=processor, rate_limited=False)
    intake_samples: list[float] = []
    # The part of each update spent in the intake service (the DB transaction and the
    # flow step): a stopwatch on this instance's method, which the channel calls.
    intake = helpline.core.intake
    intake.handle = stopwatch(intake.handle, intake_samples)  # type: ignore[method-assign]
    assert helpline.telegram is not None  # the benchmark passes a token
    async with running(helpline):
        app = helpline.telegram.application
        await protocol.commands(Reporter(app, processor, intake_samples))


async def serve_baseline(protocol: Protocol, base_url: str, *, aiohttp: bool) -> None:
    """The plain-PTB bot, polling as ours does."""
    from telegram import Update

    from bench.telegram_turns.baseline import build_baseline

    processor = TimedUpdateProcessor(256)
    app = build_baseline(TOKEN, base_url, processor, aiohttp=aiohttp)
    await app.initialize()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=10, allowed_updates=Update.ALL_TYPES)
    await app.start()
    try:
        await protocol.commands(Reporter(app, processor, None))
    finally:
        if app.updater.running:
            await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def serve_child(
    kind: Kind, database_url: str, base_url: str, webhook_port: int | None, *, wipe: bool
) -> None:
    """The child process's whole life: serve until the parent says stop."""
    from telegram.warnings import PTBUserWarning

    from bot import logs

    logs.configure("WARNING")
    warnings.filterwarnings("ignore", category=PTBUserWarning)
    protocol = Protocol()
    if kind == "ours":
        await serve_ours(protocol, database_url, base_url, webhook_port, wipe=wipe)
    else:
        await serve_baseline(protocol, base_url, aiohttp=kind == "baseline-aiohttp")
    protocol.say({"event": "stopped"})


# -- the parent's side ------------------------------------------------------------------------


class ServiceProcess:
    """The service in a child process, spoken to in JSON lines over its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(
        cls,
        kind: Kind,
        database_url: str,
        base_url: str,
        webhook_port: int | None = None,
        *,
        wipe: bool = True,
    ) -> ServiceProcess:
        extra = ["--webhook-port", str(webhook_port)] if webhook_port else []
        extra += [] if wipe else ["--keep-database"]
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
            *extra,
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

    async def read(self) -> Mark:
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

    async def mark(self, profile: str | None = None, handled: int | None = None) -> Mark:
        await self.send({"cmd": "mark", "profile": profile, "handled": handled})
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


class Replicas:
    """One or several service processes, marked together: their figures add up."""

    def __init__(self, services: list[ServiceProcess]) -> None:
        self.services = services
        self.webhooks: list[str] = []
        """Where to post updates; empty when the one service polls."""

    @classmethod
    @contextlib.asynccontextmanager
    async def started(
        cls, kind: Kind, database_url: str, base_url: str, replicas: int, *, webhook: bool = False
    ) -> AsyncIterator[Replicas]:
        """Started for the length of the block (stopped, then killed if still there).

        One service polls, unless ``webhook``; several always take webhooks in turn.
        """
        started = cls([])
        try:
            if replicas <= 1 and not webhook:
                started.services.append(await ServiceProcess.start(kind, database_url, base_url))
            else:
                ports = [free_port() for _ in range(replicas)]
                for n, port in enumerate(ports):  # one at a time; the first wipes the database
                    started.services.append(
                        await ServiceProcess.start(kind, database_url, base_url, port, wipe=n == 0)
                    )
                started.webhooks = [
                    f"http://127.0.0.1:{port}{DEFAULT_WEBHOOK_PATH}" for port in ports
                ]
            yield started
            for service in started.services:
                await service.stop()
        finally:
            for service in started.services:
                await service.kill()

    async def mark(self, profile: str | None = None, handled: int | None = None) -> Mark:
        """Every replica's figures since its last mark, added up (lists joined)."""
        if len(self.services) == 1:
            return await self.services[0].mark(profile, handled)
        marks = [await s.mark(profile if i == 0 else None) for i, s in enumerate(self.services)]
        combined = dict(marks[0])
        for mark in marks[1:]:
            for key, value in mark.items():
                if value is not None and combined.get(key) is not None:
                    combined[key] = combined[key] + value
        return combined
