"""The conversation's progress and the records it produces, as plain data.

A :class:`Conversation` is what storage keeps between two messages (state, answers,
the way back); a :class:`CaseDraft` is what a finished or signposted conversation
hands to storage. Both are channel-neutral and JSON-friendly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Step(StrEnum):
    """Every state of the intake conversation."""

    START = "start"
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


@dataclass
class Conversation:
    """One enquirer's progress: saved after every message, restored before the next."""

    step: Step = Step.START
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    selection: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    editing: bool = False
    reference: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "answers": self.answers,
            "history": self.history,
            "selection": self.selection,
            "pending": self.pending,
            "editing": self.editing,
            "reference": self.reference,
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
        history = data.get("history")
        selection = data.get("selection")
        pending = data.get("pending")
        return cls(
            step=step,
            answers=_clean_answers(answers) if isinstance(answers, Mapping) else {},
            history=[str(h) for h in history] if isinstance(history, list) else [],
            selection=[str(s) for s in selection] if isinstance(selection, list) else [],
            pending=[str(p) for p in pending] if isinstance(pending, list) else [],
            editing=bool(data.get("editing", False)),
            reference=str(data["reference"]) if data.get("reference") else None,
        )


# Bookkeeping the flow keeps beside the answers: each must be a list of strings.
LIST_KEYS = ("signposted_to", "risks", "implied", "description_links")


def _clean_answers(answers: Mapping[str, Any]) -> dict[str, Any]:
    """Saved answers with malformed bookkeeping dropped (answers are checked when used)."""
    cleaned = {str(k): v for k, v in answers.items()}
    for key in LIST_KEYS:
        value = cleaned.get(key)
        if key in cleaned and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            del cleaned[key]
    return cleaned


class CaseStatus(StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    SIGNPOSTED = "signposted"


class ReplyVia(StrEnum):
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
