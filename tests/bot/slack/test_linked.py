"""Linked reports end to end: two schools report one TikTok account, written differently;
the second card names the first, the first's thread hears of the second, and
``helpline cases linked`` lists them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import helpline
from tests.support.slack_desk import DESK, desk
from tests.support.telegram import complete_enquiry

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


def _reference(texts: list[str]) -> str:
    return next(t for t in texts if "reference is" in t).split("reference is ")[1][:9]


async def test_linked_reports_of_one_account_are_named_on_the_card_and_in_the_thread(
    database_url: str, tmp_path: Path
) -> None:
    async with desk(database_url) as d:
        first = _reference(
            await complete_enquiry(d.tg, 501, link="https://www.tiktok.com/@Fake_School?lang=en")
        )
        await d.slack.wait_for(lambda s: any(first in json.dumps(c) for c in s.messages(DESK)))
        (first_card,) = d.cards()
        assert "Also reported" not in json.dumps(first_card["blocks"])

        other = _reference(
            await complete_enquiry(d.tg, 502, link="tiktok.com/@fake_school/video/1")
        )
        await d.slack.wait_for(lambda s: any(other in json.dumps(c) for c in s.messages(DESK)))
        second_card = next(c for c in d.cards() if other in json.dumps(c["blocks"]))
        linked = [
            b["text"]["text"]
            for b in second_card["blocks"]
            if b["type"] == "section" and "Also reported" in b.get("text", {}).get("text", "")
        ]
        archive = f"https://slack.com/archives/{DESK}/p{first_card['ts'].replace('.', '')}"
        assert linked == [f"🔗 Also reported in <{archive}|{first}> (today, Secondary, South East)"]

        await d.slack.wait_for(
            lambda s: any(
                "Reported again in" in m.get("text", "") for m in s.thread(DESK, first_card["ts"])
            )
        )
        (note,) = [
            m for m in d.slack.thread(DESK, first_card["ts"]) if "Reported again" in m["text"]
        ]
        assert other in note["text"] and "tiktok:@fake_school" in note["text"]
        assert "|" + other + ">" in note["text"]  # a link to the new card

        # A third report of something else is linked to neither.
        third = _reference(await complete_enquiry(d.tg, 503, link="https://discord.gg/AbCd"))
        await d.slack.wait_for(lambda s: any(third in json.dumps(c) for c in s.messages(DESK)))
        third_card = next(c for c in d.cards() if third in json.dumps(c["blocks"]))
        assert "Also reported" not in json.dumps(third_card["blocks"])

    env = {"HELPLINE_DATABASE_URL": database_url}
    listed = helpline("cases", "linked", first, "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"reference": other, "shared": ["tiktok:@fake_school"]}]
    plain = helpline("cases", "linked", other, cwd=tmp_path, env=env).stdout
    assert first in plain and "Secondary, South East" in plain and "tiktok:@fake_school" in plain
    none = helpline("cases", "linked", third, "--json", cwd=tmp_path, env=env)
    assert json.loads(none.stdout) == []
    missing = helpline("cases", "linked", "HL-ZZZZZZ", cwd=tmp_path, env=env)
    assert missing.returncode == 1 and "There is no case HL-ZZZZZZ." in missing.stderr
