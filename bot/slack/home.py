"""The desk's App Home in Slack: the queue each practitioner sees, as a ``home`` view.

Unclaimed cases first (urgent, then soonest due), each with how long it has waited and
Claim / Open buttons; then the practitioner's own cases; then everything overdue. Worded
from ``copy.toml``; what enquirers wrote (the subject) is escaped for mrkdwn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from bot.slack.blocks import cut, moment
from bot.text import for_slack, slack_actor
from flows.copy import Copy
from flows.hours import WorkingCalendar
from storage.home import Queue
from storage.models import Case

LISTED = 12
"""Cases shown in each list (Slack allows 100 blocks in a Home view)."""
SUBJECT_ON_HOME = 120
Block = dict[str, Any]


def waited(since: datetime, now: datetime, copy: Copy) -> str:
    """How long a case has waited, as the desk reads it ("2 h 5 min")."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    hours, days = minutes // 60, minutes // 1440
    if days:
        return copy("home.waited_days", days=days, hours=hours % 24)
    if hours:
        return copy("home.waited_hours", hours=hours, minutes=minutes % 60)
    return copy("home.waited_minutes", minutes=minutes)


def card_url(case: Case) -> str | None:
    """The web address of the case's card in Slack (None before it is posted)."""
    if not (case.slack_channel and case.slack_ts):
        return None
    return f"https://slack.com/archives/{case.slack_channel}/p{case.slack_ts.replace('.', '')}"


def _open(case: Case, copy: Copy) -> Block | None:
    url = card_url(case)
    if url is None:
        return None
    return {
        "type": "button",
        "action_id": "open_case",
        "text": {"type": "plain_text", "text": copy("home.open")},
        "url": url,
        "value": case.reference,
    }


def _subject(case: Case, copy: Copy) -> str:
    return for_slack(cut(case.subject or copy("card.no_subject"), SUBJECT_ON_HOME))


def _due(case: Case, calendar: WorkingCalendar, copy: Copy) -> str:
    return moment(case.due_at, calendar, copy)


def _section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _unclaimed(
    cases: Sequence[Case], copy: Copy, calendar: WorkingCalendar, now: datetime
) -> Iterator[Block]:
    for case in cases:
        text = copy(
            "home.line",
            urgent=copy("home.urgent") if case.urgent else "",
            reference=case.reference,
            subject=_subject(case, copy),
            waited=waited(case.received_at, now, copy),
            due=_due(case, calendar, copy),
            overdue=copy("home.overdue_mark") if case.is_overdue(now) else "",
        )
        yield _section(text)
        claim: Block = {
            "type": "button",
            "action_id": "claim",
            "style": "primary",
            "text": {"type": "plain_text", "text": copy("home.claim")},
            "value": case.reference,
        }
        opened = _open(case, copy)
        yield {
            "type": "actions",
            "block_id": f"home_{case.reference}",
            "elements": [claim, *([opened] if opened else [])],
        }


def _held(cases: Sequence[Case], copy: Copy, calendar: WorkingCalendar) -> Iterator[Block]:
    for case in cases:
        text = copy(
            "home.held_by",
            reference=f"*{case.reference}*",
            subject=_subject(case, copy),
            holder=slack_actor(case.claimed_by) if case.claimed_by else copy("home.nobody"),
            due=_due(case, calendar, copy),
        )
        yield _section(text, _open(case, copy))


def home_view(queue: Queue, copy: Copy, calendar: WorkingCalendar, now: datetime) -> Block:
    """The ``home`` view for ``views.publish``."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": copy("home.title")}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": copy("home.updated", time=moment(now, calendar, copy)),
                }
            ],
        },
        _section(copy("home.unclaimed", count=queue.unclaimed_total)),
    ]
    if queue.unclaimed:
        blocks += _unclaimed(queue.unclaimed, copy, calendar, now)
        more = queue.unclaimed_total - len(queue.unclaimed)
        if more > 0:
            blocks.append(
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": copy("home.more", count=more)}],
                }
            )
    else:
        blocks.append(_section(copy("home.unclaimed_none")))
    for title, none, cases in (
        ("home.mine", "home.mine_none", queue.mine),
        ("home.overdue", "home.overdue_none", queue.overdue),
    ):
        blocks.append({"type": "divider"})
        blocks.append(_section(copy(title, count=len(cases))))
        blocks += _held(cases, copy, calendar) if cases else [_section(copy(none))]
    return {"type": "home", "blocks": blocks}
