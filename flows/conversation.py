"""The conversation's progress and the records it produces, as plain data.

A :class:`Conversation` is what storage keeps between two messages (state, answers,
the way back); a :class:`CaseDraft` is what a finished or signposted conversation
hands to storage. Both are channel-neutral and JSON-friendly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Step(StrEnum):
    """Every state of the intake conversation."""

    START = "start"
    CONFIRM = "confirm"
    ROLE_GROUP = "role_group"
    ROLE = "role"
    PUBLIC_CONCERN = "public_concern"
    SETTING = "setting"
    REGION = "region"
    PLATFORM_TYPE = "platform_type"
    PLATFORM = "platform"
    CATEGORIES = "categories"
    SUBJECT = "subject"
    DESCRIPTION = "description"
    LINKS = "links"
    ALREADY_REPORTED = "already_reported"
    DANGER = "danger"
    REPLY_VIA = "reply_via"
    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"
    REVIEW = "review"
    EDIT = "edit"
    SUBMITTED = "submitted"
    SIGNPOSTED = "signposted"
    CANCELLED = "cancelled"


FINAL_STEPS = frozenset({Step.SUBMITTED, Step.SIGNPOSTED, Step.CANCELLED})
_STEP_NAMES = frozenset(s.value for s in Step)


def steps_of(names: Iterable[object]) -> list[Step]:
    """The steps among saved names (anything else, from an older version, is dropped)."""
    return [Step(n) for n in names if isinstance(n, str) and n in _STEP_NAMES]


@dataclass
class Conversation:
    """One enquirer's progress: saved after every message, restored before the next.

    ``understood`` lists the steps whose answers were taken from what the enquirer wrote
    (not asked): they are skipped on the way through and shown back for checking.
    ``failures`` counts answers in a row the current question could not take, so the bot
    can offer another way after a few. ``expanded`` is whether the long menu (categories)
    shows every option. ``correcting`` is set while a step is re-asked from the
    confirmation of a first message, which is where it returns.
    """

    step: Step = Step.START
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    selection: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    editing: bool = False
    reference: str | None = None
    understood: list[str] = field(default_factory=list)
    failures: int = 0
    expanded: bool = False
    correcting: bool = False
    earlier: list[str] = field(default_factory=list)
    """References of the cases sent from this chat before this conversation (newest last):
    the enquirer can still write to them, by replying to a message that names one."""
    held: str | None = None
    """A message held while the enquirer says which case it is for (see ``held_for``)."""
    held_for: str | None = None
    """The earlier case a practitioner wrote about, which the held message may answer."""
    held_since: str | None = None
    """When the held message arrived (ISO time): its turns go to the case it is for."""

    def to_json(self) -> dict[str, Any]:
        """The conversation as plain JSON for storage; :meth:`from_json` reads it back."""
        return {
            "step": self.step.value,
            "answers": self.answers,
            "history": self.history,
            "selection": self.selection,
            "pending": self.pending,
            "editing": self.editing,
            "reference": self.reference,
            "understood": self.understood,
            "failures": self.failures,
            "expanded": self.expanded,
            "correcting": self.correcting,
            "earlier": self.earlier,
            "held": self.held,
            "held_for": self.held_for,
            "held_since": self.held_since,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Conversation:
        """Restore saved progress; anything unreadable starts afresh rather than failing."""
        if not data:
            return cls()
        try:
            step = Step(data.get("step", Step.START))
        except ValueError:
            return cls()
        answers = data.get("answers")
        failures = data.get("failures", 0)
        return cls(
            step=step,
            answers=_clean_answers(answers) if isinstance(answers, Mapping) else {},
            history=_strings(data.get("history")),
            selection=_strings(data.get("selection")),
            pending=_strings(data.get("pending")),
            editing=bool(data.get("editing", False)),
            reference=str(data["reference"]) if data.get("reference") else None,
            understood=_strings(data.get("understood")),
            failures=failures if isinstance(failures, int) and 0 <= failures < 100 else 0,
            expanded=bool(data.get("expanded", False)),
            correcting=bool(data.get("correcting", False)),
            earlier=[r for r in _strings(data.get("earlier")) if reference_in(r) == r][-EARLIER:],
            held=str(data["held"]) if isinstance(data.get("held"), str) else None,
            held_for=reference_in(str(data.get("held_for") or "")),
            held_since=_moment(data.get("held_since")),
        )


EARLIER = 5
"""Earlier cases of a chat that replies can still reach (the most recent)."""
_REFERENCE = re.compile(r"\bHL-[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}\b")
"""A case reference as :func:`storage.cases.new_reference` makes them."""


def reference_in(text: str) -> str | None:
    """The first case reference in ``text`` (a message of the bot that names its case)."""
    found = _REFERENCE.search(text)
    return found.group(0) if found else None


def _moment(value: Any) -> str | None:
    """A saved ISO time, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return None
    return value


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


# Bookkeeping the flow keeps beside the answers: each must be a list of strings.
LIST_KEYS = ("signposted_to", "risks", "description_links", "mentioned")


def _clean_answers(answers: Mapping[str, Any]) -> dict[str, Any]:
    """Saved answers with malformed bookkeeping dropped (answers are checked when used)."""
    cleaned = {str(k): v for k, v in answers.items()}
    own = cleaned.get("own_words")
    if "own_words" in cleaned and not (
        isinstance(own, dict) and all(isinstance(v, str) for v in own.values())
    ):
        del cleaned["own_words"]
    for key in LIST_KEYS:
        value = cleaned.get(key)
        if key in cleaned and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            del cleaned[key]
    return cleaned


class CaseStatus(StrEnum):
    """Where a case stands: the one list of statuses (model, CLI, import and export)."""

    NEW = "new"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    SIGNPOSTED = "signposted"

    @property
    def is_open(self) -> bool:
        """Still waiting for the helpline: new, or claimed and being worked on."""
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset({CaseStatus.NEW, CaseStatus.CLAIMED})
"""Statuses of cases the helpline still owes a reply (timers, queues, listings)."""


def is_overdue(status: CaseStatus, due_at: datetime | None, now: datetime) -> bool:
    """An open case whose reply time has passed: due at 12:00 is on time at 12:00 exactly
    and overdue from just after. The one definition (storage's query says the same)."""
    return status in OPEN_STATUSES and due_at is not None and due_at < now


class ReplyVia(StrEnum):
    """How the enquirer asked the helpline to reply to them."""

    CHAT = "chat"
    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True, slots=True)
class CaseDraft:
    """A case as the conversation produced it, with the taxonomy's labels."""

    reference: str
    status: CaseStatus
    received_at: datetime
    enquirer_type: str | None = None
    setting: str | None = None
    region: str | None = None
    platform_type: str | None = None
    platform: str | None = None
    categories: tuple[str, ...] = ()
    subject: str | None = None
    description: str | None = None
    links: tuple[str, ...] = ()
    already_reported: bool | None = None
    urgent: bool = False
    reply_via: ReplyVia | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    contact_name: str | None = None
    signposted_to: tuple[str, ...] = ()
