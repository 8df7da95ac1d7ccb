"""What one message produces: effects for storage and channels, and the turn being handled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flows.conversation import CaseDraft, Conversation, Step
from flows.knowledge import Knowledge
from flows.messages import Reply
from flows.remit import Audience, audience_of


@dataclass(frozen=True, slots=True)
class CaseSubmitted:
    draft: CaseDraft


@dataclass(frozen=True, slots=True)
class Signposted:
    draft: CaseDraft


@dataclass(frozen=True, slots=True)
class AttachmentRefused:
    """Only the fact is recorded: the attachment itself is never opened or kept."""


@dataclass(frozen=True, slots=True)
class Forget:
    """The enquirer cancelled or restarted: drop what this conversation collected."""


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The enquirer wrote again after submitting; add it to their case."""

    reference: str
    text: str
    since: datetime | None = None
    """Only the turns from then on are this case's (the rest belong to an enquiry in hand);
    None: every turn not yet on a case."""


Effect = CaseSubmitted | Signposted | AttachmentRefused | Forget | FollowUp


@dataclass(frozen=True, slots=True)
class Context:
    """What the flow needs from outside: the time, and a fresh reference for a new case."""

    now: datetime
    reference: str
    reply_note: str = ""
    """Added to the confirmation: when a practitioner will reply."""
    out_of_hours: bool = False
    """Nobody is on duty now: point to services open day and night."""
    awaiting: str | None = None
    """An earlier case of this chat that a practitioner wrote to since the enquirer last
    wrote: a message now may be their answer to it."""


@dataclass(frozen=True, slots=True)
class StepResult:
    conversation: Conversation
    replies: tuple[Reply, ...]
    effects: tuple[Effect, ...]


@dataclass
class Turn:
    """One message being handled: the model the machine moves, plus what it produced.

    Callbacks get the turn and read the helpline's data from ``knowledge``; they never
    see the flow object.
    """

    knowledge: Knowledge
    conversation: Conversation
    context: Context
    choice: str | None = None
    reader: Audience | None = None
    """Who is reading, when known before their answers say (a child recognised now)."""
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.conversation.step.value

    @state.setter
    def state(self, value: str) -> None:
        self.conversation.step = Step(value)

    @property
    def answers(self) -> dict[str, Any]:
        return self.conversation.answers

    @property
    def audience(self) -> Audience | None:
        return self.reader or audience_of(self.answers.get(Step.ROLE))

    def say(self, text: str) -> None:
        self.replies.append(Reply(text))
