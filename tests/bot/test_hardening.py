"""What a stranger (or a flood) can throw at `helpline run`'s HTTP server, and what
enquirers' words can do downstream: the real service, real PTB, Bolt and slack_sdk,
against the fake Telegram and Slack servers on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.settings import Settings
from storage import db
from storage.models import Base, CaseEvent, ProcessedUpdate, TranscriptEntry
from tests.conftest import POSTGRES_URL
from tests.fakes.slack_api import (
    block_action_body,
    event_body,
    post_signed,
    signed_headers,
    view_submission_body,
)
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_api import FakeTelegram
from tests.support.slack_desk import (
    DESK,
    ENQUIRER,
    SECRET,
    desk,
    reply_values,
    submitted_case,
)
from tests.support.telegram import running, say, settings_for

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


WEBHOOK_SECRET = "hook-secret"
EVIL = "Follow <!channel> <@U999> <https://evil.example/login|Click to verify>"
RAW = ("<!channel>", "<@U999>", "<https://evil.example")


def webhook(tg: FakeTelegram, database_url: str, **changes: Any) -> Settings:
    return settings_for(
        tg,
        database_url,
        telegram_webhook_url="https://helpline.example.org/telegram/webhook",
        telegram_webhook_secret=WEBHOOK_SECRET,
        **changes,
    )


def hook_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.http_port}/telegram/webhook"


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(url) as response,
    ):
        return response.status, await response.json()


# -- 4. one flooding chat ------------------------------------------------------------------


async def test_webhook_flooding_chat_does_not_hold_up_another(database_url: str) -> None:
    """Chat A's 50 messages (more than Telegram's default 40 connections) queue behind its
    first, whose reply is held, without holding Telegram's connections: chat B is
    answered meanwhile. Telegram is told how many connections to use."""
    flooder, other = 7001, 7002
    async with FakeTelegram() as tg:
        settings = webhook(tg, database_url, telegram_webhook_connections=4)
        async with running(settings, tg):
            tg.push_to_webhook(hook_url(settings))
            await say(tg, flooder, "/start")
            release = tg.hold_sends(flooder)
            try:
                for n in range(50):
                    tg.push_message(flooder, f"message {n}")
                tg.push_command(other, "/start")
                await tg.wait_for_text(other, "who are you contacting us as", timeout=15)
                assert len(tg.sent_texts(flooder)) == 1  # A still held, B not kept waiting
            finally:
                release.set()
            await tg.wait_for(lambda t: len(t.sent_texts(flooder)) == 51, timeout=30)
    assert set(tg.webhook_statuses) == {200}
    assert tg.webhook is not None and tg.webhook.get("max_connections") == 4


# -- 5. bodies too large, before they are read --------------------------------------------


async def post_raw(
    port: int, path: str, headers: dict[str, str], total: int, *, chunked: bool
) -> tuple[int, int]:
    """POST ``total`` bytes as fast as the server takes them; returns (status, bytes sent).

    Stops sending as soon as the answer arrives, like any client would."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)}
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    head += [f"{k}: {v}" for k, v in framing.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    answer = asyncio.ensure_future(reader.readline())
    piece = b"0" * 65536
    data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    sent = 0
    try:
        while sent < total and not answer.done():
            writer.write(data)
            drained = asyncio.ensure_future(writer.drain())
            await asyncio.wait({drained, answer}, return_when=asyncio.FIRST_COMPLETED)
            if not drained.done():
                drained.cancel()
                break
            sent += len(piece)
    except (ConnectionError, OSError):
        pass
    status_line = await asyncio.wait_for(answer, 20)
    writer.close()
    return int(status_line.split()[1]), sent


MB = 1_000_000


async def test_slack_events_refuses_big_unsigned_or_forged_bodies_unread(tmp_path: Path) -> None:
    async with desk(sqlite_url(tmp_path)) as d:
        port = d.settings.http_port
        unsigned = {"Content-Type": "application/json"}
        status, sent = await post_raw(port, "/slack/events", unsigned, 100 * MB, chunked=False)
        assert status == 401 and sent < 20 * MB
        forged = {
            **unsigned,
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        }
        status, sent = await post_raw(port, "/slack/events", forged, 100 * MB, chunked=True)
        assert status == 413 and sent < 20 * MB
        status, sent = await post_raw(port, "/slack/events", forged, 100 * MB, chunked=False)
        assert status == 413 and sent < 20 * MB
        code, health = await get_json(f"http://127.0.0.1:{port}/healthz")
        assert code == 200, health


async def test_telegram_webhook_refuses_a_huge_body_before_reading_it(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        settings = webhook(tg, sqlite_url(tmp_path))
        async with running(settings, tg):
            headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
            port, path = settings.http_port, "/telegram/webhook"
            status, sent = await post_raw(port, path, headers, 200 * MB, chunked=True)
            assert status == 413 and sent < 20 * MB
            status, sent = await post_raw(port, path, headers, 200 * MB, chunked=False)
            assert status == 413 and sent < 20 * MB
            status, sent = await post_raw(port, path, {}, 200 * MB, chunked=False)
            assert status == 403 and sent < 20 * MB


# -- 6. replayed interactions -------------------------------------------------------------


async def test_slack_replayed_reply_submission_is_delivered_once(database_url: str) -> None:
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        values = reply_values("We are on it.")
        meta = json.dumps({"reference": reference, "channel": DESK})
        body = view_submission_body("reply_modal", values, meta, user_id="U1", user_name="sam")
        headers = signed_headers(SECRET, body)
        async with aiohttp.ClientSession() as http:
            for _ in range(2):  # the very same signed request, twice
                async with http.post(d.events_url, data=body.encode(), headers=headers) as resp:
                    assert resp.status == 200
        await d.tg.wait_for_text(ENQUIRER, "We are on it.")
        # The replay was refused before Bolt saw it: nothing of it can still be running.
        assert [a for _, a in await d.events()] == ["reply"]
    assert sum("We are on it." in t for t in d.tg.sent_texts(ENQUIRER)) == 1


async def test_slack_holder_pressing_claim_again_is_told_they_hold_it(database_url: str) -> None:
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        assert await d.press("claim", reference) == 200
        await d.slack.wait_for(lambda s: any("Contact details" in e["text"] for e in s.ephemerals))
        assert await d.press("claim", reference) == 200
        await d.slack.wait_for(lambda s: any("You already hold" in e["text"] for e in s.ephemerals))
        assert not any("already claimed by" in e["text"] for e in d.slack.ephemerals)
        assert [a for _, a in await d.events()] == ["claim"]


# -- 7. nobody's words ping, mention or disguise a link -----------------------------------


async def typed_enquiry(
    tg: FakeTelegram, *, subject: str, name: str = "skip", urgent: bool = False
) -> list[str]:
    await say(tg, ENQUIRER, "/start")
    answers = [
        "police",
        "not a school",
        "london",
        "a website",
        "grooming" if urgent else "cyberbullying",
        subject,
        "He wrote <!here> in a group chat.",
        "done",
        "no links",
        "no",
        "yes" if urgent else "no",
        "email",
        "officer@police.example.uk",
        name,
    ]
    for answer in answers:
        await say(tg, ENQUIRER, answer)
    return await say(tg, ENQUIRER, "send")


def assert_escaped(mrkdwn: str) -> None:
    for raw in RAW:
        assert raw not in mrkdwn, mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn


async def test_slack_enquirer_text_is_escaped_everywhere_it_reaches(database_url: str) -> None:
    async with desk(database_url) as d:
        await typed_enquiry(d.tg, subject=EVIL, name="<!everyone> Jo")
        await d.slack.wait_for(lambda s: s.messages(DESK))
        card = d.cards()[0]
        assert_escaped(card["text"])  # the notification text, not only the blocks
        header = card["blocks"][0]["text"]
        assert header["type"] == "plain_text" and "<!channel>" in header["text"]
        assert "&lt;" not in header["text"]  # plain text is shown as is: not entity-escaped
        body = json.dumps([b for b in card["blocks"][1:]])
        assert "<!here>" not in body and "&lt;!here&gt;" in body

        await say(d.tg, ENQUIRER, EVIL)  # a follow-up lands in the thread
        await d.slack.wait_for(lambda s: s.thread(DESK, card["ts"]), description="the note")
        assert_escaped(d.slack.thread(DESK, card["ts"])[0]["text"])

        reference = (await d.case()).reference
        assert await d.press("claim", reference) == 200
        await d.slack.wait_for(lambda s: any("Contact details" in e["text"] for e in s.ephemerals))
        contact = next(e["text"] for e in d.slack.ephemerals if "Contact details" in e["text"])
        assert "<!everyone>" not in contact and "&lt;!everyone&gt; Jo" in contact


async def test_slack_on_call_page_escapes_the_subject(database_url: str) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.support.clock import Clock

    night = Clock(datetime(2026, 11, 28, 23, 0, tzinfo=ZoneInfo("Europe/London")))
    async with desk(database_url, night) as d:
        await typed_enquiry(d.tg, subject=EVIL, urgent=True)
        await d.slack.wait_for(
            lambda s: any("<!subteam^S0ONCALL>" in m.get("text", "") for m in s.messages(DESK))
        )
        page = next(m for m in d.cards() if "<!subteam^S0ONCALL>" in m.get("text", ""))
    assert_escaped(page["text"])


# -- 9. NUL and other control characters ---------------------------------------------------


async def test_telegram_message_with_nul_is_handled_not_resent_forever(database_url: str) -> None:
    """PostgreSQL refuses NUL in text: it is taken out as the message comes in."""
    async with FakeTelegram() as tg:
        settings = webhook(tg, database_url)
        async with running(settings, tg):
            tg.push_to_webhook(hook_url(settings))
            await say(tg, ENQUIRER, "/start")
            texts = await say(tg, ENQUIRER, "Pol\x00ice\x07")
            assert any("setting" in t.lower() for t in texts), texts
            await tg.wait_for(lambda t: not t.queued, timeout=10)
    assert set(tg.webhook_statuses) == {200}
    engine = db.create_engine(database_url)
    async with engine.connect() as conn:
        said = (
            (
                await conn.execute(
                    select(TranscriptEntry.text).where(TranscriptEntry.sender == "enquirer")
                )
            )
            .scalars()
            .all()
        )
    await engine.dispose()
    assert "Police" in said


# -- 10. an honest health check ------------------------------------------------------------


async def drop_everything(database_url: str) -> None:
    """The database dropped and recreated empty under the running service."""
    engine = db.create_engine(database_url)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        else:  # children before parents, as foreign keys need
            for table in [*reversed(Base.metadata.sorted_tables)]:
                await conn.execute(text(f'DROP TABLE "{table.name}"'))
            await conn.execute(text("DROP TABLE alembic_version"))
    await engine.dispose()


async def test_healthz_says_when_the_schema_is_gone(database_url: str) -> None:
    async with FakeTelegram() as tg:
        settings = settings_for(tg, database_url)
        async with running(settings, tg):
            health = f"http://127.0.0.1:{settings.http_port}/healthz"
            code, body = await get_json(health)
            assert code == 200 and body["ok"] and body["problems"] == []
            await drop_everything(database_url)
            code, body = await get_json(health)
            assert code == 503 and not body["ok"]
            assert "no schema" in " ".join(body["problems"])


async def test_healthz_says_when_outbox_rows_cannot_be_sent(database_url: str) -> None:
    async with desk(database_url, outbox_stuck_seconds=0.3) as d:
        health = f"http://127.0.0.1:{d.settings.http_port}/healthz"
        d.slack.go_down()
        await typed_enquiry(d.tg, subject="Abuse site")
        for _ in range(600):  # stuck first, then stuck with the reason once a send has failed
            code, body = await get_json(health)
            if code == 503 and "slack 503" in " ".join(body["problems"]):
                break
            await asyncio.sleep(0.05)
        assert code == 503 and "outbox row(s) waiting" in " ".join(body["problems"])
        assert "slack 503" in " ".join(body["problems"])
        d.slack.come_back()
        await d.slack.wait_for(lambda s: s.messages(DESK), timeout=15)
        # The card is out; what followed it (the thread's notes, the queue) goes next.
        for _ in range(600):
            code, body = await get_json(health)
            if code == 200:
                break
            await asyncio.sleep(0.05)
        assert code == 200, body


async def test_healthz_counts_cards_waiting_for_an_unconfigured_slack_as_parked(
    database_url: str,
) -> None:
    """The embedded default has no Slack: its cards wait for it, which is not a fault."""
    async with FakeTelegram() as tg:
        settings = settings_for(tg, database_url, outbox_stuck_seconds=0.3)
        assert not settings.slack_enabled
        async with running(settings, tg):
            await typed_enquiry(tg, subject="Abuse site")
            await asyncio.sleep(0.5)  # past the stuck threshold
            code, body = await get_json(f"http://127.0.0.1:{settings.http_port}/healthz")
            metrics = f"http://127.0.0.1:{settings.http_port}/metrics"
            async with aiohttp.ClientSession() as client, client.get(metrics) as response:
                scraped = await response.text()
        assert code == 200 and body["problems"] == [], body
        assert body["outbox"]["parked"] >= 1 and body["outbox"]["stuck"] == 0
        gauges = {
            s.name: s.value
            for family in text_string_to_metric_families(scraped)
            for s in family.samples
        }
        assert gauges["helpline_outbox_parked"] >= 1 and gauges["helpline_outbox_pending"] == 0


@pytest.mark.skipif(not POSTGRES_URL, reason="HELPLINE_TEST_POSTGRES_URL not set")
async def test_healthz_answers_in_time_when_the_database_never_answers(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a database that hangs is a network database")
    url = make_url(database_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy, FakeTelegram() as tg:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = settings_for(tg, through, health_timeout_seconds=0.5)
        async with running(settings, tg):
            health = f"http://127.0.0.1:{settings.http_port}/healthz"
            assert (await get_json(health))[0] == 200
            proxy.freeze()
            code, body = await get_json(health)  # the client gives up after 10 s
            assert code == 503 and "did not answer within 0.5 s" in body["problems"][0]
            code, _ = await get_json(health)  # a second look does not pile up behind the first
            assert code == 503
            proxy.thaw()
            for _ in range(200):
                if (await get_json(health))[0] == 200:
                    break
                await asyncio.sleep(0.05)
            assert (await get_json(health))[0] == 200


# -- 11. malformed input gets 4xx, never 500 -----------------------------------------------


async def test_telegram_webhook_malformed_bodies_get_400(tmp_path: Path) -> None:
    bodies = [
        b"[]",
        b'"x"',
        b"null",
        b'{"update_id": 5, "message": "x"}',
        b'{"update_id": "5"}',
        b'{"update_id": true}',
        b'{"update_id": 5, "callback_query": []}',
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe not text",
    ]
    async with FakeTelegram() as tg:
        settings = webhook(tg, sqlite_url(tmp_path))
        async with running(settings, tg), aiohttp.ClientSession() as http:
            for body in bodies:
                headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
                async with http.post(hook_url(settings), data=body, headers=headers) as resp:
                    assert resp.status == 400, body[:40]


async def test_slack_malformed_requests_get_4xx(tmp_path: Path) -> None:
    async with desk(sqlite_url(tmp_path)) as d:
        reference = await submitted_case(d)
        press = block_action_body(
            "claim", reference, user_id="U1", user_name="sam", channel_id=DESK, message_ts="1"
        )
        async with aiohttp.ClientSession() as http:
            headers = {**signed_headers(SECRET, press), "X-Slack-Request-Timestamp": "soon"}
            async with http.post(d.events_url, data=press.encode(), headers=headers) as resp:
                assert resp.status == 401
        no_actions = rewrite(press, lambda p: p.update(actions=[]))
        view = view_submission_body("reply_modal", {}, "{}", user_id="U1", user_name="sam")
        no_state = rewrite(view, lambda p: p["view"].pop("state"))
        for body in ("payload=notjson", "payload=%5B%5D", no_actions, no_state, "{", "[]"):
            response = await post_signed(d.events_url, body, SECRET)
            assert 400 <= response.status < 500, body[:60]
        assert await d.events() == []
        assert (await d.case()).claimed_by is None


def rewrite(body: str, change: Callable[[dict[str, Any]], object]) -> str:
    """A form-encoded interaction with its payload changed."""
    payload = json.loads(parse_qs(body)["payload"][0])
    change(payload)
    return urlencode({"payload": json.dumps(payload)})


# -- 13. small ones ------------------------------------------------------------------------


async def test_slack_thread_message_without_text_is_not_a_note_saying_none(
    database_url: str,
) -> None:
    async with desk(database_url) as d:
        await submitted_case(d)
        card_ts = d.cards()[0]["ts"]
        event = {"type": "message", "user": "U1", "text": None, "channel": DESK, "ts": "1.2"}
        body = event_body({**event, "thread_ts": card_ts}, event_id="EvNoText")
        assert (await post_signed(d.events_url, body, SECRET)).status == 200
        engine = db.create_engine(d.settings.database_url)
        try:
            for _ in range(500):  # until the event's transaction has run
                async with engine.connect() as conn:
                    seen = (
                        await conn.execute(
                            select(ProcessedUpdate).where(ProcessedUpdate.key == "EvNoText")
                        )
                    ).first()
                if seen:
                    break
                await asyncio.sleep(0.02)
            assert seen
            async with engine.connect() as conn:
                notes = (await conn.execute(select(CaseEvent.detail))).scalars().all()
        finally:
            await engine.dispose()
    assert notes == []


async def test_slack_text_with_nul_is_cleaned_before_it_is_stored(database_url: str) -> None:
    """A practitioner's note or reply carrying NUL would fail on PostgreSQL: cleaned first."""
    async with desk(database_url) as d:
        reference = await submitted_case(d)
        card_ts = d.cards()[0]["ts"]
        note = {"type": "message", "user": "U1", "text": "Called the\x00 school.", "channel": DESK}
        body = event_body({**note, "ts": "1.3", "thread_ts": card_ts}, event_id="EvNul")
        assert (await post_signed(d.events_url, body, SECRET)).status == 200
        values = reply_values("We\x00 are on it.")
        assert await d.submit("reply_modal", values, reference) == 200
        await d.tg.wait_for_text(ENQUIRER, "We are on it.")
        engine = db.create_engine(d.settings.database_url)
        try:
            for _ in range(500):
                async with engine.connect() as conn:
                    details = (await conn.execute(select(CaseEvent.detail))).scalars().all()
                if "Called the school." in details:
                    break
                await asyncio.sleep(0.02)
        finally:
            await engine.dispose()
    assert "Called the school." in details and "We are on it." in details
