"""What the practitioner desk shows in Slack, as plain data: the case card, the modals,
the words of desk notes and the morning digest.

Everything the enquirer wrote is escaped for mrkdwn with :func:`bot.text.for_slack` (no
stray mentions or links), in blocks and in the notification text alike; plain_text
fields (the header) show text literally and get it only normalised. Texts are cut to
Slack's limits with care; the full text is one click away in the details modal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.text import for_slack, normalise, slack_actor
from flows.conversation import CaseStatus
from flows.copy import Copy
from flows.hours import WorkingCalendar
from flows.timing import describe_due
from storage.links import Linked
from storage.models import Case

SECTION_LIMIT = 3000
FIELD_LIMIT = 1900
DESCRIPTION_ON_CARD = 1200
HEADER_LIMIT = 150
Block = dict[str, Any]


def cut(text: str, limit: int, tail: str = "…") -> str:
    """Shorten at a word boundary, never past ``limit`` characters."""
    if len(text) <= limit:
        return text
    room = limit - len(tail)
    space = text.rfind(" ", 0, room)
    return text[: space if space > room // 2 else room].rstrip() + tail


def moment(when: datetime | None, calendar: WorkingCalendar, copy: Copy) -> str:
    """A moment as the desk reads it, in the helpline's time zone."""
    if when is None:
        return copy("card.none")
    local = when.astimezone(calendar.zone)
    return copy("card.moment", day=calendar.describe_day(when), time=f"{local:%H:%M}")


def _yes_no(value: bool | None, copy: Copy) -> str:
    return copy("card.unknown") if value is None else copy("card.yes" if value else "card.no")


def _status(case: Case, copy: Copy, calendar: WorkingCalendar) -> str:
    if case.status is CaseStatus.CLAIMED:
        claimed = case.claimed_at
        since = f"{claimed.astimezone(calendar.zone):%H:%M}" if claimed else "?"
        return copy("card.status_claimed", holder=slack_actor(case.claimed_by or "?"), since=since)
    if case.status is CaseStatus.RESOLVED:
        return copy(
            "card.status_resolved",
            holder=slack_actor(case.claimed_by or "?"),
            outcome=case.outcome or "",
        )
    return copy("card.status_new")


def _button(copy: Copy, action: str, reference: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": copy(f"card.{action}")},
        "value": reference,
    }
    if style:
        button["style"] = style
    return button


def case_card(
    case: Case,
    copy: Copy,
    calendar: WorkingCalendar,
    now: datetime,
    linked: Sequence[Linked] = (),
) -> tuple[list[Block], str]:
    """The card's blocks and its notification text. Contact details never appear here.

    ``linked``: other reports of the same accounts (newest first), named under the links.
    """
    subject = normalise(case.subject or copy("card.no_subject"))  # plain_text: shown as is
    urgency = copy("card.urgent") + " · " if case.urgent else ""
    title = cut(
        copy("card.title", urgency=urgency, reference=case.reference, subject=subject), HEADER_LIMIT
    )
    none = copy("card.none")
    platform = " / ".join(p for p in (case.platform_type, case.platform) if p) or none
    due = describe_due(calendar, case.due_at, copy) if case.due_at else none
    fields = [
        ("categories", ", ".join(c.category for c in case.categories) or none),
        ("enquirer", case.enquirer_type or none),
        ("setting", case.setting or none),
        ("region", case.region or none),
        ("platform", platform),
        ("reported", _yes_no(case.already_reported, copy)),
        (
            "received",
            copy(
                "card.received",
                when=moment(case.received_at, calendar, copy),
                out_of_hours="" if case.in_hours in (None, True) else copy("card.out_of_hours"),
            ),
        ),
        (
            "due",
            copy("card.due", when=due) + (copy("card.overdue") if case.is_overdue(now) else ""),
        ),
    ]
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {
            "type": "section",
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": cut(f"*{copy(f'card.label_{k}')}*\n{for_slack(v)}", FIELD_LIMIT),
                }
                for k, v in fields
            ],
        },
    ]
    if case.description:
        text = for_slack(case.description)
        if len(text) > DESCRIPTION_ON_CARD:
            text = cut(text, DESCRIPTION_ON_CARD, "") + copy("card.truncated")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if case.links:
        links = "\n".join(for_slack(link) for link in case.links)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(links, SECTION_LIMIT)}}
        )
    if linked:
        text = linked_line(linked, copy, calendar, now)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _status(case, copy, calendar)}]}
    )
    blocks.append({"type": "actions", "block_id": "case_actions", "elements": _actions(case, copy)})
    subject_text = for_slack(cut(case.subject or "", 250))
    fallback = copy("card.fallback", reference=case.reference, subject=subject_text)
    return blocks, (copy("card.urgent") + " " if case.urgent else "") + fallback


def erased_card(
    case: Case, copy: Copy, calendar: WorkingCalendar, why: str
) -> tuple[list[Block], str]:
    """The card of a case whose personal data was erased: what remains is the reference."""
    when = moment(case.erased_at, calendar, copy) if case.erased_at else copy("card.none")
    text = copy("data_protection.erased_card", reference=case.reference, when=when, why=why)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": for_slack(text)}}], text


# The card's buttons by status, the first one the primary action.
ACTIONS: Mapping[CaseStatus, tuple[str, ...]] = {
    CaseStatus.NEW: ("claim", "reply", "resolve", "details"),
    CaseStatus.CLAIMED: ("reply", "resolve", "release", "details"),
}


def _actions(case: Case, copy: Copy) -> list[Block]:
    actions = ACTIONS.get(case.status, ("details",))
    primary = actions[0] if len(actions) > 1 else None
    return [
        _button(copy, action, case.reference, "primary" if action == primary else None)
        for action in actions
    ]


def _modal(
    callback_id: str, title: str, blocks: list[Block], metadata: dict[str, str], **extra: Any
) -> Block:
    view: Block = {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": cut(title, 24)},
        "private_metadata": json.dumps(metadata),
        "blocks": blocks,
    }
    view.update(extra)
    return view


def _text_input(block_id: str, label: str, max_length: int, *, optional: bool = False) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "plain_text_input",
            "action_id": "text",
            "multiline": True,
            "max_length": max_length,
        },
    }
    if optional:
        block["optional"] = True
    return block


def _form(
    callback_id: str,
    title: str,
    blocks: list[Block],
    reference: str,
    channel: str,
    copy: Copy,
    submit: str,
) -> Block:
    """A modal that submits: the case and channel ride along in its private metadata."""
    return _modal(
        callback_id,
        title,
        blocks,
        {"reference": reference, "channel": channel},
        submit={"type": "plain_text", "text": submit},
        close={"type": "plain_text", "text": copy("card.cancel")},
    )


def reply_modal(copy: Copy, reference: str, channel: str) -> Block:
    """The modal a practitioner writes a reply to the enquirer in (opened by the Reply button)."""
    blocks: list[Block] = [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": copy("card.reply_hint")}]},
        _text_input("reply", copy("card.reply_label"), 3000),
    ]
    title = copy("card.reply_title")
    return _form("reply_modal", title, blocks, reference, channel, copy, copy("card.send"))


def resolve_modal(
    copy: Copy, reference: str, channel: str, outcomes: list[tuple[str, str]]
) -> Block:
    """The modal that closes a case: an outcome to choose and an optional note."""
    options = [
        {"text": {"type": "plain_text", "text": cut(label, 75)}, "value": oid}
        for oid, label in outcomes
    ]
    blocks: list[Block] = [
        {
            "type": "input",
            "block_id": "outcome",
            "label": {"type": "plain_text", "text": copy("card.outcome_label")},
            "element": {"type": "static_select", "action_id": "value", "options": options},
        },
        _text_input("note", copy("card.note_label"), 2000, optional=True),
    ]
    title = copy("card.resolve_title")
    return _form("resolve_modal", title, blocks, reference, channel, copy, copy("card.done"))


def details_modal(copy: Copy, case: Case, contact: str | None) -> Block:
    """Full description (in as many sections as needed), links and, for the holder, contact
    (``contact`` comes escaped for Slack, as :meth:`DeskService.contact_details` gives it)."""
    text = for_slack(case.description or "-")
    chunks = [text[i : i + SECTION_LIMIT] for i in range(0, len(text), SECTION_LIMIT)][:90]
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": cut(normalise(f"{case.reference}: {case.subject or ''}"), HEADER_LIMIT),
            },
        },
        *({"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in chunks),
    ]
    if case.links:
        links = cut("\n".join(for_slack(link) for link in case.links), SECTION_LIMIT)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": links}})
    if contact:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": contact}]})
    return _modal(
        "details_modal", copy("card.details_title"), blocks, {"reference": case.reference}
    )


def card_link(case: Case) -> str:
    """A link to the case's card in Slack (or its bare reference before it is posted)."""
    if not (case.slack_channel and case.slack_ts):
        return case.reference
    archive = f"https://slack.com/archives/{case.slack_channel}/p{case.slack_ts.replace('.', '')}"
    return f"<{archive}|{case.reference}>"


LINKED_ON_CARD = 10
"""Linked reports named on a card; the rest are counted ("and 4 more")."""


def ago(when: datetime, now: datetime, calendar: WorkingCalendar, copy: Copy) -> str:
    """How long ago, in days of the helpline's calendar ("today", "3 days ago")."""
    days = (now.astimezone(calendar.zone).date() - when.astimezone(calendar.zone).date()).days
    if days <= 0:
        return copy("linked.ago_today")
    return copy("linked.ago_yesterday") if days == 1 else copy("linked.ago_days", days=days)


def linked_line(
    linked: Sequence[Linked], copy: Copy, calendar: WorkingCalendar, now: datetime
) -> str:
    """ "Also reported in HL-… (3 days ago, Secondary, North West)", each linking to its card."""
    shown = []
    for other in linked[:LINKED_ON_CARD]:
        about = [ago(other.case.received_at, now, calendar, copy)]
        about += [for_slack(p) for p in (other.case.setting, other.case.region) if p]
        shown.append(copy("linked.case", link=card_link(other.case), about=", ".join(about)))
    more = len(linked) - len(shown)
    tail = copy("linked.more", count=more) if more > 0 else ""
    return cut(copy("linked.on_card", cases="; ".join(shown)) + tail, SECTION_LIMIT)


def note_text(
    payload: Mapping[str, Any], copy: Copy, cards: Mapping[str, str] | None = None
) -> str:
    """The words of a desk note (:func:`storage.outbox.desk_note`), escaped for mrkdwn.

    ``cards`` are links to the cards of the cases the note names (its ``cases``), already
    in Slack's link syntax. A row written before notes were kept as copy keys holds its
    text already worded.
    """
    key = payload.get("say")
    if not isinstance(key, str):
        return str(payload.get("text", ""))
    values = payload.get("values") or {}
    people = payload.get("people") or {}
    return copy(
        key,
        **{name: for_slack(str(value)) for name, value in values.items()},
        **{name: slack_actor(str(person)) for name, person in people.items()},
        **(cards or {}),
    )


def digest(cases: list[Case], copy: Copy, calendar: WorkingCalendar) -> str:
    """What waited overnight: counts by category and urgency, then each case, oldest first."""
    title = "timers.digest_title_one" if len(cases) == 1 else "timers.digest_title"
    lines = [copy(title, count=len(cases))]
    urgent = sum(1 for c in cases if c.urgent)
    if urgent:
        lines.append(copy("timers.digest_urgent", count=urgent))
    counts = Counter(cat.category for c in cases for cat in c.categories)
    if counts:
        summary = ", ".join(f"{name} {n}" for name, n in counts.most_common())
        lines.append(copy("timers.digest_categories", categories=for_slack(summary)))
    for case in cases:
        mark = copy("timers.digest_urgent_mark") if case.urgent else ""
        lines.append(
            copy(
                "timers.digest_line",
                link=card_link(case),
                received=moment(case.received_at, calendar, copy),
                urgent=mark,
                subject=for_slack(cut(case.subject or "", 80)),
            )
        )
    return "\n".join(lines)
