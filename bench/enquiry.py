"""The enquiry every benchmark drives: a teacher's 18 turns, from /start to "Send my enquiry".

The same turns as the tests' ``complete_enquiry`` (``tests/support/telegram.py``). What the
enquirer *types* is written here; what it *presses* is named by step and option id and
worded from the flow's own data (``flows/data/copy.toml`` and the taxonomy, through
``flows.questions.QUESTIONS``), so a label edited there is pressed here unchanged, and a
button that no longer exists fails the run instead of matching something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from flows.conversation import Step
from flows.knowledge import Knowledge, default_knowledge
from flows.messages import Command, Inbound
from flows.questions import DONE, QUESTIONS

Action = Literal["say", "tap", "tick"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One thing the enquirer does.

    ``say``: type ``text`` (a ``/command`` is sent as one). ``tap``: press the button
    labelled ``text``, which means ``option`` at ``step`` (``option`` None: the Done of a
    multiple choice). ``tick``: press a multiple choice's button, which edits the question's
    buttons in place instead of asking the next one.
    """

    action: Action
    text: str
    step: Step | None = None
    option: str | None = None

    def inbound(self) -> Inbound:
        """What the turn means to the intake service (for benches that skip Telegram)."""
        if self.action == "say":
            if self.text.startswith("/"):
                return Inbound.commanded(Command(self.text[1:]))
            return Inbound.typed(self.text)
        question = self.step.value if self.step else None
        if self.action == "tick":
            assert self.option is not None
            return Inbound.toggled(self.option, question=question)
        if self.option is None:
            return Inbound.chose(question=question)
        return Inbound.chose(self.option, question=question)


def option_label(knowledge: Knowledge, step: Step, option: str, answers: Mapping[str, str]) -> str:
    """The label the flow gives ``option`` at ``step`` (``answers``: what was chosen before,
    for questions whose options depend on it, like the role after the role group)."""
    for offered in QUESTIONS[step].options(knowledge, answers):
        if offered.option.id == option:
            return offered.option.label
    raise LookupError(f"the flow offers no option {option!r} at {step.value}")


@cache
def script() -> tuple[Turn, ...]:
    """The enquiry's turns, with today's wording of every button."""
    k = default_knowledge()
    answers: dict[str, str] = {}

    def tap(step: Step, option: str) -> Turn:
        answers[step.value] = option
        return Turn("tap", option_label(k, step, option, answers), step, option)

    def tick(step: Step, option: str) -> Turn:
        label = k.copy("channel.unticked") + option_label(k, step, option, answers)
        return Turn("tick", label, step, option)

    return (
        Turn("say", "/start"),
        tap(Step.ROLE_GROUP, "school"),
        tap(Step.ROLE, "teacher"),
        tap(Step.SETTING, "secondary"),
        Turn("say", "south east"),
        tap(Step.PLATFORM_TYPE, "social"),
        tap(Step.PLATFORM, "tiktok"),
        tick(Step.CATEGORIES, "reputation"),
        Turn("tap", k.copy("channel.done_button"), Step.CATEGORIES),
        Turn("say", "Fake account using our logo"),
        Turn("say", "Someone set up an account pretending to be the school."),
        tap(Step.DESCRIPTION, DONE),
        Turn("say", "https://www.tiktok.com/@not_our_school"),
        tap(Step.ALREADY_REPORTED, "no"),
        tap(Step.DANGER, "no"),
        tap(Step.REPLY_VIA, "chat"),
        Turn("say", "skip"),
        tap(Step.REVIEW, "submit"),
    )


@cache
def confirmation_mark() -> str:
    """The words a finished enquiry's confirmation opens with, up to its reference."""
    template = default_knowledge().copy.entries["outcome.submitted"]
    return template.split("{reference}", 1)[0]


def ticked_mark() -> str:
    """What a ticked option's button starts with (an answered tick shows it)."""
    return default_knowledge().copy("channel.ticked")
