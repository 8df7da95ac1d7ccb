"""Enquirers scripted against the pure flow, and the answers of a whole enquiry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from flows.conversation import Conversation, Step
from flows.intake import Context, Effect, IntakeFlow, StepResult
from flows.messages import Command, Inbound, Reply

NOW = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


@dataclass
class Enquirer:
    """Talks to the flow and keeps what came back, like a chat window."""

    flow: IntakeFlow
    conversation: Conversation = field(default_factory=Conversation)
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    last: StepResult | None = None
    email_copies: bool = False
    """Whether the helpline can send email (the flow's Context says so)."""

    def send(self, inbound: Inbound | str) -> StepResult:
        if isinstance(inbound, str):
            inbound = Inbound.typed(inbound)
        context = Context(NOW, "HL-TEST01", email_copies=self.email_copies)
        result = self.flow.handle(self.conversation, inbound, context)
        self.conversation = result.conversation
        self.replies = list(result.replies)
        self.effects.extend(result.effects)
        self.last = result
        return result

    def say(self, *texts: str) -> StepResult:
        result = None
        for text in texts:
            result = self.send(text)
        assert result is not None
        return result

    def command(self, command: Command) -> StepResult:
        return self.send(Inbound.commanded(command))

    @property
    def step(self) -> Step:
        return self.conversation.step

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def question(self) -> Reply:
        asked = [r for r in self.replies if r.question]
        assert asked, f"no question in replies: {self.text!r}"
        return asked[-1]

    def option_id(self, label_part: str) -> str:
        for option in self.question.options:
            if label_part.lower() in option.label.lower():
                return option.id
        raise AssertionError(f"no option like {label_part!r} in {self.question.options}")


# A professional's answers from the first message to the review (one line each).
PROFESSIONAL_TO_REVIEW = (
    "hello",
    "School or college staff",
    "Teacher",
    "Secondary school",
    "London",
    "TikTok",
    "Online reputation, cyberbullying",
    "Fake TikTok account using our school logo",
    "An account is posting edited photos of staff with insulting captions.",
    "done",
    "https://www.tiktok.com/@fake_school_account",
    "No",
    "No",
    "email",
    "dsl@school.example.org.uk",
    "Sam Jones, Example High",
)
