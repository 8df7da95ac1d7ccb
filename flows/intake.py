"""The intake conversation: one table of transitions, and the step function around it.

:data:`TRANSITIONS` is the whole route through the conversation, read top to bottom:
each row is ``(source, dest, condition, after)``; the first row whose condition holds
wins. One module-level ``transitions.Machine`` runs it for every conversation (the model
is restored from storage on each message). :meth:`IntakeFlow.handle` is pure: it takes
the saved :class:`Conversation` and an :class:`Inbound`, and returns the new
conversation, the bot's replies and the effects storage must carry out.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from transitions import Machine

from flows.conversation import FINAL_STEPS, CaseDraft, CaseStatus, Conversation, ReplyVia, Step
from flows.copy import Copy, default_copy
from flows.matching import choices_for, match_one, normalise
from flows.messages import Command, Inbound, InboundKind, Option, Reply
from flows.playbooks import Playbooks, default_playbooks
from flows.questions import (
    DONE,
    QUESTIONS,
    Answer,
    Kind,
    Reask,
    Stay,
    interpret,
    is_answered,
    offered,
)
from flows.remit import RISK_ROUTES, Directory, Route, default_directory
from flows.taxonomy import Taxonomy, default_taxonomy
from flows.validate import find_links

NEW_ENQUIRY = "new"
IMPLIES: Mapping[Step, Step] = {Step.PLATFORM_TYPE: Step.PLATFORM}

# Effects: what storage and channels must do because of this message ------------------


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


@dataclass(frozen=True, slots=True)
class StepResult:
    conversation: Conversation
    replies: tuple[Reply, ...]
    effects: tuple[Effect, ...]


@dataclass
class Turn:
    """One message being handled: the model the machine moves, plus what it produced."""

    flow: IntakeFlow
    conversation: Conversation
    context: Context
    choice: str | None = None
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

    def say(self, text: str) -> None:
        self.replies.append(Reply(text))


# Conditions and callbacks named in the table -----------------------------------------

Condition = Callable[[Turn], bool]
PUBLIC_ROLES = frozenset({"parent", "public", "other"})
ENDING_CONCERNS: Mapping[str, Route] = {
    "my_images": Route.INTIMATE_ADULT,
    "own_thoughts": Route.OWN_THOUGHTS,
}
CONTINUING_CONCERNS: Mapping[str, Route] = {
    "child": Route.WORRIED_ABOUT_CHILD,
    "other": Route.PUBLIC_OTHER,
}

EDITABLE: tuple[tuple[str, Step], ...] = (
    ("enquirer_type", Step.ROLE_GROUP),
    ("setting", Step.SETTING),
    ("region", Step.REGION),
    ("platform_type", Step.PLATFORM_TYPE),
    ("platform", Step.PLATFORM),
    ("categories", Step.CATEGORIES),
    ("subject", Step.SUBJECT),
    ("description", Step.DESCRIPTION),
    ("links", Step.LINKS),
    ("already_reported", Step.ALREADY_REPORTED),
    ("danger", Step.DANGER),
    ("reply_via", Step.REPLY_VIA),
    ("name", Step.NAME),
)


def _chose_step(step: Step) -> Condition:
    return lambda turn: turn.choice == step.value


CONDITIONS: Mapping[str, Condition] = {
    "is_child": lambda t: t.answers.get(Step.ROLE) == "child",
    "is_public": lambda t: t.answers.get(Step.ROLE) in PUBLIC_ROLES,
    "concern_ends": lambda t: t.answers.get(Step.PUBLIC_CONCERN) in ENDING_CONCERNS,
    "asks_platform": lambda t: (
        "asks_platform"
        in t.flow.taxonomy["platform_type"][str(t.answers[Step.PLATFORM_TYPE])].flags
    ),
    "wants_email": lambda t: t.answers.get(Step.REPLY_VIA) == "email",
    "wants_phone": lambda t: t.answers.get(Step.REPLY_VIA) == "phone",
    "chose_submit": lambda t: t.choice == "submit",
    "chose_edit": lambda t: t.choice == "edit",
    "chose_cancel": lambda t: t.choice == "cancel",
    **{f"edit_{name}": _chose_step(step) for name, step in EDITABLE},
}


def _show_concern_services(turn: Turn) -> None:
    route = CONTINUING_CONCERNS.get(str(turn.answers.get(Step.PUBLIC_CONCERN)))
    if route is not None:
        turn.flow.signpost(turn, route)


def _show_category_services(turn: Turn) -> None:
    categories = turn.flow.taxonomy["category"]
    ids = [s for c in turn.answers.get(Step.CATEGORIES, []) for s in categories[c].signposts]
    if ids:
        turn.flow.show_services(turn, "signpost.intro_categories", ids)


def _show_danger(turn: Turn) -> None:
    if turn.answers.get(Step.DANGER) == "yes":
        turn.flow.signpost(turn, Route.DANGER)


def _enter_signposted(turn: Turn) -> None:
    flow, answers = turn.flow, turn.answers
    route = ENDING_CONCERNS.get(str(answers.get(Step.PUBLIC_CONCERN)), Route.CHILD)
    flow.signpost(turn, route)
    turn.say(flow.copy("signpost.closing_ends"))
    draft = CaseDraft(
        reference=turn.context.reference,
        status=CaseStatus.SIGNPOSTED,
        received_at=turn.context.now,
        enquirer_type=flow.label("enquirer_type", answers.get(Step.ROLE)),
        signposted_to=tuple(answers.get("signposted_to", ())),
    )
    turn.effects.append(Signposted(draft))
    turn.conversation.answers = {}
    turn.conversation.history.clear()


def _enter_submitted(turn: Turn) -> None:
    draft = turn.flow.draft(turn.conversation, turn.context)
    turn.effects.append(CaseSubmitted(draft))
    copy = turn.flow.copy
    via = copy(f"outcome.submitted_reply_{draft.reply_via or 'chat'}")
    text = copy("outcome.submitted", reference=draft.reference, reply_via=via)
    if turn.context.reply_note:
        text += "\n\n" + turn.context.reply_note
    if turn.context.out_of_hours:
        given = set(draft.signposted_to)
        always = [
            s for s in turn.flow.directory.services.values() if s.always_open and s.name in given
        ]
        if always:
            lines = [copy("signpost.service_line", name=s.name, contact=s.contact) for s in always]
            text += "\n" + "\n".join([copy("hours.open_now_services"), *lines])
    if draft.urgent:
        text += "\n" + copy("outcome.urgent_note")
    turn.replies.append(Reply(text, (Option(NEW_ENQUIRY, copy("options.new_enquiry")),)))
    turn.say(turn.flow.while_you_wait(turn.conversation))
    turn.conversation.reference = draft.reference
    turn.conversation.history.clear()


def _enter_cancelled(turn: Turn) -> None:
    turn.conversation.answers = {}
    turn.conversation.history.clear()
    turn.effects.append(Forget())
    turn.say(turn.flow.copy("outcome.cancelled"))


CALLBACKS: Mapping[str, Callable[[Turn], None]] = {
    "show_concern_services": _show_concern_services,
    "show_category_services": _show_category_services,
    "show_danger": _show_danger,
}

# The conversation, top to bottom: (source, dest, condition, after) --------------------
S = Step
TRANSITIONS: tuple[tuple[Step, Step, str | None, str | None], ...] = (
    (S.START, S.ROLE_GROUP, None, None),
    (S.ROLE_GROUP, S.ROLE, None, None),
    (S.ROLE, S.SIGNPOSTED, "is_child", None),
    (S.ROLE, S.PUBLIC_CONCERN, "is_public", None),
    (S.ROLE, S.SETTING, None, None),
    (S.PUBLIC_CONCERN, S.SIGNPOSTED, "concern_ends", None),
    (S.PUBLIC_CONCERN, S.SETTING, None, "show_concern_services"),
    (S.SETTING, S.REGION, None, None),
    (S.REGION, S.PLATFORM_TYPE, None, None),
    (S.PLATFORM_TYPE, S.PLATFORM, "asks_platform", None),
    (S.PLATFORM_TYPE, S.CATEGORIES, None, None),
    (S.PLATFORM, S.CATEGORIES, None, None),
    (S.CATEGORIES, S.SUBJECT, None, "show_category_services"),
    (S.SUBJECT, S.DESCRIPTION, None, None),
    (S.DESCRIPTION, S.LINKS, None, None),
    (S.LINKS, S.ALREADY_REPORTED, None, None),
    (S.ALREADY_REPORTED, S.DANGER, None, None),
    (S.DANGER, S.REPLY_VIA, None, "show_danger"),
    (S.REPLY_VIA, S.EMAIL, "wants_email", None),
    (S.REPLY_VIA, S.PHONE, "wants_phone", None),
    (S.REPLY_VIA, S.NAME, None, None),
    (S.EMAIL, S.NAME, None, None),
    (S.PHONE, S.NAME, None, None),
    (S.NAME, S.REVIEW, None, None),
    (S.REVIEW, S.SUBMITTED, "chose_submit", None),
    (S.REVIEW, S.EDIT, "chose_edit", None),
    (S.REVIEW, S.CANCELLED, "chose_cancel", None),
    *((S.EDIT, step, f"edit_{name}", None) for name, step in EDITABLE),
)
ON_ENTER: Mapping[Step, Callable[[Turn], None]] = {
    S.SIGNPOSTED: _enter_signposted,
    S.SUBMITTED: _enter_submitted,
    S.CANCELLED: _enter_cancelled,
}


def build_machine() -> Machine:
    """The one machine for all conversations; unknown names in the table fail here."""
    rows = []
    for source, dest, condition, after in TRANSITIONS:
        if condition is not None and condition not in CONDITIONS:
            raise ValueError(f"transition {source}->{dest}: unknown condition {condition!r}")
        if after is not None and after not in CALLBACKS:
            raise ValueError(f"transition {source}->{dest}: unknown callback {after!r}")
        row: dict[str, Any] = {"trigger": "next", "source": source.value, "dest": dest.value}
        if condition:
            row["conditions"] = [CONDITIONS[condition]]
        if after:
            row["after"] = [CALLBACKS[after]]
        rows.append(row)
    states = [{"name": s.value, "on_enter": [ON_ENTER[s]] if s in ON_ENTER else []} for s in Step]
    asked = {source for source, *_ in TRANSITIONS} - {S.START, S.EDIT}
    if missing := asked - set(QUESTIONS):
        raise ValueError(f"steps with transitions but no question: {sorted(missing)}")
    return Machine(
        model=None, states=states, transitions=rows, initial=None, auto_transitions=False
    )


MACHINE = build_machine()

_COMMAND_WORDS: Mapping[str, Command] = {
    "start": Command.START,
    "back": Command.BACK,
    "go back": Command.BACK,
    "previous": Command.BACK,
    "restart": Command.RESTART,
    "start again": Command.RESTART,
    "start over": Command.RESTART,
    "cancel": Command.CANCEL,
    "stop": Command.CANCEL,
    "quit": Command.CANCEL,
    "help": Command.HELP,
}


class IntakeFlow:
    """Runs the conversation table over the taxonomy, directory and wording it is given."""

    def __init__(
        self,
        *,
        taxonomy: Taxonomy | None = None,
        directory: Directory | None = None,
        copy: Copy | None = None,
        playbooks: Playbooks | None = None,
    ) -> None:
        self.playbooks: Playbooks = playbooks or default_playbooks()
        self.taxonomy: Taxonomy = taxonomy or default_taxonomy()
        self.directory: Directory = directory or default_directory()
        self.copy: Copy = copy or default_copy()
        for category in self.taxonomy["category"].terms:
            if unknown := [s for s in category.signposts if s not in self.directory.services]:
                raise ValueError(f"category {category.id!r} names unknown services {unknown}")

    # The step function ---------------------------------------------------------------

    def handle(self, conversation: Conversation, inbound: Inbound, context: Context) -> StepResult:
        """Apply one inbound message to a saved conversation. Pure; never raises on input."""
        conv = Conversation.from_json(_copy.deepcopy(conversation.to_json()))
        turn = Turn(self, conv, context)
        self._dispatch(turn, inbound)
        return StepResult(turn.conversation, tuple(turn.replies), tuple(turn.effects))

    def _dispatch(self, turn: Turn, inbound: Inbound) -> None:
        conv = turn.conversation
        if inbound.kind is InboundKind.ATTACHMENT:
            turn.effects.append(AttachmentRefused())
            turn.say(self.copy("attachment.refused"))
            return self._ask_current(turn)
        command = inbound.command
        if command is None and inbound.kind is InboundKind.TEXT:
            command = _COMMAND_WORDS.get(normalise(inbound.text))
        if inbound.kind is InboundKind.TEXT and command is None:
            self._notice_risk(turn, inbound.text)
        if command is not None:
            return self._command(turn, command)
        if conv.step is Step.START:
            return self._begin(turn, welcome=True)
        if conv.step in FINAL_STEPS:
            return self._after_end(turn, inbound)
        if inbound.question is not None and inbound.question != conv.step.value:
            turn.say(self.copy("reasks.stale"))
            return self._ask_current(turn)
        if conv.step is Step.EDIT:
            return self._choose_edit(turn, inbound)
        self._answer(turn, inbound)

    def _answer(self, turn: Turn, inbound: Inbound) -> None:
        conv = turn.conversation
        step = conv.step
        result = interpret(step, inbound, conv, self.taxonomy, self.copy)
        if isinstance(result, Reask):
            turn.say(self.copy(result.key, **(result.values or {})))
            return self._ask_current(turn, repeat=True)
        if isinstance(result, Stay):
            if result.notice:
                turn.replies.append(self._question_reply(turn, self.copy(result.notice)))
            else:
                self._ask_current(turn)
            return
        assert isinstance(result, Answer)
        if step is Step.REVIEW:
            turn.choice = str(result.value)
        else:
            conv.answers[step.value] = result.value
            if step is Step.DESCRIPTION:
                self._add_links(conv, str(result.value))
            if inbound.kind is InboundKind.TEXT and step in IMPLIES:
                self._imply(conv, IMPLIES[step], inbound.text)
        conv.selection.clear()
        conv.pending.clear()
        if not conv.history or conv.history[-1] != step.value:
            conv.history.append(step.value)
        self._advance(turn)

    def _advance(self, turn: Turn) -> None:
        """Move on until a question that needs asking (or an end) is reached."""
        conv = turn.conversation
        while True:
            moved = MACHINE.events["next"].trigger(turn, turn)
            turn.choice = None
            conv = turn.conversation
            step = conv.step
            if not moved:
                break
            if step in FINAL_STEPS or step in (Step.REVIEW, Step.EDIT):
                break
            if step is Step.ROLE and self._auto_role(conv):
                continue
            implied = conv.answers.get("implied", [])
            if (conv.editing or step.value in implied) and is_answered(
                step, self.taxonomy, self.copy, conv.answers
            ):
                if step.value in implied:
                    implied.remove(step.value)
                continue
            break
        if conv.step is Step.REVIEW:
            conv.editing = False
        if conv.step not in FINAL_STEPS:
            self._ask_current(turn)

    def _auto_role(self, conv: Conversation) -> bool:
        """A group with one role (Police, Parent…) answers the role question itself."""
        roles = offered(Step.ROLE, self.taxonomy, self.copy, conv.answers)
        if len(roles) == 1:
            conv.answers[Step.ROLE.value] = roles[0].option.id
            return True
        return False

    def _imply(self, conv: Conversation, step: Step, text: str) -> None:
        """ "TikTok" answers "where is it" and "which platform" at once: don't ask twice."""
        items = offered(step, self.taxonomy, self.copy, conv.answers)
        found = match_one(text, choices_for([(o.option.id, o.names) for o in items]))
        if found:
            conv.answers[step.value] = found
            conv.answers.setdefault("implied", []).append(step.value)

    def _add_links(self, conv: Conversation, description: str) -> None:
        found = find_links(description)
        if found:
            conv.answers["description_links"] = found

    def describe(self, conversation: Conversation, inbound: Inbound) -> str:
        """How an inbound message reads in the transcript: choices by their labels."""
        if inbound.kind is InboundKind.TEXT:
            return inbound.text
        if inbound.kind is InboundKind.ATTACHMENT:
            return ""
        if inbound.kind is InboundKind.COMMAND:
            return f"/{inbound.command.value if inbound.command else ''}"
        step = conversation.step
        if step is Step.EDIT:
            labels = {o.id: o.label for o in self._edit_options(conversation)}
        elif step in QUESTIONS:
            items = offered(step, self.taxonomy, self.copy, conversation.answers)
            labels = {o.option.id: o.option.label for o in items}
        else:
            labels = {NEW_ENQUIRY: self.copy("options.new_enquiry")}
        names = [labels.get(i, "?") for i in inbound.option_ids]
        verb = "ticked" if inbound.kind is InboundKind.TOGGLE else "chose"
        return f"[{verb}: {', '.join(names) or self.copy('options.done')}]"

    # Commands --------------------------------------------------------------------------

    def _command(self, turn: Turn, command: Command) -> None:
        conv = turn.conversation
        if command is Command.HELP:
            turn.say(self.copy("help"))
            return self._ask_current(turn)
        if (
            command is Command.START
            and conv.step not in FINAL_STEPS
            and conv.step is not Step.START
        ):
            return self._ask_current(turn)
        if command in (Command.START, Command.RESTART):
            if conv.step is not Step.START and conv.answers:
                turn.effects.append(Forget())
            welcome = command is Command.START or conv.step is Step.START
            if not welcome:
                turn.say(self.copy("outcome.restarted"))
            return self._begin(turn, welcome=welcome)
        if command is Command.CANCEL:
            conv.step = Step.CANCELLED
            conv.editing = False
            return _enter_cancelled(turn)
        self._back(turn)

    def _back(self, turn: Turn) -> None:
        conv = turn.conversation
        if conv.editing or conv.step is Step.EDIT:
            conv.editing = False
            conv.step = Step.REVIEW
            return self._ask_current(turn)
        if conv.step in FINAL_STEPS or not conv.history:
            turn.say(self.copy("reasks.nothing_to_go_back_to"))
            return self._ask_current(turn)
        if conv.history[-1] == conv.step.value:
            conv.history.pop()
        if not conv.history:
            turn.say(self.copy("reasks.nothing_to_go_back_to"))
            return self._ask_current(turn)
        conv.step = Step(conv.history.pop())
        conv.pending.clear()
        self._prefill(conv)
        self._ask_current(turn)

    def _begin(self, turn: Turn, *, welcome: bool) -> None:
        old = turn.conversation
        turn.conversation = Conversation()
        if old.step is Step.START and "risks" in old.answers:
            turn.conversation.answers["risks"] = old.answers["risks"]
            turn.conversation.answers["signposted_to"] = old.answers.get("signposted_to", [])
        if welcome:
            turn.say(self.copy("welcome"))
        self._advance(turn)

    def _after_end(self, turn: Turn, inbound: Inbound) -> None:
        conv = turn.conversation
        if inbound.kind is InboundKind.CHOOSE and NEW_ENQUIRY in inbound.option_ids:
            return self._begin(turn, welcome=True)
        if conv.step is Step.SUBMITTED and conv.reference and inbound.kind is InboundKind.TEXT:
            turn.effects.append(FollowUp(conv.reference, inbound.text))
            turn.say(self.copy("outcome.followup_added", reference=conv.reference))
            return
        key = {
            Step.CANCELLED: "outcome.after_cancel",
            Step.SUBMITTED: "outcome.after_submit",
        }.get(conv.step, "outcome.after_signpost")
        text = self.copy(key, reference=conv.reference or "")
        turn.replies.append(Reply(text, (Option(NEW_ENQUIRY, self.copy("options.new_enquiry")),)))

    def _choose_edit(self, turn: Turn, inbound: Inbound) -> None:
        conv = turn.conversation
        options = self._edit_options(conv)
        picked: str | None = None
        if inbound.kind is InboundKind.CHOOSE and len(inbound.option_ids) == 1:
            picked = inbound.option_ids[0]
        elif inbound.kind is InboundKind.TEXT:
            picked = match_one(
                inbound.text, choices_for([(o.id, (o.id, o.label)) for o in options])
            )
        if picked not in {o.id for o in options}:
            turn.say(self.copy("reasks.choose"))
            return self._ask_current(turn, repeat=True)
        turn.choice = picked
        MACHINE.events["next"].trigger(turn, turn)
        conv.editing = True
        self._prefill(conv)
        self._ask_current(turn)

    def _prefill(self, conv: Conversation) -> None:
        if conv.step is Step.CATEGORIES:
            conv.selection = list(conv.answers.get(Step.CATEGORIES, []))

    # Risk and signposting ------------------------------------------------------------

    def _notice_risk(self, turn: Turn, text: str) -> None:
        risks = self.directory.risks_in(text)
        if not risks:
            return
        seen = turn.answers.setdefault("risks", [])
        for risk in risks:
            if risk.value not in seen:
                seen.append(risk.value)
            self.signpost(turn, RISK_ROUTES[risk])

    def signpost(self, turn: Turn, route: Route) -> None:
        """Show a route's services (with its own introduction) and record them."""
        self.show_services(
            turn, f"signpost.intro_{route.value}", self.directory.routes[route].services
        )

    def show_services(self, turn: Turn, intro_key: str, service_ids: Iterable[str]) -> None:
        services = self.directory.resolve(service_ids)
        lines = [self.copy(intro_key)]
        lines += [
            self.copy("signpost.service_line", name=s.name, contact=s.contact) for s in services
        ]
        turn.say("\n".join(lines))
        given = turn.answers.setdefault("signposted_to", [])
        given.extend(s.name for s in services if s.name not in given)

    # Rendering -------------------------------------------------------------------------

    def _ask_current(self, turn: Turn, *, repeat: bool = False) -> None:
        step = turn.conversation.step
        if step in QUESTIONS or step is Step.EDIT:
            turn.replies.append(self._question_reply(turn, None))
        elif step in FINAL_STEPS:
            self._after_end(turn, Inbound(InboundKind.COMMAND))

    def _question_reply(self, turn: Turn, override: str | None) -> Reply:
        conv = turn.conversation
        step = conv.step
        if step is Step.EDIT:
            return Reply(
                override or self.copy("questions.edit"),
                self._edit_options(conv),
                question=step.value,
            )
        question = QUESTIONS[step]
        options = tuple(o.option for o in offered(step, self.taxonomy, self.copy, conv.answers))
        text = override or self.copy(f"questions.{step.value}")
        if override is None and step is Step.DESCRIPTION and self._needs_image_warning(conv):
            text = self.copy("image_warning") + "\n\n" + text
        if override is None and step is Step.REVIEW:
            text = text + "\n\n" + self.summary(conv)
        if question.kind is Kind.MULTI:
            return Reply(
                text,
                options,
                multiple=True,
                selected=frozenset(conv.selection),
                question=step.value,
                done_id=DONE,
            )
        return Reply(text, options, question=step.value)

    def _needs_image_warning(self, conv: Conversation) -> bool:
        categories = self.taxonomy["category"]
        chosen = conv.answers.get(Step.CATEGORIES)
        terms = [categories.get(str(c)) for c in chosen] if isinstance(chosen, list) else []
        return any(term is not None and "image_warning" in term.flags for term in terms)

    def _edit_options(self, conv: Conversation) -> tuple[Option, ...]:
        on_path = set(self.path(conv.answers))
        return tuple(
            Option(step.value, self.copy(f"fields.{name}"))
            for name, step in EDITABLE
            if step in on_path
        )

    def summary(self, conv: Conversation) -> str:
        """The review: every answer on the enquirer's path, as they will be sent."""
        draft = self.draft(conv, Context(now=datetime.min, reference=""))
        c = self.copy
        none = c("review.none")
        contact = {
            ReplyVia.CHAT: c("review.reply_chat"),
            ReplyVia.EMAIL: c("review.reply_email", email=draft.contact_email),
            ReplyVia.PHONE: c("review.reply_phone", phone=draft.contact_phone),
        }
        description = draft.description or none
        if len(description) > 600:
            description = description[:600].rstrip() + "…"
        values: dict[str, str | None] = {
            "enquirer_type": draft.enquirer_type,
            "setting": draft.setting,
            "region": draft.region,
            "platform_type": draft.platform_type,
            "platform": draft.platform,
            "categories": ", ".join(draft.categories),
            "subject": draft.subject,
            "description": description,
            "links": "\n".join(draft.links) or none,
            "already_reported": self._option_label(Step.ALREADY_REPORTED, conv.answers),
            "danger": self._option_label(Step.DANGER, conv.answers),
            "reply_via": contact[draft.reply_via] if draft.reply_via else None,
            "name": draft.contact_name or c("review.skipped"),
        }
        on_path = set(self.path(conv.answers))
        return "\n".join(
            c("review.line", field=c(f"fields.{name}"), value=values[name])
            for name, step in EDITABLE
            if step in on_path and values[name] is not None
        )

    def _option_label(self, step: Step, answers: Mapping[str, Any]) -> str | None:
        for item in offered(step, self.taxonomy, self.copy, answers):
            if item.option.id == answers.get(step.value):
                return item.option.label
        return None

    # The case a conversation describes -----------------------------------------------

    def path(self, answers: Mapping[str, Any]) -> list[Step]:
        """The questions the enquirer's answers lead through, in order, up to the review.

        Answers to questions no longer on the path (a platform, after the content moved
        to a website) are left out of the case.
        """
        probe = Turn(self, Conversation(answers=dict(answers)), Context(datetime.min, ""))
        steps: list[Step] = []
        step = Step.START
        while True:
            rows = [r for r in TRANSITIONS if r[0] is step]
            nxt = next(
                (d for _, d, cond, _ in rows if cond is None or CONDITIONS[cond](probe)), None
            )
            if nxt is None or nxt in FINAL_STEPS or nxt is Step.REVIEW or nxt in steps:
                return steps
            if not is_answered(nxt, self.taxonomy, self.copy, answers):
                return steps
            steps.append(nxt)
            step = nxt

    def while_you_wait(self, conv: Conversation) -> str:
        """The platform's own reporting route for what the enquirer described."""
        on_path = self.path(conv.answers)
        platform = conv.answers.get(Step.PLATFORM) if Step.PLATFORM in on_path else None
        categories = conv.answers.get(Step.CATEGORIES, []) if Step.CATEGORIES in on_path else []
        playbook = self.playbooks.for_case(platform, [str(c) for c in categories])
        return self.playbooks.render(playbook)

    def label(self, table: str, term_id: Any) -> str | None:
        term = self.taxonomy[table].get(str(term_id)) if term_id is not None else None
        return term.label if term else None

    def draft(self, conv: Conversation, context: Context) -> CaseDraft:
        """The case the conversation describes, with the taxonomy's labels."""
        a = {step.value: conv.answers[step.value] for step in self.path(conv.answers)}
        links = list(a.get(Step.LINKS, []))
        if Step.DESCRIPTION in a:
            links += [u for u in conv.answers.get("description_links", []) if u not in links]
        reply_via = ReplyVia(a[Step.REPLY_VIA]) if Step.REPLY_VIA in a else None
        already = a.get(Step.ALREADY_REPORTED)
        risks = conv.answers.get("risks", [])
        return CaseDraft(
            reference=context.reference,
            status=CaseStatus.NEW,
            received_at=context.now,
            enquirer_type=self.label("enquirer_type", a.get(Step.ROLE)),
            setting=self.label("setting", a.get(Step.SETTING)),
            region=self.label("region", a.get(Step.REGION)),
            platform_type=self.label("platform_type", a.get(Step.PLATFORM_TYPE)),
            platform=self.label("platform", a.get(Step.PLATFORM)),
            categories=tuple(
                self.taxonomy["category"][c].label for c in a.get(Step.CATEGORIES, [])
            ),
            subject=a.get(Step.SUBJECT),
            description=a.get(Step.DESCRIPTION),
            links=tuple(links),
            already_reported={"yes": True, "no": False}.get(str(already)) if already else None,
            urgent=a.get(Step.DANGER) == "yes" or bool(risks),
            reply_via=reply_via,
            contact_email=a.get(Step.EMAIL) if reply_via is ReplyVia.EMAIL else None,
            contact_phone=a.get(Step.PHONE) if reply_via is ReplyVia.PHONE else None,
            contact_name=a.get(Step.NAME),
            signposted_to=tuple(conv.answers.get("signposted_to", ())),
        )
