"""The intake conversation's step function: one inbound message in, replies and effects out.

:meth:`IntakeFlow.handle` is pure: it takes the saved :class:`Conversation` and an
:class:`Inbound`, runs the transitions table (``flows/table.py``) and returns the new
conversation, the bot's replies and the effects storage must carry out.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterable, Mapping

from flows.casefile import CaseFile
from flows.conversation import FINAL_STEPS, Conversation, Step
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
from flows.table import MACHINE, NEW_ENQUIRY, TRANSITIONS, enter_cancelled
from flows.taxonomy import Taxonomy, default_taxonomy
from flows.turn import (
    AttachmentRefused,
    CaseSubmitted,
    Context,
    Effect,
    FollowUp,
    Forget,
    Signposted,
    StepResult,
    Turn,
)
from flows.validate import find_links

__all__ = [
    "MACHINE",
    "NEW_ENQUIRY",
    "TRANSITIONS",
    "AttachmentRefused",
    "CaseSubmitted",
    "Context",
    "Effect",
    "FollowUp",
    "Forget",
    "IntakeFlow",
    "Signposted",
    "StepResult",
]

IMPLIES: Mapping[Step, Step] = {Step.PLATFORM_TYPE: Step.PLATFORM}

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
        self.casefile = CaseFile(self)
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
        in_progress = conv.step is not Step.START and conv.step not in FINAL_STEPS
        if in_progress and inbound.question is not None and inbound.question != conv.step.value:
            # A button (an answer, or Back) under a question that has moved on.
            turn.say(self.copy("reasks.stale"))
            return self._ask_current(turn)
        if command is not None:
            return self._command(turn, command)
        if conv.step is Step.START:
            return self._begin(turn, welcome=True)
        if conv.step in FINAL_STEPS:
            return self._after_end(turn, inbound)
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
            missing = self.casefile.missing(conv.answers)
            if turn.choice == "submit" and missing is not None:
                # Never send a half-finished enquiry: ask what is missing first.
                conv.step, conv.editing, turn.choice = missing, True, None
                turn.say(self.copy("reasks.finish_first"))
                return self._ask_current(turn)
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
        # Replaced every time: a link removed from a rewritten description goes too.
        conv.answers["description_links"] = find_links(description)

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
            labels = {o.id: o.label for o in self.casefile.edit_options(conversation)}
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
        if command is Command.CANCEL and conv.step is Step.SUBMITTED:
            # The case is with the helpline: say so honestly; a withdrawal is a follow-up.
            turn.say(self.copy("outcome.cancel_after_submit", reference=conv.reference or ""))
            return
        if command is Command.CANCEL:
            conv.step = Step.CANCELLED
            conv.editing = False
            return enter_cancelled(turn)
        self._back(turn)

    def _back(self, turn: Turn) -> None:
        conv = turn.conversation
        if conv.editing or conv.step is Step.EDIT:
            return self._back_to_review(turn)
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

    def _back_to_review(self, turn: Turn) -> None:
        """Leave an edit for the review, unless the change left a question unanswered."""
        conv = turn.conversation
        missing = self.casefile.missing(conv.answers)
        if missing is not None and conv.step is not Step.EDIT:
            conv.step, conv.editing = missing, True
            conv.pending.clear()
            turn.say(self.copy("reasks.finish_first"))
            return self._ask_current(turn)
        conv.editing = False
        conv.step = Step.REVIEW
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
        options = self.casefile.edit_options(conv)
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
                self.casefile.edit_options(conv),
                question=step.value,
            )
        question = QUESTIONS[step]
        options = tuple(o.option for o in offered(step, self.taxonomy, self.copy, conv.answers))
        text = override or self.copy(f"questions.{step.value}")
        if override is None and step is Step.DESCRIPTION and self._needs_image_warning(conv):
            text = self.copy("image_warning") + "\n\n" + text
        if override is None and step is Step.REVIEW:
            text = text + "\n\n" + self.casefile.summary(conv)
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
