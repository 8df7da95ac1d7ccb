"""Web chat under load: idle open chats, active enquirers, and a forced reconnect of all.

The service runs as ``helpline run`` in a child process (against the fake Bot API in this
one); the chats are real WebSocket clients (the ``websockets`` library) on loopback.

    python -m bench.webchat [--idle 1000] [--active 100] [--database sqlite|postgres]

Prints the service's memory per idle open chat (RSS growth over opening them, divided by
their number; target ≤ 50 kB), the turn latency p50/p99 of the active web enquirers
beside Telegram enquirers running the same script against the same process in the same
run, and the messages lost and duplicated when every socket is dropped mid-conversation
and reconnects (target 0 / 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bench.common import database, postgres_url
from bench.enquiry import Turn, confirmation_mark, script
from bench.telegram_turns.drivers import TURN_TIMEOUT, BenchTelegram, act
from bench.telegram_turns.service import TOKEN
from tests.support.keys import DATA_KEY
from tests.support.telegram import free_port

DEFAULT_POSTGRES_URL = postgres_url("webchat")
TARGET_IDLE_KB = 50.0
OPENING_AT_ONCE = 50  # sockets opened concurrently while filling up the idle chats
RECONNECT_FIRST, RECONNECT_CAP = 0.5, 10.0  # the page's backoff between reconnects (seconds)
RETRY_NOTICE_WAIT = 2.0  # the page sends a frame again this long after a retry notice
UNLIMITED = {  # every chat comes from 127.0.0.1, far faster than people type
    "HELPLINE_WEB_SESSION_RATE": "100000",
    "HELPLINE_WEB_ADDRESS_RATE": "100000000",
}


def rss_kb(pid: int) -> int:
    """The process's resident memory (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Chat:
    """One browser: its socket, token and the numbered messages it has drawn.

    It behaves as the page does (``bot/web/static/chat.js``): a socket that closes under it
    is opened again (backing off from half a second), with ``after`` the last message it
    drew, and every frame not yet acknowledged is sent again after ``welcome`` with the same
    id. With several ``urls`` each connection goes to the next one (a load balancer without
    stickiness), so a chat whose replica dies carries on on another.
    """

    urls: list[str]
    token: str | None = None
    seqs: list[int] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    ws: ClientConnection | None = None
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    news: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None
    start: int = 0
    """Which of ``urls`` the first connection goes to."""
    connections: int = 0
    reconnects: int = 0
    resets: int = 0
    replica: int = 0
    """Which of ``urls`` the current connection went to."""
    _later: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def last(self) -> int:
        return max(self.seqs, default=0)

    async def open(self, patience: float = TURN_TIMEOUT) -> None:
        """Connect (to the next of ``urls``) and say hello; tried again until ``patience``."""
        loop = asyncio.get_running_loop()
        deadline, wait = loop.time() + patience, RECONNECT_FIRST
        while True:
            self.replica = (self.start + self.connections) % len(self.urls)
            self.connections += 1
            try:
                await self._connect(self.urls[self.replica])
                return
            except (OSError, WebSocketException, TimeoutError):
                if loop.time() + wait > deadline:
                    raise
            await asyncio.sleep(wait * random.uniform(1.0, 1.5))
            wait = min(wait * 2, RECONNECT_CAP)

    async def _connect(self, url: str) -> None:
        origin = "http" + url.removeprefix("ws").split("/chat/", 1)[0]
        ws = await connect(url, origin=origin, max_size=2**20, open_timeout=10)  # type: ignore[arg-type]
        try:
            await ws.send(json.dumps({"type": "hello", "token": self.token, "after": self.last}))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except BaseException:
            await ws.close()
            raise
        if welcome.get("reset"):  # never expected: the page would start afresh
            self.resets += 1
        self.ws, self.token = ws, welcome.get("token", self.token)
        self.reader = asyncio.create_task(self._read(ws))
        for frame in list(self.pending.values()):  # not acknowledged: again, same id
            await self._send(frame)

    async def drop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)

    @property
    def closed(self) -> bool:
        """The socket is gone (the server closed it, or died)."""
        return self.reader is None or self.reader.done()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind, frame_id = frame["type"], frame.get("id")
                if kind == "message":
                    self.seqs.append(frame["seq"])  # every one kept: repeats are counted
                    self.messages.append(frame)
                elif kind == "ack" and frame_id in self.pending:
                    del self.pending[frame_id]
                    self.answers[frame_id] = "duplicate" if frame.get("duplicate") else "ack"
                elif kind == "notice" and frame_id in self.pending:
                    if frame.get("retry"):  # a fault on the server's side: again, later
                        self._resend_later(frame_id)
                    else:
                        del self.pending[frame_id]
                        self.answers[frame_id] = "notice"
                self.news.set()
        except WebSocketException:
            pass  # the connection was lost: whoever waits reconnects
        finally:
            self.news.set()

    def _resend_later(self, frame_id: str) -> None:
        async def again() -> None:
            await asyncio.sleep(RETRY_NOTICE_WAIT)
            if frame_id in self.pending and not self.closed:
                await self._send(self.pending[frame_id])

        task = asyncio.create_task(again())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _send(self, frame: dict[str, Any]) -> None:
        if self.ws is None:
            return
        with contextlib.suppress(WebSocketException):  # kept in pending: sent after welcome
            await self.ws.send(json.dumps(frame))

    async def until(self, done: Callable[[], bool], timeout: float = TURN_TIMEOUT) -> None:
        """Wait for ``done()``, reconnecting whenever the socket closes meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            if self.closed:
                self.reconnects += 1
                await self.open(patience=remaining)
                continue
            self.news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.news.wait(), remaining)

    def asked(self) -> dict[str, Any] | None:
        """The newest bot message that asks a question."""
        for message in reversed(self.messages):
            if message.get("from") == "bot" and message.get("question"):
                found: dict[str, Any] = message
                return found
        return None

    async def question(self) -> dict[str, Any]:
        await self.until(lambda: self.asked() is not None)
        asked = self.asked()
        assert asked is not None
        return asked

    async def send(self, frame: dict[str, Any]) -> str:
        """Send a frame with a new id until it is answered: ``ack``, ``duplicate`` (taken
        before, by a connection that was lost before it could say so) or ``notice``."""
        frame = {**frame, "id": uuid4().hex}
        self.pending[frame["id"]] = frame
        await self._send(frame)
        await self.until(lambda: frame["id"] in self.answers)
        return self.answers.pop(frame["id"])

    async def act(self, turn: Turn) -> float:
        """One turn of the script; seconds from sending it to its acknowledgement (which
        the server sends after the turn's messages).

        ``say``: a ``say`` frame with the text (``/start`` is not sent: the chat started
        when it opened). ``tap``: ``choose`` with the turn's option id, or ``done`` for the
        Done of a multiple choice (no option). ``tick``: ``toggle`` with the option id. The
        option must be one the bot's last question offers, or the run fails.
        """
        if turn.action == "say" and turn.text == "/start":
            await self.question()
            return float("nan")  # the chat started when it opened
        frame: dict[str, Any]
        if turn.action == "say":
            frame = {"type": "say", "text": turn.text}
        else:
            asked = await self.question()
            if turn.option is None:
                frame = {"type": "done", "question": asked["question"]}
            else:
                offered = {o["id"] for o in asked.get("options", [])}
                if turn.option not in offered:
                    raise LookupError(f"the question offers no option {turn.option!r}")
                kind = "toggle" if turn.action == "tick" else "choose"
                frame = {"type": kind, "option": turn.option, "question": asked["question"]}
        start = time.perf_counter()
        await self.send(frame)
        return time.perf_counter() - start


async def web_enquirer(chat: Chat, reconnect_at: int) -> list[float]:
    """The whole script over the socket, dropping it and reconnecting at turn ``reconnect_at``."""
    timings = []
    for number, turn in enumerate(script()):
        if number == reconnect_at:
            await chat.drop()
            await chat.open()
        seconds = await chat.act(turn)
        if seconds == seconds:  # not NaN
            timings.append(seconds)
    return timings


async def telegram_enquirer(tg: BenchTelegram, chat_id: int) -> list[float]:
    """The same script on Telegram: seconds from the update to the bot's answer."""
    timings = []
    for turn in script():
        answered = tg.expect(chat_id, "edit" if turn.action == "tick" else "send")
        start = time.perf_counter()
        act(tg, chat_id, turn)
        await asyncio.wait_for(answered, TURN_TIMEOUT)
        timings.append(time.perf_counter() - start)
    return timings


async def started(port: int, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if proc.returncode is not None:
                raise RuntimeError("the service exited while starting")
            try:
                async with http.get(f"http://127.0.0.1:{port}/livez") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the service did not start")


async def open_idle(url: str, count: int) -> list[Chat]:
    chats = [Chat([url]) for _ in range(count)]
    gate = asyncio.Semaphore(OPENING_AT_ONCE)

    async def one(chat: Chat) -> None:
        async with gate:
            await chat.open()
            await chat.question()

    await asyncio.gather(*(one(c) for c in chats))
    return chats


def lost_and_repeated(chats: list[Chat], totals: dict[str, int]) -> tuple[int, int]:
    """Messages a chat never drew, and messages it drew twice (by their numbers)."""
    lost = repeated = 0
    for chat in chats:
        expected = totals.get(chat.token or "", 0)
        seen = set(chat.seqs)
        lost += sum(1 for n in range(1, expected + 1) if n not in seen)
        repeated += len(chat.seqs) - len(seen)
    return lost, repeated


async def totals_by_token(url: str, chats: list[Chat]) -> dict[str, int]:
    """How many messages each chat holds in the database (the truth to compare with)."""
    from sqlalchemy import func, select

    from storage import db
    from storage.models import WebMessage, WebSession
    from storage.web import token_hash

    engine = db.create_engine(url, data_key=DATA_KEY)
    try:
        async with db.session_factory(engine)() as session:
            rows = await session.execute(
                select(WebSession.token_hash, func.count(WebMessage.id))
                .join(WebMessage, WebMessage.chat_id == WebSession.chat_id)
                .group_by(WebSession.token_hash)
            )
            by_hash = {h: int(n) for h, n in rows}
    finally:
        await engine.dispose()
    return {c.token: by_hash.get(token_hash(c.token), 0) for c in chats if c.token}


async def bench(args: argparse.Namespace) -> None:
    async with (
        database(args.database, DEFAULT_POSTGRES_URL, "webchat-") as url,
        BenchTelegram() as tg,
    ):
        port = free_port()
        env = {
            **os.environ,
            "HELPLINE_DATABASE_URL": url,
            "HELPLINE_HTTP_PORT": str(port),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "TELEGRAM_CHAT_RATE": "100000",
            "TELEGRAM_CHAT_BURST": "100000",
            "HELPLINE_DATA_KEY": DATA_KEY,
            **UNLIMITED,
            "HELPLINE_LOG_LEVEL": "WARNING",
        }
        helpline = Path(sys.executable).with_name("helpline")
        proc = await asyncio.create_subprocess_exec(str(helpline), "run", env=env)
        try:
            await started(port, proc)
            socket_url = f"ws://127.0.0.1:{port}/chat/socket"
            warm = await open_idle(socket_url, 20)  # imports, caches, pools filled
            for chat in warm:
                await chat.drop()
            await asyncio.sleep(1.0)
            before = rss_kb(proc.pid)
            idle = await open_idle(socket_url, args.idle)
            await asyncio.sleep(1.0)
            per_idle_kb = (rss_kb(proc.pid) - before) / max(1, args.idle)

            active = [Chat([socket_url]) for _ in range(args.active)]
            for chat in active:
                await chat.open()
            reconnect_at = len(script()) // 2
            web_start = time.perf_counter()
            web = await asyncio.gather(*(web_enquirer(c, reconnect_at) for c in active))
            web_wall = time.perf_counter() - web_start
            tg_start = time.perf_counter()
            telegram = await asyncio.gather(
                *(telegram_enquirer(tg, 900_000 + i) for i in range(args.active))
            )
            tg_wall = time.perf_counter() - tg_start
            mark = confirmation_mark()
            finished = sum(1 for c in active if any(mark in m.get("text", "") for m in c.messages))

            # Every idle socket dropped and reconnected at once: nothing lost or repeated.
            for chat in idle:
                await chat.drop()
            gate = asyncio.Semaphore(OPENING_AT_ONCE)

            async def reopen(chat: Chat) -> None:
                async with gate:
                    await chat.open()

            await asyncio.gather(*(reopen(c) for c in idle))
            await asyncio.sleep(1.0)
            everyone = idle + active
            lost, repeated = lost_and_repeated(everyone, await totals_by_token(url, everyone))
            for chat in everyone:
                await chat.drop()
        finally:
            proc.terminate()
            await proc.wait()

    web_turns = [t * 1000 for turns in web for t in turns]
    tg_turns = [t * 1000 for turns in telegram for t in turns]
    print(f"web chat bench ({args.database}; {args.idle} idle chats, {args.active} active)")
    print(f"  memory per idle open chat: {per_idle_kb:.1f} kB (target <= {TARGET_IDLE_KB:.0f})")
    print(f"  active web enquirers finished: {finished}/{args.active}")
    rows = (
        ("turn p50", percentile(web_turns, 50), percentile(tg_turns, 50)),
        ("turn p99", percentile(web_turns, 99), percentile(tg_turns, 99)),
        ("wall for all", web_wall * 1000, tg_wall * 1000),
    )
    print(f"  {'':14} {'web chat':>12} {'telegram':>12} {'web/telegram':>13}")
    for label, w, t in rows:
        print(f"  {label:14} {w:10.1f}ms {t:10.1f}ms {w / t:12.2f}x")
    print(
        f"  across a forced reconnect of all {len(everyone)} sockets:"
        f" lost {lost}, duplicated {repeated}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--active", type=int, default=100)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    main()
