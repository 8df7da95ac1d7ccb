"""The web chat's socket protocol (bot/web/PROTOCOL.md), spoken by the real `websockets`
client to the whole service on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from storage import db
from storage import web as web_store
from storage.models import Case, OutboxMessage, TranscriptEntry, WebMessage, WebSession
from tests.fakes.telegram_api import FakeTelegram
from tests.support.webchat import (
    DESK,
    chat_at_first_question,
    client_for,
    complete_enquiry,
    echoes_refused,
    page_on_chat,
    reference_in,
    serving,
    web_service,
    web_settings,
)

pytestmark = pytest.mark.e2e


async def test_web_enquiry_becomes_a_case_with_its_slack_card(database_url: str) -> None:
    async with web_service(database_url, slack=True) as service:
        client = client_for(service)
        await client.open()
        texts = await complete_enquiry(client)
        reference = reference_in(texts)
        assert service.slack is not None
        await service.slack.wait_for(
            lambda s: any(reference in json.dumps(c) for c in s.messages(DESK)), timeout=10
        )
        async with service.helpline.core.sessions() as session:
            case = (await session.execute(select(Case))).scalars().one()
        assert (case.channel, case.reference) == ("web", reference)
        # Every message was numbered once, in order, with no gap (the client checks gaps).
        assert [m["seq"] for m in client.messages] == list(range(1, len(client.messages) + 1))
        await client.close()


async def test_web_resend_of_a_message_is_taken_once(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = await chat_at_first_question(service)
        first = await client.turn(
            {"type": "say", "text": "fake account of our school"}, client_id="a1"
        )
        again = await client.turn(
            {"type": "say", "text": "fake account of our school"}, client_id="a1"
        )
        assert (first["duplicate"], again["duplicate"]) == (False, True)
        mine = [m for m in client.messages if m["from"] == "you"]
        assert [m["text"] for m in mine] == ["fake account of our school"]
        await client.close()


async def test_web_reconnect_resumes_after_the_last_message_seen(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        seen = client.last
        await client.close()
        # Meanwhile the enquirer's other tab (same token) answers the next question.
        other = client_for(service, token=client.token, last=seen - 1)
        await other.open()
        await other.tap_after_question("Teacher")
        await other.close()
        mark = len(client.frames)
        await client.open()
        await client.until(lambda f: f["type"] == "message" and f["seq"] == other.last)
        resumed = [f["seq"] for f in client.frames[mark:] if f["type"] == "message"]
        assert resumed == list(range(seen + 1, other.last + 1))  # no gap, no repeat
        # after=0 replays the whole conversation, numbered from 1.
        fresh = client_for(service, token=client.token)
        await fresh.open(after=0)
        await fresh.until(lambda f: f["type"] == "message" and f["seq"] == other.last)
        assert [m["seq"] for m in fresh.messages] == list(range(1, other.last + 1))
        assert fresh.texts() == [m["text"] for m in sorted(_all(client, other), key=_seq)]
        await client.close()
        await fresh.close()


def _seq(message: dict[str, object]) -> int:
    seq = message["seq"]
    assert isinstance(seq, int)
    return seq


def _all(*clients: object) -> list[dict[str, object]]:
    found: dict[int, dict[str, object]] = {}
    for client in clients:
        for message in getattr(client, "messages"):  # noqa: B009
            found[message["seq"]] = message
    return list(found.values())


async def test_web_chat_survives_a_restart_of_the_service(database_url: str) -> None:
    async with FakeTelegram() as tg:
        settings = web_settings(tg, database_url)
        async with serving(settings) as service:
            client = client_for(service)
            await client.open()
            await client.tap_after_question("School or college staff")
            seen = client.last
        await client.close()  # the service is gone; the browser reconnects to the new one
        async with serving(settings) as restarted:
            welcome = await client.open()
            assert welcome["reset"] is False
            await client.tap("Teacher")
            numbers = [m["seq"] for m in client.messages]
            assert numbers == list(range(1, len(numbers) + 1)) and client.last > seen
            await client.close()
            assert restarted.helpline.web is not None


async def test_web_practitioner_reply_arrives_live_and_after_reopening(database_url: str) -> None:
    async with web_service(database_url, slack=True) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        desk = service.helpline.core.desk
        result = await desk.reply(reference, "sam", "Thanks, we have reported the account.")
        assert result.ok
        service.helpline.core.wakeup.set()
        live = await client.until(lambda f: f.get("from") == "practitioner")
        assert "we have reported the account" in live["text"]
        await client.close()
        # The chat was kept on the device: reopening it shows the reply again (replay).
        reopened = client_for(service, token=client.token)
        await reopened.open(after=0)
        await reopened.until(lambda f: f.get("from") == "practitioner")
        await reopened.close()


async def test_web_message_written_by_another_process_reaches_the_socket(
    database_url: str,
) -> None:
    """What a second replica's outbox worker writes is found by polling the database."""
    async with web_service(database_url) as service:
        client = await chat_at_first_question(service)
        async with service.helpline.core.sessions() as session:
            chat_id = (await session.execute(select(WebSession.chat_id))).scalar_one()
        other = db.create_engine(database_url)  # another process's connections
        try:
            async with db.session_factory(other)() as session, session.begin():
                await web_store.append(
                    session,
                    chat_id,
                    [("test:1", {"from": "practitioner", "text": "From the other replica"})],
                    service.helpline.core.clock(),
                )
        finally:
            await other.dispose()
        arrived = await client.until(lambda f: f.get("from") == "practitioner")
        assert arrived["text"] == "From the other replica"
        await client.close()


async def test_web_replies_reach_a_browser_on_another_replica(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two replicas need PostgreSQL (SQLite is single-process)")
    async with web_service(database_url, slack=True) as first:
        second_settings = first.settings.model_copy(update={"http_port": _port()})
        async with serving(second_settings) as second:
            on_first = client_for(first)
            await on_first.open()
            reference = reference_in(await complete_enquiry(on_first))
            await on_first.close()
            on_second = client_for(second, token=on_first.token, last=on_first.last)
            await on_second.open()
            assert (await second.helpline.core.desk.reply(reference, "sam", "Reply one")).ok
            await on_second.until(
                lambda f: (
                    f.get("text", "").endswith("Reply one") or "Reply one" in f.get("text", "")
                )
            )
            assert (await first.helpline.core.desk.reply(reference, "sam", "Reply two")).ok
            first.helpline.core.wakeup.set()
            await on_second.until(lambda f: "Reply two" in f.get("text", ""))
            await on_second.close()


def _port() -> int:
    from tests.support.telegram import free_port

    return free_port()


async def test_web_socket_refuses_a_page_from_another_site(database_url: str) -> None:
    async with web_service(database_url, web_origins="https://www.helpline.example") as service:
        with pytest.raises(InvalidStatus) as refused:
            await connect(service.socket_url, origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        listed = client_for(service)
        listed.origin = "https://www.helpline.example"
        assert (await listed.open())["type"] == "welcome"
        await listed.close()


async def test_web_attachments_and_oversized_text_are_refused_kindly(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = await chat_at_first_question(service)
        refused = await client.turn({"type": "attachment"})
        assert refused["type"] == "notice" and "nothing was sent" in refused["text"]
        assert "removed" not in refused["text"]
        assert client.ws is not None
        await client.ws.send(b"\x89PNG\r\n\x1a\n")  # a binary frame: an image's bytes
        binary = await client.until(lambda f: f["type"] == "notice" and "id" not in f)
        assert "nothing was sent" in binary["text"]
        long = await client.turn({"type": "say", "text": "x" * 5000})
        assert long["type"] == "notice" and "too long" in long["text"]
        await client.close()
        async with service.helpline.core.sessions() as session:
            said = (await session.execute(select(TranscriptEntry.text))).scalars().all()
        assert not any("x" * 100 in s for s in said)


async def test_web_sender_too_fast_is_asked_to_wait(database_url: str) -> None:
    async with web_service(database_url, web_session_rate=3) as service:
        client = await chat_at_first_question(service)
        answers = [await client.say(f"message {n}") for n in range(4)]
        assert [a["type"] for a in answers] == ["ack", "ack", "ack", "notice"]
        assert "wait a moment" in answers[-1]["text"]
        await client.close()


async def test_web_stale_button_is_answered_not_taken(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        before = len(client.messages)
        stale = await client.turn({"type": "choose", "option": "school", "question": "role_group"})
        assert stale["type"] == "ack"
        said = client.texts(before)
        assert "moved on" in " ".join(said) and said[-1] == "Which of these fits best?"
        await client.close()


async def test_web_quick_exit_ends_the_session_on_the_server(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        await client.close()
        async with httpx.AsyncClient(base_url=service.base) as http:
            left = await http.post(
                "/chat/exit", content=client.token, headers={"content-type": "text/plain"}
            )
        assert left.status_code == 204
        async with httpx.AsyncClient(base_url=service.base) as http:
            huge = await http.post("/chat/exit", content=b"x" * 100_000)
        assert huge.status_code == 413
        async with service.helpline.core.sessions() as session:
            shown = (await session.execute(select(func.count()).select_from(WebMessage))).scalar()
            sessions = (
                await session.execute(select(func.count()).select_from(WebSession))
            ).scalar()
        assert (shown, sessions) == (0, 0)
        # The old token opens nothing: a new, empty chat starts instead.
        old = client.token
        client.last = 0
        welcome = await client.open()
        assert welcome["reset"] is True and welcome["token"] != old
        await client.close()


async def test_web_session_token_is_stored_only_hashed(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.close()
        async with service.helpline.core.sessions() as session:
            stored = (await session.execute(select(WebSession))).scalars().one()
        assert client.token and client.token not in stored.token_hash
        assert stored.token_hash == web_store.token_hash(client.token)
        retention = timedelta(days=service.settings.retention_days)
        assert stored.expires_at - stored.created_at == retention


async def test_web_page_is_never_cached_and_allows_no_inline_script(database_url: str) -> None:
    async with web_service(database_url, web_origins="https://www.helpline.example") as service:
        async with httpx.AsyncClient(base_url=service.base) as http:
            page = await http.get("/chat")
            widget = await http.get("/chat/widget.js")
            unknown = await http.get("/chat/static/../settings.py")
            missing = await http.get("/chat/static/nothing.js")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'self' https://www.helpline.example" in policy
        assert "<script>" not in page.text and 'src="/chat/static/chat.js"' in page.text
        assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
        assert unknown.status_code == 404 and missing.status_code == 404


async def test_web_socket_without_hello_is_closed(database_url: str) -> None:
    async with web_service(database_url) as service:
        ws = await connect(service.socket_url, origin=service.base)  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "say", "id": "1", "text": "hi"}))
        await asyncio.wait_for(ws.wait_closed(), timeout=5)
        assert ws.close_code == 1008


async def test_web_cancel_deletes_what_the_enquirer_wrote_from_the_chat_too(
    database_url: str,
) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        await client.say("a fake account of our head teacher")
        await client.turn({"type": "command", "command": "cancel"})
        forgotten = await client.until(lambda f: f["type"] == "forgotten")
        assert forgotten["text"] == "(deleted)"
        await client.close()
        replay = await page_on_chat(service, client)
        mine = [m["text"] for m in replay.messages if m["from"] == "you"]
        assert "a fake account of our head teacher" not in mine and "(deleted)" in mine
        await replay.close()


async def test_web_turn_and_what_the_chat_shows_of_it_are_kept_together(
    database_url: str,
) -> None:
    """A turn whose messages could not be stored is not taken either: the browser's resend
    is then taken as new, so the chat shows it (and, for a cancel, blanks what was
    written). Kept apart, a process dying between the two lost them for good: the resend
    was a duplicate, and the enquirer's words stayed in the chat they had cancelled."""
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        await client.say("a fake account of our head teacher")
        cancel = {"type": "command", "command": "cancel"}
        async with echoes_refused(database_url):
            refused = await client.turn(cancel, client_id="cancel-1")
        assert refused["type"] == "notice" and refused["retry"] is True
        again = await client.turn(cancel, client_id="cancel-1")  # as the page resends it
        assert again["type"] == "ack" and again["duplicate"] is False
        await client.until(lambda f: f["type"] == "forgotten")
        await client.close()
        replay = await page_on_chat(service, client)
        mine = [m["text"] for m in replay.messages if m["from"] == "you"]
        assert "a fake account of our head teacher" not in mine
        assert mine == ["(deleted)"] * len(mine)  # the cancel too: what deletes is deleted
        await replay.close()


async def test_web_desk_message_sent_again_after_a_crash_is_shown_once(
    database_url: str,
) -> None:
    """A process that stored a practitioner's reply and died before marking its outbox
    row sent leaves the row for another to send again: the chat must not show it twice."""
    async with web_service(database_url, slack=True) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        core = service.helpline.core
        assert (await core.desk.reply(reference, "sam", "We have reported it.")).ok
        core.wakeup.set()
        await client.until(lambda f: f.get("from") == "practitioner")
        async with core.sessions() as session:
            row_id = await session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.kind == "enquirer.message")
            )
        assert row_id is not None
        await _until_sent(core.sessions, row_id)
        async with core.sessions() as session, session.begin():
            row = await session.get(OutboxMessage, row_id)
            assert row is not None
            row.sent_at, row.maybe_sent = None, True  # as the dead process left it
        core.wakeup.set()
        await _until_sent(core.sessions, row_id)
        async with core.sessions() as session:
            chat_id = (await session.execute(select(WebSession.chat_id))).scalar_one()
            shown = await web_store.after(session, chat_id, 0)
        assert [m.payload["from"] for m in shown].count("practitioner") == 1
        await client.close()


async def _until_sent(sessions: async_sessionmaker[AsyncSession], row_id: int) -> None:
    async def sent() -> None:
        while True:
            async with sessions() as session:
                row = await session.get(OutboxMessage, row_id)
                if row is not None and row.sent_at is not None:
                    return
            await asyncio.sleep(0.02)  # the database announces nothing: look again

    await asyncio.wait_for(sent(), timeout=10)


async def test_web_reply_to_a_chat_that_was_left_tells_the_desk(database_url: str) -> None:
    async with web_service(database_url, slack=True) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        await client.send({"type": "exit"})
        await client.until(lambda f: f["type"] == "ended")
        await client.close()
        assert (await service.helpline.core.desk.reply(reference, "sam", "Are you there?")).ok
        service.helpline.core.wakeup.set()
        assert service.slack is not None
        await service.slack.wait_for(
            lambda s: any(
                "Could not deliver" in json.dumps(m) and "closed" in json.dumps(m)
                for m in s.messages(DESK)
                + [r for c in s.messages(DESK) for r in s.thread(DESK, c["ts"])]
            ),
            timeout=10,
        )


async def test_web_chat_logs_nothing_anyone_wrote(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        secret = "Mrs Jones at Hillside school, 07700 900123"
        await client.say(secret)
        await client.say("x" * 5000)
        await client.close()
    # Libraries' DEBUG records (aiosqlite's dump SQL parameters) are dropped by the
    # service's logging filter (bot/logs.py); everything else must be clean as it is.
    ours = ("bot", "storage", "flows")
    kept = [r for r in caplog.records if r.levelno > logging.DEBUG or r.name.split(".")[0] in ours]
    logged = "\n".join(r.getMessage() for r in kept)
    assert logged, "nothing was logged at all: the check would prove nothing"
    assert "07700" not in logged and "Jones" not in logged and "xxxxxxxx" not in logged
    assert client.token is not None and client.token not in logged


async def test_web_socket_closes_on_a_frame_far_too_big(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        assert client.ws is not None
        await client.ws.send("x" * 400_000)
        await asyncio.wait_for(client.ws.wait_closed(), timeout=10)
        assert client.ws.close_code == 1009  # message too big: nothing of it was taken
        await client.close()


async def test_open_web_chats_are_counted_in_the_metrics(database_url: str) -> None:
    async def open_chats(service_url: str) -> float:
        async with httpx.AsyncClient() as http:
            body = (await http.get(f"{service_url}/metrics")).text
        line = next(x for x in body.splitlines() if x.startswith("helpline_web_chats_open "))
        return float(line.split()[1])

    async with web_service(database_url) as service:
        assert await open_chats(service.base) == 0
        first, second = client_for(service), client_for(service)
        await first.open()
        await second.open()
        assert await open_chats(service.base) == 2
        await first.close()
        await second.close()
        for _ in range(100):  # the server notices a closed socket a moment later
            if await open_chats(service.base) == 0:
                break
            await asyncio.sleep(0.05)
        assert await open_chats(service.base) == 0


async def test_the_web_chat_runs_without_telegram(database_url: str) -> None:
    async with FakeTelegram() as tg:
        settings = web_settings(tg, database_url, telegram_bot_token=None)
        async with serving(settings) as service:
            assert service.helpline.telegram is None
            client = client_for(service)
            await client.open()
            reference = reference_in(await complete_enquiry(client))
            await client.close()
            async with service.helpline.core.sessions() as session:
                case = (await session.execute(select(Case))).scalars().one()
        assert not tg.calls  # nothing was asked of Telegram
    assert (case.reference, case.channel) == (reference, "web")


async def test_web_asks_how_to_reply_saying_a_reply_here_needs_the_chat_kept(
    database_url: str,
) -> None:
    """A web chat the browser does not keep is gone when its tab closes, and with it any
    reply "here": the question says so, as Telegram's (whose chat stays) does not need to."""
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await complete_enquiry(client)
        (asked,) = [m for m in client.messages if m.get("question") == "reply_via"]
        assert asked["text"].startswith("How should we reply to you?\n")
        assert "Keep this chat on this device" in asked["text"] and "email" in asked["text"]
        await client.close()


async def test_web_a_child_signposted_sees_their_own_message_blanked_too(
    database_url: str,
) -> None:
    """The message that made the bot forget the conversation is forgotten with it."""
    async with web_service(database_url) as service:
        client = await chat_at_first_question(service)
        await client.say("a man online wants to meet me tonight and im 13")
        forgotten = await client.until(lambda f: f["type"] == "forgotten")
        assert forgotten["seq"] == client.last, "after the message it blanks"
        await client.close()
        replay = await page_on_chat(service, client)
        assert [m["text"] for m in replay.messages if m["from"] == "you"] == ["(deleted)"]
        assert "0800 1111" in json.dumps(replay.messages), "the help given stays"
        await replay.close()
