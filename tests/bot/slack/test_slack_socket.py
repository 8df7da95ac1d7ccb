"""Socket Mode end to end: the real AsyncSocketModeHandler against the fake Socket Mode
server (``apps.connections.open`` answering a ws://127.0.0.1 URL). The desk's scenarios
in test_slack.py run over it too (their ``transport`` parameter); these are its own."""

from __future__ import annotations

import json
import urllib.parse

import aiohttp
import pytest

from tests.fakes.slack_api import FakeSlack, block_action_body
from tests.support.slack_desk import DESK, desk, submitted_case

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


async def test_slack_socket_mode_reconnects_when_slack_asks_and_carries_on(
    database_url: str,
) -> None:
    async with desk(database_url, transport="socket") as d:
        assert d.slack.connections_opened == 1
        assert not d.slack.calls_of("apps.connections.open")[0].error
        reference = await submitted_case(d)
        (old,) = d.slack.sockets
        await d.slack.ask_to_reconnect()  # Slack's "refresh_requested"
        await d.slack.wait_for(
            lambda s: s.connections_opened == 2 and s.sockets and old not in s.sockets, timeout=15
        )
        assert await d.press("claim", reference) == 200
        await d.slack.wait_for(lambda s: "Claimed by <@U1>" in json.dumps(s.messages(DESK)[0]))
        assert [a for _, a in await d.events()] == ["claim"]


async def test_slack_socket_mode_envelopes_are_acknowledged_by_id(database_url: str) -> None:
    async with desk(database_url, transport="socket") as d:
        reference = await submitted_case(d)
        card = d.cards()[0]
        body = block_action_body(
            "claim",
            reference,
            user_id="U1",
            user_name="sam",
            channel_id=DESK,
            message_ts=card["ts"],
        )
        payload = json.loads(urllib.parse.parse_qs(body)["payload"][0])
        first = await d.slack.send_envelope("interactive", payload, envelope_id="env-a")
        second = await d.slack.send_envelope("interactive", payload, envelope_id="env-b")
        assert (await d.slack.wait_for_ack(first))["envelope_id"] == "env-a"
        assert (await d.slack.wait_for_ack(second))["envelope_id"] == "env-b"
        await d.slack.wait_for(
            lambda s: any("already" in e["text"] or "Contact" in e["text"] for e in s.ephemerals)
        )
        assert [a for _, a in await d.events()] == ["claim"]  # pressed twice, claimed once


async def test_fake_socket_mode_server_says_hello_and_records_acks() -> None:
    async with FakeSlack() as slack, aiohttp.ClientSession() as http:
        async with http.post(
            f"{slack.base_url}apps.connections.open",
            headers={"Authorization": f"Bearer {slack.token}"},
        ) as refused:
            assert (await refused.json())["error"] == "not_allowed_token_type"
        async with http.post(
            f"{slack.base_url}apps.connections.open",
            headers={"Authorization": f"Bearer {slack.app_token}"},
        ) as opened:
            url = (await opened.json())["url"]
        assert url.startswith("ws://127.0.0.1:")
        async with http.ws_connect(url) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == slack.app_id
            await slack.wait_for(lambda s: s.sockets)
            sent = await slack.send_envelope("events_api", {"event": {"type": "message"}})
            envelope = await ws.receive_json()
            assert envelope["envelope_id"] == sent and envelope["retry_attempt"] == 0
            await ws.send_json({"envelope_id": sent})
            assert (await slack.wait_for_ack(sent)) == {"envelope_id": sent}
