"""``GET /metrics`` on the running service, read with Prometheus' own parser."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clock import Clock
from tests.support.slack_desk import DESK, ENQUIRER, desk
from tests.support.telegram import complete_enquiry

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


async def scrape(
    port: int,
) -> tuple[int, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        body = await response.text()
        kind = response.headers["Content-Type"]
        status = response.status
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    return status, kind, samples


async def test_metrics_show_cases_queue_age_overdue_outbox_and_what_happened(
    database_url: str,
) -> None:
    start = datetime(2026, 11, 30, 11, 0, tzinfo=ZoneInfo("Europe/London"))  # Monday, open
    clock = Clock(start)
    async with desk(database_url, clock) as d:
        port = d.settings.http_port
        status, kind, empty = await scrape(port)
        assert status == 200 and kind.startswith("text/plain")
        assert empty[("helpline_outbox_pending", ())] == 0
        assert empty[("helpline_outbox_parked", ())] == 0  # Slack is set up: nothing waits for it
        assert empty[("helpline_oldest_unclaimed_seconds", ())] == 0
        assert empty[("helpline_web_chats_open", ())] == 0
        assert not any(name == "helpline_cases" for name, _ in empty)

        texts = await complete_enquiry(d.tg, ENQUIRER)
        reference = next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]
        await d.slack.wait_for(lambda s: s.messages(DESK))
        clock.at = start + timedelta(hours=4)  # 3 working hours is the target: now overdue
        _, _, seen = await scrape(port)
        assert seen[("helpline_cases", (("channel", "telegram"), ("status", "new")))] == 1
        assert seen[("helpline_oldest_unclaimed_seconds", ())] == 4 * 3600
        assert seen[("helpline_overdue_cases", ())] == 1
        handled = seen[("helpline_updates_handled_total", (("channel", "telegram"),))]
        assert handled >= 18  # every answer of the enquiry
        assert seen[("helpline_intake_seconds_count", (("channel", "telegram"),))] == handled
        assert (
            seen[("helpline_intake_seconds_bucket", (("channel", "telegram"), ("le", "+Inf")))]
            == handled
        )

        assert await d.press("claim", reference) == 200
        await d.slack.wait_for(lambda s: "Claimed by" in str(s.messages(DESK)[0]["blocks"]))
        _, _, claimed = await scrape(port)
        assert claimed[("helpline_cases", (("channel", "telegram"), ("status", "claimed")))] == 1
        assert ("helpline_cases", (("channel", "telegram"), ("status", "new"))) not in claimed
        assert claimed[("helpline_oldest_unclaimed_seconds", ())] == 0
        failures = ("helpline_send_failures_total", (("destination", "slack"),))
        assert claimed.get(failures, 0) == 0

        d.slack.go_down()
        assert await d.press("release", reference) == 200  # the card's update cannot go
        await d.slack.wait_for(lambda s: len(s.refused) >= 2, timeout=10)
        _, _, down = await scrape(port)
        assert down[failures] >= 1
        assert down[("helpline_outbox_pending", ())] >= 1
        assert down[("helpline_outbox_oldest_seconds", ())] >= 0
