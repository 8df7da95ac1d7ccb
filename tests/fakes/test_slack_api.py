"""The fake Slack server, proven against the real slack_sdk and slack_bolt over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import (
    FakeSlack,
    block_action_body,
    event_body,
    post_signed,
    serve_bolt,
    signed_headers,
    view_submission_body,
)

SECRET = "test-signing-secret"
METADATA = {"event_type": "case_card", "event_payload": {"case": "HL-1"}}
BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*New case* 42"}},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "claim",
                "value": "case-42",
                "text": {"type": "plain_text", "text": "Claim"},
            }
        ],
    },
]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.token, base_url=slack.base_url)


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's 429 handler sleeps int(Retry-After) + random.random(): drop the random part."""
    monkeypatch.setattr(builtin_async_handlers, "random", types.SimpleNamespace(random=lambda: 0.0))


# -- Web API through the real AsyncWebClient -------------------------------------------------


async def test_post_reply_and_update(slack: FakeSlack, client: AsyncWebClient) -> None:
    top = await client.chat_postMessage(channel="C1", text="New case 42", blocks=BLOCKS)
    assert top["channel"] == "C1"
    assert top["message"]["blocks"] == BLOCKS
    assert top["message"]["bot_id"] == slack.bot_id
    reply = await client.chat_postMessage(channel="C1", thread_ts=top["ts"], text="note")
    nested = await client.chat_postMessage(channel="C1", thread_ts=reply["ts"], text="again")
    assert top["ts"] < reply["ts"] < nested["ts"]
    assert nested["message"]["thread_ts"] == top["ts"]  # a reply to a reply joins the parent

    updated = await client.chat_update(channel="C1", ts=top["ts"], text="Case 42: claimed")
    assert updated["message"]["text"] == "Case 42: claimed"
    assert updated["message"]["blocks"] == BLOCKS  # blocks kept when not sent again
    assert slack.texts("C1") == ["Case 42: claimed"]
    assert [m["text"] for m in slack.thread("C1", top["ts"])] == ["note", "again"]
    assert slack.messages("C1")[0]["reply_count"] == 2
    assert [c.method for c in slack.calls] == ["chat.postMessage"] * 3 + ["chat.update"]

    person = slack.add_message("C1", "a human wrote this", user="U1")
    with pytest.raises(SlackApiError, match="cant_update_message"):
        await client.chat_update(channel="C1", ts=person["ts"], text="edited")


async def test_history_and_replies_page_like_slack(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="C1", text="one", metadata=METADATA)
    await client.chat_postMessage(channel="C1", text="two")
    await client.chat_postMessage(channel="C1", thread_ts=first["ts"], text="reply")
    page = await client.conversations_history(channel="C1", limit=1)
    assert [m["text"] for m in page["messages"]] == ["two"] and page["has_more"]
    cursor = page["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel="C1", cursor=cursor, limit=1)
    assert [m["text"] for m in rest["messages"]] == ["one"] and not rest["has_more"]
    assert "metadata" not in rest["messages"][0]
    shown = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert shown["messages"][-1]["metadata"] == METADATA
    thread = await client.conversations_replies(channel="C1", ts=first["ts"])
    assert [m["text"] for m in thread["messages"]] == ["one", "reply"]
    with pytest.raises(SlackApiError, match="thread_not_found"):
        await client.conversations_replies(channel="C1", ts="1.000000")


async def test_methods_the_app_does_not_call_fail_loudly(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """The fake has only what the app calls: anything else answers ``unknown_method``."""
    with pytest.raises(SlackApiError, match="unknown_method"):
        await client.users_info(user="U1")
    (call,) = slack.calls_of("users.info")
    assert (call.status, call.error, call.params) == (200, "unknown_method", {"user": "U1"})


async def test_api_errors_arrive_as_slack_api_error(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", thread_ts="1.000000", text="x")
    assert err.value.response["error"] == "thread_not_found"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x", blocks=[{"type": "section"}] * 51)
    assert err.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    assert err.value.response.status_code == 200  # Slack answers API errors with HTTP 200
    with pytest.raises(SlackApiError, match="not_authed"):
        await AsyncWebClient(base_url=slack.base_url).auth_test()
    slack.add_channel("C9", "elsewhere", is_member=False)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.chat_postMessage(channel="C9", text="x")
    assert [c.error for c in slack.calls] == [
        "message_not_found",
        "thread_not_found",
        "invalid_blocks",
        "invalid_auth",
        "not_authed",
        "not_in_channel",
    ]


async def test_form_encoded_call_is_decoded(slack: FakeSlack, client: AsyncWebClient) -> None:
    data = {"channel": "C1", "text": "fallback", "blocks": json.dumps(BLOCKS)}
    await client.api_call("chat.postMessage", data=data)
    assert slack.messages("C1")[0]["blocks"] == BLOCKS


async def test_auth_test_names_the_bot(slack: FakeSlack, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "BBOT", "T1")


async def test_ephemeral_and_views(slack: FakeSlack, client: AsyncWebClient) -> None:
    eph = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert slack.ephemerals == [
        {
            "channel": "C1",
            "user": "U1",
            "text": "only you",
            "blocks": None,
            "thread_ts": None,
            "message_ts": eph["message_ts"],
        }
    ]
    assert slack.messages("C1") == []

    modal = {
        "type": "modal",
        "callback_id": "close_case",
        "title": {"type": "plain_text", "text": "Close case"},
        "blocks": [],
        "private_metadata": "case-42",
    }
    opened = (await client.views_open(trigger_id="t1", view=modal))["view"]
    assert slack.last_view is slack.views[opened["id"]]
    assert (opened["callback_id"], opened["private_metadata"]) == ("close_case", "case-42")
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await client.views_open(trigger_id="", view=modal)
    too_long = {**modal, "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="t3", view=too_long)
    slack.fail_next("views.open", status=200, error="expired_trigger_id")
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        await client.views_open(trigger_id="t4", view=modal)
    assert len(slack.views) == 1


# -- failures and retries ---------------------------------------------------------------------


async def test_429_is_retried_by_the_sdk_rate_limit_handler(
    slack: FakeSlack, client: AsyncWebClient, no_jitter: None
) -> None:
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    slack.fail_next("chat.postMessage", 429, retry_after=0, times=2)
    resp = await client.chat_postMessage(channel="C1", text="hello")
    assert resp["ok"]
    assert [c.status for c in slack.calls] == [429, 429, 200]
    assert slack.texts("C1") == ["hello"]


async def test_429_beyond_the_retries_raises(
    slack: FakeSlack, client: AsyncWebClient, no_jitter: None
) -> None:
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    slack.fail_next("chat.postMessage", 429, retry_after=0, times=3)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hello")
    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "0"
    assert len(slack.calls) == 3


async def test_fractional_retry_after_crashes_the_sdk_handler(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """slack_sdk does int(Retry-After): only whole seconds (what Slack sends) are safe."""
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    slack.fail_next("chat.postMessage", 429, retry_after=0.2)
    with pytest.raises(ValueError, match="invalid literal for int"):
        await client.chat_postMessage(channel="C1", text="hello")


@pytest.mark.parametrize("html", [True, False])
@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_surfaces_as_slack_api_error(
    slack: FakeSlack, client: AsyncWebClient, status: int, html: bool
) -> None:
    slack.fail_next("chat.postMessage", status, html=html)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hello")
    assert err.value.response.status_code == status
    # An HTML body becomes data == {} (no "error" key); a JSON one carries the error code.
    expected = {} if html else {"ok": False, "error": slack.calls[0].error}
    assert err.value.response.data == expected
    assert slack.messages("C1") == []


async def test_5xx_is_retried_by_the_sdk_server_error_handler(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    fast = FixedValueRetryIntervalCalculator(0.01)
    client.retry_handlers.append(AsyncServerErrorRetryHandler(2, interval_calculator=fast))
    slack.fail_next("chat.postMessage", 500, html=True)
    slack.fail_next("chat.postMessage", 503)
    await client.chat_postMessage(channel="C1", text="hello")
    assert [c.status for c in slack.calls] == [500, 503, 200]
    slack.fail_next("chat.postMessage", 502)  # not in the handler's list: no retry
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C1", text="again")
    assert [c.status for c in slack.calls][-1] == 502


async def test_outage_refuses_everything_until_it_ends(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.go_down()
    with pytest.raises(SlackApiError) as err:
        await client.auth_test()
    assert err.value.response.status_code == 503
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "service_unavailable"
    assert [c.method for c in slack.refused] == ["auth.test", "chat.postMessage"]
    slack.come_back()
    await client.chat_postMessage(channel="C1", text="after")
    assert slack.texts("C1") == ["after"]
    assert len(slack.refused) == 2


async def test_channel_rate_is_enforced(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.enforce_channel_rate(1.0)
    await client.chat_postMessage(channel="C1", text="one")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="two")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"  # the remainder, rounded up
    await client.chat_postMessage(channel="C2", text="other channel")
    slack.enforce_channel_rate(0.05, retry_after_seconds=0.05)
    await asyncio.sleep(0.06)
    await client.chat_postMessage(channel="C1", text="three")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="four")
    assert err.value.response.headers["Retry-After"] == "0.05"
    assert slack.rate_limited == 2
    assert slack.texts("C1") == ["one", "three"]


async def test_wait_for_reports_what_happened(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C1", text="present")
    await slack.wait_for(lambda s: s.texts("C1") == ["present"], timeout=1)
    with pytest.raises(AssertionError, match="present"):
        await slack.wait_for(lambda s: s.texts("C1") == ["absent"], timeout=0.05)


# -- a Bolt AsyncApp served over HTTP, driven as Slack drives it --------------------------------


@pytest.fixture
def app(slack: FakeSlack, client: AsyncWebClient) -> AsyncApp:
    return AsyncApp(client=client, signing_secret=SECRET)


async def test_block_action_acks_then_posts_ephemeral(
    slack: FakeSlack, client: AsyncWebClient, app: AsyncApp
) -> None:
    posted = await client.chat_postMessage(channel="C1", text="New case 42", blocks=BLOCKS)
    seen: list[str] = []

    @app.action("claim")
    async def claim(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body["actions"][0]["value"])
        await client.chat_postEphemeral(
            channel=body["channel"]["id"], user=body["user"]["id"], text="You claimed case 42"
        )

    async with serve_bolt(app) as url:
        body = block_action_body(
            "claim",
            "case-42",
            user_id="U1",
            user_name="sam",
            channel_id="C1",
            message_ts=posted["ts"],
            message=slack.message("C1", posted["ts"]),
        )
        resp = await post_signed(url, body, SECRET)
        assert (resp.status, resp.text) == (200, "")
        await slack.wait_for(lambda s: s.ephemerals, timeout=2, description="an ephemeral")
        assert seen == ["case-42"]
        assert slack.ephemerals[0]["user"] == "U1"
        assert slack.ephemerals[0]["text"] == "You claimed case 42"
        assert (await post_signed(url, body, SECRET)).status == 200
        await slack.wait_for(lambda s: len(s.ephemerals) == 2, timeout=2, description="another")

    # Bolt calls auth.test once, on the first request, then caches it.
    assert [c.method for c in slack.calls] == [
        "chat.postMessage",
        "auth.test",
        "chat.postEphemeral",
        "chat.postEphemeral",
    ]


async def test_bad_signatures_get_401_and_reach_no_listener(
    slack: FakeSlack, app: AsyncApp
) -> None:
    called: list[str] = []

    @app.action("claim")
    async def claim(ack: AsyncAck) -> None:
        await ack()
        called.append("claim")

    body = block_action_body(
        "claim", "v", user_id="U1", user_name="sam", channel_id="C1", message_ts="1.000100"
    )
    async with serve_bolt(app) as url:
        forged = await post_signed(url, body, "not-the-secret")
        stale = await post_signed(url, body, SECRET, timestamp=int(time.time()) - 600)
        unsigned = await post_signed(url, body, SECRET, headers={"X-Slack-Signature": ""})
    for resp in (forged, stale, unsigned):
        assert resp.status == 401
        assert json.loads(resp.text) == {"error": "invalid request"}
    assert called == []
    assert slack.calls == []  # verification comes before auth.test


async def test_event_is_delivered_acked_and_redelivered(slack: FakeSlack, app: AsyncApp) -> None:
    mentions: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        mentions.append(event["text"])

    event = {
        "type": "app_mention",
        "user": "U1",
        "text": "<@UBOT> status?",
        "ts": "1700000001.000100",
        "channel": "C1",
        "event_ts": "1700000001.000100",
    }
    body = event_body(event, event_id="Ev1")
    async with serve_bolt(app) as url:
        first = await post_signed(url, body, SECRET)
        again = await post_signed(url, body, SECRET, retry_num=1)
        await slack.wait_for(lambda _: len(mentions) == 2, timeout=2, description="2 mentions")
    assert (first.status, again.status) == (200, 200)  # Events listeners are acked by Bolt
    assert mentions == ["<@UBOT> status?"] * 2  # Bolt does not dedupe redeliveries


async def test_view_submission_ack_with_errors(slack: FakeSlack, app: AsyncApp) -> None:
    @app.view("close_case")
    async def close_case(ack: AsyncAck, view: dict[str, Any]) -> None:
        note = view["state"]["values"]["note"]["note_input"]["value"]
        if not note.strip():
            await ack(response_action="errors", errors={"note": "Add a closing note"})
        else:
            await ack()

    values = {"note": {"note_input": {"type": "plain_text_input", "value": " "}}}
    body = view_submission_body("close_case", values, "case-42", user_id="U1", user_name="sam")
    async with serve_bolt(app) as url:
        resp = await post_signed(url, body, SECRET)
    assert resp.status == 200
    assert json.loads(resp.text) == {
        "response_action": "errors",
        "errors": {"note": "Add a closing note"},
    }


async def test_first_request_during_an_outage_gets_bolts_reinstall_message(
    slack: FakeSlack, app: AsyncApp
) -> None:
    """If auth.test fails, Bolt answers 200 with a user-facing text and runs no listener;
    it tries auth.test again on the next request."""
    called: list[str] = []

    @app.action("claim")
    async def claim(ack: AsyncAck) -> None:
        await ack()
        called.append("claim")

    body = block_action_body(
        "claim", "v", user_id="U1", user_name="sam", channel_id="C1", message_ts="1.000100"
    )
    async with serve_bolt(app) as url:
        slack.go_down()
        down = await post_signed(url, body, SECRET)
        slack.come_back()
        up = await post_signed(url, body, SECRET)
        await slack.wait_for(lambda s: called, timeout=2)
    assert down.status == 200
    assert "reinstall" in down.text
    assert up.status == 200
    assert [(c.method, c.status) for c in slack.calls] == [("auth.test", 503), ("auth.test", 200)]


def test_signed_headers_match_the_sdk_verifier() -> None:
    from slack_sdk.signature import SignatureVerifier

    headers = signed_headers(SECRET, '{"a": 1}', timestamp=int(time.time()))
    assert headers["Content-Type"] == "application/json"
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(
        '{"a": 1}', headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert signed_headers(SECRET, "payload=x")["Content-Type"].endswith("x-www-form-urlencoded")
