"""Channel-neutral messages: what an enquirer sends and what the bot says back.

Every channel (terminal, Telegram, Slack, a future web chat) translates its own payloads
into an :class:`Inbound` and renders each :class:`Reply`; the flow never sees which
channel it is talking to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class InboundKind(StrEnum):
    """What kind of thing the enquirer did."""

    TEXT = "text"
    """Typed text (which may still match an option, a number or a command)."""
    CHOOSE = "choose"
    """Picked option ids: the whole answer (an empty tuple confirms a multiple choice)."""
    TOGGLE = "toggle"
    """Ticked or unticked one option of a multiple choice (button channels)."""
    COMMAND = "command"
    """A navigation command: start, back, restart, cancel, help."""
    ATTACHMENT = "attachment"
    """A photo, video, file, voice note or sticker arrived. Never opened or kept."""


class Command(StrEnum):
    """Navigation the enquirer can ask for at any step."""

    START = "start"
    BACK = "back"
    RESTART = "restart"
    CANCEL = "cancel"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing the enquirer did, in channel-neutral form.

    ``question`` names the question a pressed button belonged to, so a button from an
    older message can be recognised as stale instead of answering the wrong question.
    """

    kind: InboundKind
    text: str = ""
    option_ids: tuple[str, ...] = ()
    command: Command | None = None
    question: str | None = None
    about: str | None = None
    """The case reference named by the bot's message this one replies to (a Telegram
    reply to a practitioner's message or to the confirmation): it goes to that case."""

    @classmethod
    def typed(cls, text: str, *, about: str | None = None) -> Inbound:
        """The enquirer typed ``text`` (``about``: the case of the message they replied to)."""
        return cls(InboundKind.TEXT, text=text, about=about)

    @classmethod
    def chose(cls, *option_ids: str, question: str | None = None) -> Inbound:
        """The enquirer chose ``option_ids`` (and the question answered, when the channel knows)."""
        return cls(InboundKind.CHOOSE, option_ids=tuple(option_ids), question=question)

    @classmethod
    def toggled(cls, option_id: str, question: str | None = None) -> Inbound:
        """The enquirer ticked or unticked one option of a multiple choice."""
        return cls(InboundKind.TOGGLE, option_ids=(option_id,), question=question)

    @classmethod
    def commanded(cls, command: Command, question: str | None = None) -> Inbound:
        """A command; ``question`` when it came from a button under that question (Back)."""
        return cls(InboundKind.COMMAND, command=command, question=question)

    @classmethod
    def attachment(cls) -> Inbound:
        """The enquirer sent media; only the fact arrives, never the content."""
        return cls(InboundKind.ATTACHMENT)


@dataclass(frozen=True, slots=True)
class Option:
    """An answer the enquirer can pick. ``id`` is short and stable; ``label`` is shown."""

    id: str
    label: str
    help: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One message from the bot.

    ``question`` is set when the reply asks something (the state's name), so a channel
    can tag its buttons with it. ``multiple`` marks a multiple choice whose current
    ticks are ``selected``; ``done_id`` is the option that confirms it.
    """

    text: str
    options: tuple[Option, ...] = ()
    multiple: bool = False
    selected: frozenset[str] = field(default_factory=frozenset)
    question: str | None = None
    done_id: str | None = None

    def to_json(self) -> dict[str, object]:
        """The stable JSON shape channels and tests rely on."""
        return {
            "text": self.text,
            "options": [{"id": o.id, "label": o.label} for o in self.options],
            "multiple": self.multiple,
        }
