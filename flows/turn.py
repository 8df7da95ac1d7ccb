"""What one message produces: effects for storage and channels, and the turn being handled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flows.conversation import CaseDraft, Conversation, Step
from flows.knowledge import Knowledge
from flows.messages import Reply
from flows.remit import Audience, audience_of
from flows.understanding import Risk

if TYPE_CHECKING:
    from flows.timing import Expectation


@dataclass(frozen=True, slots=True)
class CaseSubmitted:
    """The enquirer confirmed their enquiry: store it as a case and put it on the desk."""

    draft: CaseDraft


@dataclass(frozen=True, slots=True)
class Signposted:
    """The route ended in signposting: keep a record to count, with nothing personal in it."""

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
    risks: tuple[Risk, ...] = ()
    """Risk the message raises: the case becomes urgent and the desk is alerted (the
    enquirer was shown 999 and the crisis lines already)."""


@dataclass(frozen=True, slots=True)
class CopyShown:
    """The enquirer was shown a copy of what they sent: a disclosure, for the audit trail."""

    reference: str


@dataclass(frozen=True, slots=True)
class CopyEmailed:
    """Email a copy of the enquiry to the address the enquirer gave (once per case)."""

    reference: str
    to: str
    subject: str
    text: str


Effect = (
    CaseSubmitted | Signposted | AttachmentRefused | Forget | FollowUp | CopyShown | CopyEmailed
)


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
    email_copies: bool = False
    """The helpline can send email: a copy asked for in the chat also goes to the address
    the enquirer gave. False: the chat says so, and nothing is queued that cannot go."""

    @classmethod
    def expecting(
        cls,
        expected: Expectation,
        *,
        now: datetime,
        reference: str,
        awaiting: str | None = None,
        email_copies: bool = False,
    ) -> Context:
        """The context of a message handled ``now``, when ``expected`` says when a case sent
        now would be answered (the reply note, and whether anyone is on duty)."""
        return cls(
            now=now,
            reference=reference,
            reply_note=expected.note,
            out_of_hours=not expected.open_now,
            awaiting=awaiting,
            email_copies=email_copies,
        )


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one message produced: the conversation after it, what to say, what to do."""

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
    shown: set[str] = field(default_factory=set)
    """Services listed in this turn's replies: each is listed once (999 is not repeated
    under the child's services after the danger lines)."""

    @property
    def state(self) -> str:
        """The current step's name, the model attribute ``transitions`` reads and sets."""
        return self.conversation.step.value

    @state.setter
    def state(self, value: str) -> None:
        self.conversation.step = Step(value)

    @property
    def answers(self) -> dict[str, Any]:
        """The answers so far (the conversation's own dict, so callbacks can change it)."""
        return self.conversation.answers

    @property
    def audience(self) -> Audience | None:
        """Who is reading: recognised now, or else from the role they gave."""
        return self.reader or audience_of(self.answers.get(Step.ROLE))

    def say(self, text: str) -> None:
        """Add ``text`` to what this turn says back."""
        self.replies.append(Reply(text))
