"""Erasure on request in the web chat ("Delete what I told you", or /delete typed): the
socket protocol spoken by the real `websockets` client to the whole service on loopback,
with the fake Slack desk, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from flows.privacy import Identity
from storage import audit
from storage import cases as case_store
from storage.models import Case, WebMessage, WebSession
from tests.support.webchat import (
    DESK,
    NUMBERED,
    ChatClient,
    WebService,
    chat_at_first_question,
    client_for,
    complete_enquiry,
    page_on_chat,
    reference_in,
    web_service,
)

pytestmark = pytest.mark.e2e
DESCRIPTION = "Someone set up an account pretending to be the school."
ERASED_ON_CARD = "the enquirer asked for it in the chat"


async def ask_to_delete(client: ChatClient) -> dict[str, Any]:
    """Press "Delete what I told you"; the confirmation it is answered with."""
    before = len(client.messages)
    ack = await client.turn({"type": "command", "command": "delete"})
    assert ack["type"] == "ack" and not ack["duplicate"], ack
    asked = client.messages[-1]
    assert len(client.messages) > before and asked["from"] == "bot"
    return asked


async def answer(client: ChatClient, confirmation: dict[str, Any], option: str) -> dict[str, Any]:
    """A button of the confirmation (``yes`` or ``no``), as the page sends it."""
    frame = {"type": "choose", "option": option, "question": confirmation["question"]}
    return await client.turn(frame)


async def stored_case(service: WebService, reference: str) -> Case | None:
    async with service.helpline.core.sessions() as session:
        return await case_store.get_case(session, reference)


async def trail(service: WebService) -> list[tuple[str, str, str, str | None]]:
    async with service.helpline.core.sessions() as session:
        entries = await audit.entries(session)
    return [(e.actor, e.action, e.channel, e.case_reference) for e in entries]


async def shown(service: WebService) -> str:
    """Everything the web chats' stored copies hold (what a replay would show)."""
    async with service.helpline.core.sessions() as session:
        payloads = (await session.execute(select(WebMessage.payload))).scalars()
        return json.dumps(list(payloads), ensure_ascii=False)


async def chat_of(service: WebService) -> str:
    async with service.helpline.core.sessions() as session:
        return (await session.execute(select(WebSession.chat_id))).scalars().one()


async def test_web_delete_asks_first_and_no_keeps_everything(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        asked = await ask_to_delete(client)
        assert "can't be undone" in asked["text"]
        assert [o["label"] for o in asked["options"]] == ["Yes, delete it", "No, keep it"]
        assert asked["question"].startswith("erase:") and asked["back"] is False
        mine = [m["text"] for m in client.messages if m["from"] == "you"]
        assert mine[-1] == "Delete what I told you"
        before = len(client.messages)
        kept = await answer(client, asked, "no")
        assert kept["type"] == "ack"
        said = client.messages[before:]
        assert [m["text"] for m in said[:2]] == ["No, keep it", "OK, nothing has been deleted."]
        # The question the confirmation covered is asked again, its buttons working.
        assert said[-1]["question"] == "role" and said[-1]["options"]
        assert (await client.tap("Teacher"))["type"] == "ack"
        assert client.question()["question"] == "setting"
        assert "School or college staff" in await shown(service)
        assert not [f for f in client.frames if f["type"] == "forgotten"]
        await client.close()


async def test_web_delete_yes_erases_the_chat_and_the_case_and_the_card_says_so(
    database_url: str,
) -> None:
    # Two whole enquiries in a minute: more than the chat's default rate allows.
    async with web_service(database_url, slack=True, web_session_rate=200) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        assert service.slack is not None
        await service.slack.wait_for(
            lambda s: any(reference in json.dumps(c) for c in s.messages(DESK)), timeout=10
        )
        asked = await ask_to_delete(client)
        mark = len(client.frames)
        done = await answer(client, asked, "yes")
        assert done["type"] == "ack" and not done["duplicate"]
        forgotten = await client.until(lambda f: f["type"] == "forgotten", start=mark)
        assert forgotten == {
            "type": "forgotten",
            "seq": forgotten["seq"],
            "text": "(deleted)",
            "all": True,
        }
        assert client.messages[-1]["seq"] > forgotten["seq"]  # what was said of it comes after
        said = client.messages[-1]["text"]
        assert "I've deleted what you told me" in said and reference in said
        assert "Start again" in said

        case = await stored_case(service, reference)
        assert case is not None and case.erased_at is not None
        assert (case.description, case.subject, case.contact_email) == (None, None, None)
        assert case.platform == "TikTok"  # the anonymous figures stay
        await service.slack.wait_for(
            lambda s: ERASED_ON_CARD in json.dumps(s.messages(DESK)), timeout=10
        )
        (card,) = service.slack.messages(DESK)
        assert DESCRIPTION not in json.dumps(card) and "not_our_school" not in json.dumps(card)
        assert ("enquirer", "erased_by_enquirer", "web", reference) in await trail(service)

        # Nothing the enquirer wrote, nor the bot's summary of it, is left to replay.
        stored = await shown(service)
        assert DESCRIPTION not in stored and "not_our_school" not in stored
        assert "Fake account using our logo" not in stored
        await client.close()
        replay = await page_on_chat(service, client)
        numbered = [f["seq"] for f in replay.frames if f["type"] in NUMBERED]
        assert numbered == list(range(1, client.last + 1))
        assert DESCRIPTION not in json.dumps(replay.messages)
        assert not [m for m in replay.messages[:-2] if m.get("options")]  # no old buttons

        # The chat works for a new enquiry afterwards.
        await replay.turn({"type": "command", "command": "restart"})
        again = reference_in(await complete_enquiry(replay))
        assert again != reference and (await stored_case(service, again)) is not None
        status = await replay.turn({"type": "command", "command": "status"})
        assert status["type"] == "ack" and again in replay.messages[-1]["text"]
        await replay.close()


async def test_web_stale_forged_and_resent_delete_answers_erase_nothing(
    database_url: str,
) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        other = await chat_at_first_question(service)  # another enquirer's session
        asked = await ask_to_delete(client)

        # A Yes with no confirmation asked in this chat, and a Yes to the other's.
        for forged in ("erase:00000000", asked["question"]):
            before = len(other.messages)
            ack = await other.turn({"type": "choose", "option": "yes", "question": forged})
            assert ack["type"] == "ack"
            assert [m["text"] for m in other.messages[before:]][-1].startswith(
                "That question has passed, so nothing has been deleted."
            )
        assert (await stored_case(service, reference)).description == DESCRIPTION  # type: ignore[union-attr]
        assert not [e for e in await trail(service) if e[1] == "erased_by_enquirer"]

        # Yes, then the same frame again (a resend), then a second Yes.
        yes = {"type": "choose", "option": "yes", "question": asked["question"]}
        first = await client.turn(yes, client_id="yes-1")
        erased = [e for e in await trail(service) if e[1] == "erased_by_enquirer"]
        assert first["duplicate"] is False and erased
        last = client.last
        resent = await client.turn(yes, client_id="yes-1")
        assert resent["duplicate"] is True and client.last == last
        second = await client.turn(yes)
        assert second["type"] == "ack" and client.messages[-1]["text"].startswith(
            "That question has passed"
        )
        assert [e for e in await trail(service) if e[1] == "erased_by_enquirer"] == erased
        # A No after the erasure is just as stale, and a resent request asks only once.
        assert (await answer(client, asked, "no"))["type"] == "ack"
        assert client.messages[-1]["text"].startswith("That question has passed")
        request = {"type": "command", "command": "delete"}
        count = len(client.messages)
        await client.turn(request, client_id="ask-1")
        await client.turn(request, client_id="ask-1")
        assert len(client.messages) == count + 2  # the echo and one confirmation
        await client.close()
        await other.close()


async def test_web_typed_delete_asks_for_confirmation_too(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        await client.say("a fake account of our head teacher")
        ack = await client.say("/Delete ")
        assert ack["type"] == "ack"
        asked = client.messages[-1]
        assert asked["question"].startswith("erase:") and "can't be undone" in asked["text"]
        assert client.messages[-2] == {**client.messages[-2], "from": "you", "text": "/Delete"}
        await answer(client, asked, "yes")
        stored = await shown(service)
        assert "head teacher" not in stored and "School or college staff" not in stored
        assert (
            "enquirer",
            "erased_by_enquirer",
            "web",
            None,
        ) in await trail(service)  # no case yet: the request is still on the record
        await client.close()


async def test_web_delete_waits_for_the_turn_being_handled(database_url: str) -> None:
    """The erasure takes the chat's lock as a turn does, so it never runs in the middle of
    one: held here (as a turn in progress would), the Yes waits, and nothing is erased."""
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        asked = await ask_to_delete(client)
        assert service.helpline.web is not None
        locks = service.helpline.core.chats  # the lock each of the chat's turns takes
        key = ("web", await chat_of(service))
        async with locks.hold(key):
            waiting = asyncio.create_task(answer(client, asked, "yes"))
            # Until the Yes waits for the lock (or, were it not taking it, is answered).
            while locks.waiting(key) < 1 and not waiting.done():
                await asyncio.sleep(0.01)
            assert not waiting.done()
            assert (await stored_case(service, reference)).erased_at is None  # type: ignore[union-attr]
        assert (await waiting)["type"] == "ack"
        assert (await stored_case(service, reference)).erased_at is not None  # type: ignore[union-attr]
        await client.close()


async def test_web_erasure_by_the_helpline_blanks_the_chats_copy_too(database_url: str) -> None:
    """``helpline privacy erase --web-session`` (and by email or reference): the chat's
    stored copy, summary and all, is blanked as the enquirer's own request does."""
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        await client.close()
        erased = await service.helpline.core.privacy.erase(
            Identity.REFERENCE, reference, actor="dpo"
        )
        assert erased.done
        stored = await shown(service)
        assert DESCRIPTION not in stored and "not_our_school" not in stored
        assert "(deleted)" in stored


async def test_web_erasure_by_the_helpline_blanks_every_page_open_on_the_chat(
    database_url: str,
) -> None:
    """The page still open when the DPO erases the case, and a second tab on the same chat
    ("keep me signed in" shares it), each blank what they drew: the erasure is stored as a
    numbered message, so every socket passes it on, on whichever replica it is."""
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        reference = reference_in(await complete_enquiry(client))
        tab = await page_on_chat(service, client)
        marks = len(client.frames), len(tab.frames)
        await service.helpline.core.privacy.erase(Identity.REFERENCE, reference, actor="dpo")
        for page, mark in zip((client, tab), marks, strict=True):
            forgotten = await page.until(lambda f: f["type"] == "forgotten", start=mark)
            assert (forgotten["all"], forgotten["text"]) == (True, "(deleted)")
            assert page.last == forgotten["seq"]
        await tab.close()
        await client.close()


async def test_web_cancel_in_one_tab_blanks_the_other_tab_too(database_url: str) -> None:
    async with web_service(database_url) as service:
        client = client_for(service)
        await client.open()
        await client.tap_after_question("School or college staff")
        await client.say("a fake account of our head teacher")
        tab = await page_on_chat(service, client)
        mark = len(tab.frames)
        await client.turn({"type": "command", "command": "cancel"})
        forgotten = await tab.until(lambda f: f["type"] == "forgotten", start=mark)
        assert (forgotten["all"], forgotten["text"]) == (False, "(deleted)")
        await tab.until(lambda f: f["type"] in NUMBERED and f["seq"] == client.last)
        assert tab.last == client.last  # the cancel's reply after it, in the same order
        await tab.close()
        await client.close()
