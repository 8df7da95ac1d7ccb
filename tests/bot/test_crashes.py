"""`helpline run` killed with SIGKILL between two steps, then started again, against the
fake Telegram and Slack servers: nothing it had taken on is lost or sent twice, and the
restarted service catches up within one lease (not minutes later)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.keys import DATA_KEY
from tests.support.paths import ROOT
from tests.support.telegram import complete_enquiry, free_port, press, say

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"

SECRET = "crash-test-secret"
DESK = "C0DESK"


def service_env(
    tg: FakeTelegram, database_url: str, slack: FakeSlack | None = None, *, webhook: bool = False
) -> dict[str, str]:

    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "HELPLINE_", "SLACK_"))
        },
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "TELEGRAM_CHAT_RATE": "1000",
        "TELEGRAM_CHAT_BURST": "1000",
        "HELPLINE_DATABASE_URL": database_url,
        "HELPLINE_DATA_KEY": DATA_KEY,
        "HELPLINE_HTTP_PORT": str(free_port()),
        "HELPLINE_LEASE_SECONDS": "1",
        "HELPLINE_OUTBOX_POLL_SECONDS": "0.05",
        "HELPLINE_OUTBOX_BACKOFF_SECONDS": "0.05",
        "PYTHONPATH": str(ROOT),
    }
    if webhook:
        env |= {
            "TELEGRAM_WEBHOOK_URL": "https://helpline.example.org/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
        }
    if slack is not None:
        env |= {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_CHANNEL_ID": DESK,
            "SLACK_API_URL": slack.base_url,
        }
    return env


@contextmanager
def service(env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "run"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def reference_in(texts: list[str]) -> str:
    return next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]


def cards_for(slack: FakeSlack, reference: str) -> int:
    """Cards of the case, by their header (a card names linked cases further down)."""
    return sum(reference in json.dumps((m.get("blocks") or [{}])[0]) for m in slack.messages(DESK))


async def started(tg: FakeTelegram, method: str, since: int) -> None:
    """Until a (re)started service has called ``method`` once more than ``since`` times."""
    await tg.wait_for(lambda t: len(t.calls_of(method)) > since, timeout=30)


async def test_kill_during_card_post_posts_it_once_and_catches_up_fast(
    database_url: str, tmp_path: Path
) -> None:
    """SIGKILL while chat.postMessage is in flight (Slack has the card, we never heard
    back): after the restart that card is not posted again, and a case submitted right
    after the restart reaches Slack within seconds."""
    async with FakeTelegram() as tg, FakeSlack() as slack:
        env = service_env(tg, database_url, slack)
        with service(env, tmp_path) as first:
            await started(tg, "getUpdates", 0)
            slack.hold("chat.postMessage")
            before = await complete_enquiry(tg, 9001)
            await slack.wait_for(lambda s: s.messages(DESK), timeout=20, description="a card")
            kill(first)
        slack.release("chat.postMessage")
        with service(env, tmp_path):
            await started(tg, "deleteWebhook", 1)
            after = await complete_enquiry(tg, 9002)
            await slack.wait_for(
                lambda s: cards_for(s, reference_in(after)) == 1, timeout=20, description="card 2"
            )
            await slack.wait_for(lambda s: s.calls_of("conversations.history"), timeout=20)
    assert cards_for(slack, reference_in(before)) == 1
    assert len(slack.messages(DESK)) == 2


async def test_kill_after_the_turn_is_saved_still_sends_its_reply(
    database_url: str, tmp_path: Path
) -> None:
    """The scenario of the bug: sendMessage answers 429 retry_after 30, a button is
    pressed, the service is SIGKILLed while it waits, and restarted. The turn was saved
    (Telegram's resend is a duplicate), and its reply still arrives."""
    chat = 9101
    async with FakeTelegram() as tg:
        env = service_env(tg, database_url, webhook=True)
        url = f"http://127.0.0.1:{env['HELPLINE_HTTP_PORT']}/telegram/webhook"
        with service(env, tmp_path) as first:
            await started(tg, "setWebhook", 0)
            tg.push_to_webhook(url)
            await say(tg, chat, "/start")
            tg.fail_next("sendMessage", status=429, retry_after=30)
            press(tg, chat, "School or college staff")
            await tg.wait_for(
                lambda t: any(c.status == 429 for c in t.calls_of("sendMessage")), timeout=20
            )
            kill(first)
        with service(env, tmp_path):
            await started(tg, "setWebhook", 1)
            await tg.wait_for_text(chat, "Which of these fits best", timeout=20)
            await tg.wait_for(lambda t: not t.queued, timeout=20)
    asked = [t for t in tg.sent_texts(chat) if "Which of these fits best" in t]
    assert len(asked) == 1
