"""The parent's side: the fake Bot API, told to wake each enquirer when it is answered, and
the simulated enquirers, who act, then wait for the bot's answer, like people.

The turns are :func:`bench.enquiry.script`'s (button labels from the flow's data); a
finished enquiry is recognised by the confirmation's own opening words from copy.toml.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from bench.enquiry import Turn, confirmation_mark, script
from bench.telegram_turns.service import TOKEN, WEBHOOK_SECRET
from tests.fakes.telegram_api import JSON, FakeTelegram

TURN_TIMEOUT = 60.0  # seconds an enquirer waits for a reply before giving up on the chat
Answer = Literal["send", "edit"]


class BenchTelegram(FakeTelegram):
    """The fake, telling a waiting enquirer as soon as the bot has answered its turn.

    The bot has answered a turn when it sends a message with buttons (every question has
    at least a Back button) or, for a tick, edits the buttons in place. With
    :attr:`webhooks` set, each update is POSTed at once to the next replica in turn.
    """

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.webhooks: list[str] = []
        """Webhook URLs of the replicas; empty: the service polls."""
        self.updates = 0
        """Updates pushed so far (what the service will have handled once it catches up)."""
        self._waiting: dict[int, tuple[Answer, asyncio.Future[None]]] = {}
        self._next = itertools.count()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    def push_raw(self, update: JSON) -> int:
        """With replicas, POST the update at once, as Telegram does with a webhook, to the
        next replica in turn (a round-robin load balancer): a chat's turns land on
        different processes, so the database's per-chat lock does the work.
        """
        update_id = super().push_raw(update)
        self.updates += 1
        if self.webhooks:
            queued = self._queue.pop()
            url = self.webhooks[next(self._next) % len(self.webhooks)]
            task = asyncio.create_task(self._deliver(url, queued.update))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return update_id

    async def _deliver(self, url: str, update: JSON) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        for _ in range(50):  # Telegram retries a webhook that did not answer 2xx
            try:
                async with self._http.post(url, json=update, headers=headers) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:  # a connection dropped under load: post it again
                pass
            await asyncio.sleep(0.1)

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        await super().__aexit__(*exc)

    def expect(self, chat_id: int, answer: Answer) -> asyncio.Future[None]:
        """A future set once the bot answers the chat's next turn this way."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[chat_id] = (answer, future)
        return future

    def _answered(self, chat_id: Any, answer: Answer) -> None:
        waiting = self._waiting.get(chat_id)
        if waiting and waiting[0] == answer and not waiting[1].done():
            waiting[1].set_result(None)
            del self._waiting[chat_id]

    async def _api_sendmessage(self, p: JSON) -> JSON:
        message = await super()._api_sendmessage(p)
        if p.get("reply_markup"):
            self._answered(p["chat_id"], "send")
        return message

    async def _api_editmessagereplymarkup(self, p: JSON) -> JSON | bool:
        result = await super()._api_editmessagereplymarkup(p)
        if p.get("reply_markup"):
            self._answered(p.get("chat_id"), "edit")
        return result


def press(tg: FakeTelegram, chat_id: int, label: str) -> None:
    """Press the button labelled exactly ``label`` on the bot's last message."""
    message = tg.last_message(chat_id)
    if message is None:
        raise LookupError("the bot has not written in this chat")
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    button = next((b for row in rows for b in row if b["text"] == label), None)
    if button is None:
        raise LookupError(f"no button labelled {label!r}")
    tg.push_callback(chat_id, button["callback_data"], message_id=message["message_id"])


def act(tg: FakeTelegram, chat_id: int, turn: Turn) -> None:
    """Do one turn: type, send a command, or press a button."""
    if turn.action == "say" and turn.text.startswith("/"):
        tg.push_command(chat_id, turn.text)
    elif turn.action == "say":
        tg.push_message(chat_id, turn.text)
    else:
        press(tg, chat_id, turn.text)


@dataclass
class Outcome:
    """How one enquirer's conversation went."""

    turns: int = 0
    completed: bool = False
    error: str = ""


async def converse(tg: BenchTelegram, chat_id: int) -> Outcome:
    """One enquirer: each turn, act, then wait for the bot's answer (like a person)."""
    outcome = Outcome()
    try:
        for turn in script():
            answered = tg.expect(chat_id, "edit" if turn.action == "tick" else "send")
            act(tg, chat_id, turn)
            await asyncio.wait_for(answered, TURN_TIMEOUT)
            outcome.turns += 1
        # The confirmation is the message that answered the last turn (others may follow).
        outcome.completed = any(confirmation_mark() in t for t in tg.sent_texts(chat_id)[-3:])
        if not outcome.completed:
            outcome.error = "the last reply was not a confirmation"
    except (TimeoutError, LookupError) as error:
        outcome.error = f"turn {outcome.turns + 1}: {type(error).__name__} {error}".strip()
    return outcome


@dataclass
class Phase:
    """A batch of conversations: how long it took and what the parent spent on it."""

    wall_s: float
    driver_cpu_s: float
    outcomes: list[Outcome]
    machine_busy_s: float = 0.0  # CPU seconds every process on the machine used (all cores)

    @property
    def completed(self) -> int:
        """Conversations that ended in a confirmation."""
        return sum(o.completed for o in self.outcomes)

    @property
    def failed(self) -> int:
        """Conversations that did not."""
        return len(self.outcomes) - self.completed


def machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def run_phase(
    tg: BenchTelegram, first_chat: int, count: int, *, concurrent: bool = True
) -> Phase:
    """``count`` enquirers from chat ``first_chat`` on, all at once or one after another."""
    cpu, start, busy = time.process_time(), time.perf_counter(), machine_busy_s()
    if concurrent:
        outcomes = list(await asyncio.gather(*(converse(tg, first_chat + i) for i in range(count))))
    else:
        outcomes = [await converse(tg, first_chat + i) for i in range(count)]
    return Phase(
        time.perf_counter() - start,
        time.process_time() - cpu,
        outcomes,
        machine_busy_s() - busy,
    )
