"""The intake conversation's step function: one inbound message in, replies and effects out.

:meth:`IntakeFlow.handle` is pure: it takes the saved :class:`Conversation` and an
:class:`Inbound` and returns the new conversation, the bot's replies and the effects
storage must carry out. Every typed message is first read by the understanding layer
(``flows/understanding.py``), at any step: a child is signposted at once, risk brings
999 and the crisis lines first, a first message is taken in whole (and shown back for
checking), and only what is still missing is asked. The route itself is
``flows/routing.py``; the machine that walks it, ``flows/machine.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from flows import casefile
from flows.conversation import EARLIER, FINAL_STEPS, Conversation, Step
from flows.copy import Copy
from flows.knowledge import Knowledge, default_knowledge
from flows.machine import (
    MACHINE,
    NEW_ENQUIRY,
    SEND_COPY,
    SIGNPOSTED_ROUTE,
    after_submit_options,
    enter_cancelled,
    enter_signposted,
    step_on,
)
from flows.matching import choices_for, match_exact, match_one
from flows.messages import Command, Inbound, InboundKind, Option, Reply
from flows.questions import (
    DESCRIPTION_LIMIT,
    QUESTIONS,
    Answer,
    Kind,
    Reask,
    Stay,
    fallback,
    interpret,
    is_answered,
    menu,
    number_of,
    offered,
)
from flows.remit import RISK_ROUTES, Audience, Route
from flows.routing import ORDER, PUBLIC_ROLES, ROUTE
from flows.signposting import helpline_contact, show_route
from flows.taxonomy import Taxonomy
from flows.turn import (
    AttachmentRefused,
    CaseSubmitted,
    Context,
    CopyEmailed,
    CopyShown,
    Effect,
    FollowUp,
    Forget,
    Signposted,
    StepResult,
    Turn,
)
from flows.understanding import Field, Understander, Understanding
from flows.validate import find_links, mask_email

__all__ = [
    "MACHINE",
    "NEW_ENQUIRY",
    "ROUTE",
    "AttachmentRefused",
    "CaseSubmitted",
    "Context",
    "CopyEmailed",
    "CopyShown",
    "Effect",
    "FollowUp",
    "Forget",
    "IntakeFlow",
    "Signposted",
    "StepResult",
]

OPENING_WORDS = 8
"""A first message this long is kept as the start of the description."""
DESCRIBED_WORDS = 20
"""A first message this long is the description itself (they can add to it at the review)."""
STORY_WORDS = 3
"""A first message this long that matches no answer is the start of their story."""
STUCK = 3
"""Failed answers in a row at one question before the bot offers another way."""
OWN_WORDS_LIMIT = 300
WHICH_CASE = "which_case"
"""The question "is this about your earlier enquiry or this one?" (its buttons say so)."""
TO_CASE = "case:"
"""Option id prefix of the answer "about HL-…"; the other answer is :data:`TO_CURRENT`."""
TO_CURRENT = "current"
COPY_EMAILED = "copy_emailed"
"""Kept in a submitted conversation's answers once its copy was emailed: one email a case,
so an address nobody checked can never be sent the enquiry again and again."""

FIELDS: dict[Step, Field] = {
    Step(step): question.field for step, question in QUESTIONS.items() if question.field is not None
}
"""Which part of the understanding a typed answer at each step is read for."""

UNDERSTOOD_STEPS: tuple[Step, ...] = (
    Step.ROLE_GROUP,
    Step.ROLE,
    Step.PUBLIC_CONCERN,
    Step.SETTING,
    Step.REGION,
    Step.PLATFORM_TYPE,
    Step.PLATFORM,
    Step.CATEGORIES,
    Step.ALREADY_REPORTED,
)
"""Questions a message can answer without being asked, in route order."""


_SAME_SUBJECT = {Step.ROLE: Step.ROLE_GROUP, Step.PLATFORM: Step.PLATFORM_TYPE}
FOLLOW_UPS: dict[Step | None, tuple[Step, ...]] = {
    Step.ROLE_GROUP: (Step.ROLE, Step.PUBLIC_CONCERN),
    Step.ROLE: (Step.PUBLIC_CONCERN,),
    Step.PLATFORM_TYPE: (Step.PLATFORM,),
}
"""Questions a changed answer can need next (a new group needs its role)."""


def _subjects(steps: Sequence[Step] | Sequence[tuple[Step, object]]) -> int:
    """How many different things were understood (a role and its group are one)."""
    named = [s[0] if isinstance(s, tuple) else s for s in steps]
    return len({_SAME_SUBJECT.get(s, s) for s in named})


def _adult_writing(reading: Understanding) -> bool:
    """The writer said they are an adult member of the public (or gave an adult's age):
    their own intimate images are then the Revenge Porn Helpline's. With no age, nothing
    is assumed: the first question offers "I'm under 18"."""
    said_adult = reading.enquirer_type in PUBLIC_ROLES
    return said_adult or (reading.enquirer_type is None and reading.under_18 is False)


def _copied(conversation: Conversation) -> Conversation:
    """A copy to work on, so a step never changes the conversation it was given."""
    return Conversation.from_json(_plain_copy(conversation.to_json()))


def _plain_copy(value: Any) -> Any:
    """A copy of JSON-shaped data (dicts, lists, scalars), so a step never changes the
    conversation it was given (``copy.deepcopy`` does the same, several times slower)."""
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    return value


class IntakeFlow:
    """Runs the conversation over the helpline's data (taxonomy, directory, wording…)."""

    def __init__(self, *, knowledge: Knowledge | None = None) -> None:
        self.knowledge = knowledge or default_knowledge()

    @property
    def copy(self) -> Copy:
        """The wording, from the flow's knowledge (so callers need not reach into it)."""
        return self.knowledge.copy

    @property
    def taxonomy(self) -> Taxonomy:
        """The taxonomy, from the flow's knowledge (so callers need not reach into it)."""
        return self.knowledge.taxonomy

    @property
    def understander(self) -> Understander:
        """The understander, from the flow's knowledge (so callers need not reach into it)."""
        return self.knowledge.understander

    # The step function ---------------------------------------------------------------

    def handle(self, conversation: Conversation, inbound: Inbound, context: Context) -> StepResult:
        """Apply one inbound message to a saved conversation. Pure; never raises on input."""
        conv = _copied(conversation)
        turn = Turn(self.knowledge, conv, context)
        self._dispatch(turn, inbound)
        return StepResult(turn.conversation, tuple(turn.replies), tuple(turn.effects))

    def where_we_are(self, conversation: Conversation, context: Context) -> tuple[Reply, ...]:
        """What someone coming back to their chat is shown, with no turn taken (nothing is
        written, so nothing they sent is taken as an answer): the question in hand, or
        what they can do now their enquiry has ended. Empty when nothing was begun."""
        if conversation.step is Step.START:
            return ()
        turn = Turn(self.knowledge, _copied(conversation), context)
        self._ask_current(turn)
        return tuple(turn.replies)

    def understand(self, text: str) -> Understanding:
        """What the bot takes from a message on its own (``helpline understand``)."""
        return self.understander.read(text)

    def _dispatch(self, turn: Turn, inbound: Inbound) -> None:
        conv = turn.conversation
        if inbound.kind is InboundKind.ATTACHMENT:
            turn.effects.append(AttachmentRefused())
            turn.say(self.copy("attachment.refused"))
            return self._ask_current(turn)
        if (inbound.question == WHICH_CASE or conv.held is not None) and self._settle_held(
            turn, inbound
        ):
            return None
        command = inbound.command
        if command is None and inbound.kind is InboundKind.TEXT:
            command = self.understander.command(inbound.text)
        reading: Understanding | None = None
        raised = False
        if inbound.kind is InboundKind.TEXT and command is None:
            reading = self.understander.read(inbound.text, answering=FIELDS.get(conv.step))
            raised = self._notice_risk(turn, reading)
            if self._route_follow_up(turn, inbound, raised):
                return None
            if self._child_writing(conv, reading):
                return self._signpost_child(turn, inbound, reading)
        in_progress = conv.step is not Step.START and conv.step not in FINAL_STEPS
        if in_progress and inbound.question is not None and inbound.question != conv.step.value:
            # A button (an answer, or Back) under a question that has moved on.
            turn.say(self.copy("reasks.stale"))
            return self._ask_current(turn)
        if command is not None:
            return self._command(turn, command)
        if conv.step is Step.START:
            return self._open(turn, inbound, reading)
        if conv.step in FINAL_STEPS:
            return self._after_end(turn, inbound)
        if conv.step is Step.EDIT:
            return self._choose_edit(turn, inbound)
        if conv.step is Step.CONFIRM:
            return self._confirm(turn, inbound, reading)
        if conv.step is Step.ROLE_GROUP and not conv.history and self._is_opening(reading):
            return self._open(turn, inbound, reading)
        self._answer(turn, inbound, reading, raised)

    # Safety first ----------------------------------------------------------------------

    def _notice_risk(self, turn: Turn, reading: Understanding) -> bool:
        """999 and the crisis lines before anything else; a shorter reminder after that."""
        if not reading.risks:
            return False
        if reading.under_18:
            turn.reader = Audience.CHILD
        seen = turn.answers.setdefault("risks", [])
        for risk in reading.risks:
            if risk.value in seen:
                turn.say(self.copy.worded(f"signpost.reminder_{risk.value}", turn.audience))
            else:
                seen.append(risk.value)
                show_route(turn, RISK_ROUTES[risk])
        return True

    @staticmethod
    def _child_writing(conv: Conversation, reading: Understanding) -> bool:
        """A child writing about themselves: plainly said, or suggested before anyone
        said who they are (an adult's later message quoting a child doesn't count)."""
        if not reading.under_18:
            return False
        if reading.child_certain:
            return True
        return conv.answers.get(Step.ROLE) in (None, "child") and conv.step is not Step.SUBMITTED

    def _signpost_child(self, turn: Turn, inbound: Inbound, reading: Understanding) -> None:
        conv = turn.conversation
        turn.reader = Audience.CHILD
        if conv.step is Step.SUBMITTED and conv.reference:
            # Their enquiry is with the helpline already: pass this on, and help them now.
            self._file_follow_up(turn, conv.reference, inbound.text, said=None)
            return show_route(turn, Route.CHILD)
        if conv.step is Step.SIGNPOSTED:
            # Signposted already (and counted once): the same help again, nothing kept.
            conv.answers[SIGNPOSTED_ROUTE] = Route.CHILD.value
            return self._signpost_again(turn)
        conv.answers[Step.ROLE_GROUP.value] = "young"
        conv.answers[Step.ROLE.value] = "child"
        if reading.categories:  # what fits it is signposted too (forgotten with the rest)
            conv.answers[Step.CATEGORIES.value] = list(reading.categories)
        conv.step, conv.editing, conv.correcting = Step.SIGNPOSTED, False, False
        enter_signposted(turn)

    def _signpost_again(self, turn: Turn) -> None:
        """A signposted enquirer wrote again or asked for help: the services they were
        given, once more, and what they wrote forgotten as the first was."""
        route = Route(turn.conversation.answers[SIGNPOSTED_ROUTE])
        if route is Route.CHILD:
            turn.reader = Audience.CHILD
        turn.effects.append(Forget())
        show_route(turn, route)
        self._ask_current(turn)

    # Messages for an earlier case ------------------------------------------------------

    def _route_follow_up(self, turn: Turn, inbound: Inbound, raised: bool) -> bool:
        """Send a message meant for an earlier case there, whatever is in progress.

        A reply to the bot's message about a case is for that case. Without one, a message
        written after a practitioner's (on an earlier case) could answer it or the
        enquiry in hand: when both are live the enquirer is asked which; when nothing else
        is live it goes to the practitioner's case. True when the message was dealt with.
        """
        conv = turn.conversation
        known = [*conv.earlier, *([conv.reference] if conv.reference else [])]
        if inbound.about is not None and inbound.about in known:
            return self._add_to(turn, inbound.about, inbound.text, since=turn.context.now)
        awaiting = turn.context.awaiting
        if awaiting is None or awaiting not in conv.earlier or awaiting == conv.reference:
            return False
        in_progress = conv.step is not Step.START and conv.step not in FINAL_STEPS
        if not (in_progress or conv.step is Step.SUBMITTED):
            return self._add_to(turn, awaiting, inbound.text)
        if raised:
            # Safety first: to the case a practitioner is working on now, not held for an
            # answer that may never come.
            return self._add_to(turn, awaiting, inbound.text, since=turn.context.now)
        conv.held, conv.held_for = inbound.text, awaiting
        conv.held_since = turn.context.now.isoformat()
        self._ask_which(turn)
        return True

    def _add_to(self, turn: Turn, reference: str, text: str, since: datetime | None = None) -> bool:
        """Add ``text`` to the case ``reference``, say so, and carry on where they were.

        ``since``: the turns from then on are about that case (see :class:`FollowUp`)."""
        conv = turn.conversation
        self._file_follow_up(turn, reference, text, since)
        if conv.step is not Step.START and conv.step not in FINAL_STEPS:
            self._ask_current(turn)
        return True

    def _file_follow_up(
        self,
        turn: Turn,
        reference: str,
        text: str,
        since: datetime | None = None,
        *,
        said: str | None = "followups.added",
    ) -> None:
        """Add ``text`` to the case ``reference`` and say so (copy key ``said``; None says
        nothing). Risk in it makes the case urgent for the desk, and they are told."""
        effect = FollowUp(reference, text, since, self.understander.read(text).risks)
        turn.effects.append(effect)
        if said is not None:
            turn.say(self.copy(said, reference=reference))
            if effect.risks:
                turn.say(self.copy("followups.urgent"))

    def _ask_which(self, turn: Turn) -> None:
        conv = turn.conversation
        earlier = conv.held_for or ""
        current = (
            self.copy("followups.to_submitted", reference=conv.reference)
            if conv.step is Step.SUBMITTED and conv.reference
            else self.copy("followups.to_new")
        )
        options = (
            Option(TO_CASE + earlier, self.copy("followups.to_case", reference=earlier)),
            Option(TO_CURRENT, current),
        )
        text = self.copy("followups.which", reference=earlier)
        turn.replies.append(Reply(text, options, question=WHICH_CASE))

    def _settle_held(self, turn: Turn, inbound: Inbound) -> bool:
        """The answer to "which case?"; True when nothing more is to be done with ``inbound``.

        More text while the question is open joins the held message and the question is
        asked again. A command (Back, Restart…) instead of an answer files the held
        message with the practitioner's case it followed, and then runs: nothing is lost.
        """
        conv = turn.conversation
        held, earlier = conv.held, conv.held_for
        since = datetime.fromisoformat(conv.held_since) if conv.held_since else turn.context.now
        choosing = inbound.kind is InboundKind.CHOOSE and inbound.question == WHICH_CASE
        if held is None or earlier is None:
            conv.held = conv.held_for = conv.held_since = None
            if choosing:  # a button from a question already answered
                turn.say(self.copy("reasks.stale"))
                self._ask_current(turn)
                return True
            return False
        if choosing:
            conv.held = conv.held_for = conv.held_since = None
            if inbound.option_ids == (TO_CASE + earlier,):
                return self._add_to(turn, earlier, held, since=since)
            turn.context = replace(turn.context, awaiting=None)
            self._dispatch(turn, Inbound.typed(held))
            return True
        typed = inbound.kind is InboundKind.TEXT and inbound.command is None
        if typed and self.understander.command(inbound.text) is None:
            if self._notice_risk(turn, self.understander.read(inbound.text)):
                # Safety first: the held message and this one go to that case now.
                conv.held = conv.held_for = conv.held_since = None
                return self._add_to(turn, earlier, f"{held}\n\n{inbound.text}", since=since)
            conv.held = f"{held}\n\n{inbound.text}"
            self._ask_which(turn)
            return True
        conv.held = conv.held_for = conv.held_since = None
        self._file_follow_up(turn, earlier, held, since)
        return False

    # A first message -------------------------------------------------------------------

    def _is_opening(self, reading: Understanding | None) -> bool:
        """More than a bare answer: a paragraph, or several facts at once."""
        if reading is None:
            return False
        return reading.words >= OPENING_WORDS or _subjects(self._facts(reading)) >= 2

    def _open(self, turn: Turn, inbound: Inbound, reading: Understanding | None) -> None:
        """Take in everything a first message says, show it back, ask only what is missing."""
        conv = turn.conversation
        welcome = conv.step is Step.START
        text = inbound.text if inbound.kind is InboundKind.TEXT else ""
        if reading is None or not text.strip() or self.understander.is_greeting(text):
            if welcome:
                turn.say(self.copy("welcome"))
                return self._advance(turn)
            return self._answer(turn, inbound, reading, False)
        taken = self._take_in(conv, reading, override=False)
        if reading.words >= OPENING_WORDS:
            self._keep_opening(conv, text)
        if not taken and reading.words < OPENING_WORDS:
            # Not an opening after all: a short first answer (or nothing we understood).
            if welcome:
                turn.say(self.copy("welcome"))
                return self._advance(turn)
            return self._answer(turn, inbound, reading, False)
        confirm = _subjects(taken) >= 2 or (taken and reading.words >= OPENING_WORDS)
        if welcome:
            turn.say(self.copy("welcome.short" if confirm else "welcome"))
        if reading.words >= OPENING_WORDS and len(text.strip()) > DESCRIPTION_LIMIT:
            turn.say(self.copy("reasks.opening_cut", limit=f"{DESCRIPTION_LIMIT:,}"))
        if confirm:
            conv.step = Step.CONFIRM
            return self._ask_current(turn)
        conv.step = Step.START
        self._advance(turn)

    def _keep_opening(self, conv: Conversation, text: str) -> None:
        """Their first message is the start of the description (the whole of it, if long)."""
        opening = text.strip()[:DESCRIPTION_LIMIT]
        conv.answers["opening"] = opening
        conv.answers["description_links"] = find_links(opening)
        if len(opening.split()) >= DESCRIBED_WORDS:
            self._understood(conv, Step.DESCRIPTION, opening)
            if conv.answers["description_links"]:
                self._understood(conv, Step.LINKS, [])

    def _facts(self, reading: Understanding) -> list[tuple[Step, object]]:
        """What a reading answers, as (step, answer) in route order."""
        facts: list[tuple[Step, object]] = []
        if reading.enquirer_type and reading.enquirer_type != "child":
            group = self.taxonomy.group_of(reading.enquirer_type)
            if group is not None:
                facts += [(Step.ROLE_GROUP, group.id), (Step.ROLE, reading.enquirer_type)]
        elif reading.enquirer_group and reading.enquirer_group != "young":
            facts.append((Step.ROLE_GROUP, reading.enquirer_group))
        if reading.own_images and _adult_writing(reading):
            facts.append((Step.PUBLIC_CONCERN, "my_images"))
        elif reading.enquirer_type == "parent" and reading.categories and not reading.own_images:
            # A parent telling us what is happening is worried about their child.
            facts.append((Step.PUBLIC_CONCERN, "child"))
        for step, value in (
            (Step.SETTING, reading.setting),
            (Step.REGION, reading.region),
            (Step.PLATFORM_TYPE, reading.platform_type),
            (Step.PLATFORM, reading.platform),
        ):
            if value is not None:
                facts.append((step, value))
        if reading.categories:
            facts.append((Step.CATEGORIES, list(reading.categories[:3])))
        if reading.already_reported is not None:
            facts.append((Step.ALREADY_REPORTED, "yes" if reading.already_reported else "no"))
        return facts

    def take_in(self, conversation: Conversation, reading: Understanding) -> list[Step]:
        """Record everything ``reading`` answers (an email is read whole, never asked about)."""
        return self._take_in(conversation, reading, override=False)

    def _take_in(
        self,
        conv: Conversation,
        reading: Understanding,
        *,
        override: bool,
        after: Step | None = None,
    ) -> list[Step]:
        """Record what a reading answers; ``after`` takes only later questions, unasked."""
        self._mention(conv, reading)
        taken: list[Step] = []
        for step, value in self._facts(reading):
            if after is not None and (
                ORDER.get(step, 0) <= ORDER.get(after, 0)
                or step is Step.CATEGORIES
                or step.value in conv.answers
            ):
                continue
            if step.value in conv.answers and not override:
                continue
            self._understood(conv, step, value)
            taken.append(step)
        return taken

    @staticmethod
    def _understood(conv: Conversation, step: Step, value: object) -> None:
        conv.answers[step.value] = value
        if step.value not in conv.understood:
            conv.understood.append(step.value)

    @staticmethod
    def _mention(conv: Conversation, reading: Understanding) -> None:
        """Categories the enquirer's words point to, latest first: the menu's order."""
        scores = reading.category_scores
        latest = sorted(scores, key=lambda c: -scores[c])
        earlier = [c for c in conv.answers.get("mentioned", []) if c not in latest]
        if latest:
            conv.answers["mentioned"] = [*latest, *earlier][:20]

    def _confirm(self, turn: Turn, inbound: Inbound, reading: Understanding | None) -> None:
        """The enquirer checks what was understood: carry on, change something, or correct."""
        conv = turn.conversation
        # "No, I'm the deputy head" is a correction before it is a "no".
        if reading is not None and self._take_in(conv, reading, override=True):
            return turn.replies.append(self._question_reply(turn, self.copy("confirm.updated")))
        result = interpret(Step.CONFIRM, inbound, conv, self.knowledge)
        choice = result.value if isinstance(result, Answer) else None
        if choice == "ok":
            conv.history.append(Step.CONFIRM.value)
            conv.step, conv.failures = Step.START, 0
            return self._advance(turn)
        if choice == "change":
            conv.step, conv.correcting = Step.EDIT, True
            return self._ask_current(turn)
        turn.say(self.copy("confirm.reask"))
        self._ask_current(turn)

    # Answers ---------------------------------------------------------------------------

    def _answer(
        self, turn: Turn, inbound: Inbound, reading: Understanding | None, raised: bool
    ) -> None:
        conv = turn.conversation
        step = conv.step
        result = interpret(step, inbound, conv, self.knowledge, reading)
        if isinstance(result, Reask):
            return self._reask(turn, inbound, result, raised)
        if isinstance(result, Stay):
            if result.notice:
                turn.replies.append(self._question_reply(turn, self.copy(result.notice)))
            else:
                self._ask_current(turn)
            return
        conv.failures = 0
        if step is Step.REVIEW:
            turn.choice = str(result.value)
            missing = casefile.missing(conv.answers, self.knowledge)
            if turn.choice == "submit" and missing is not None:
                # Never send a half-finished enquiry: ask what is missing first.
                conv.step, conv.editing, turn.choice = missing, True, None
                turn.say(self.copy("reasks.finish_first"))
                return self._ask_current(turn)
        else:
            conv.answers[step.value] = result.value
            if step is Step.DESCRIPTION:
                conv.answers["description_links"] = find_links(str(result.value))
            typed = inbound.kind is InboundKind.TEXT and number_of(inbound.text) is None
            if typed and reading is not None:
                self._note_extras(turn, reading, step)
        self._moved_on(conv, step)
        self._advance(turn, corrected=step)

    def _note_extras(self, turn: Turn, reading: Understanding, step: Step) -> None:
        """ "Secondary in Leeds" answers the region too: take it, and say so."""
        conv = turn.conversation
        extras = self._take_in(conv, reading, override=False, after=step)
        labels = [casefile.option_label(s, conv.answers, self.knowledge) for s in extras]
        if noted := [label for label in labels if label]:
            turn.say(self.copy("reasks.noted_too", items=", ".join(noted)))

    @staticmethod
    def _moved_on(conv: Conversation, step: Step) -> None:
        conv.selection.clear()
        conv.pending.clear()
        conv.expanded = False
        if not conv.history or conv.history[-1] != step.value:
            conv.history.append(step.value)

    def _reask(self, turn: Turn, inbound: Inbound, result: Reask, raised: bool) -> None:
        """Say kindly why that didn't answer; after a few tries, offer another way."""
        conv = turn.conversation
        generic = result.key in ("reasks.choose", "reasks.choose_multiple")
        if raised and generic:
            # The crisis lines were just shown: never "didn't catch that" after them.
            turn.say(self.copy("reasks.after_risk"))
            return self._ask_current(turn)
        if generic and self._first_words(conv, inbound):
            # The welcome invited their own words: a first message we could not match is
            # the start of their story, kept for the practitioner, never "didn't catch that".
            self._keep_opening(conv, inbound.text)
            turn.say(self.copy("reasks.story_noted"))
            return self._ask_current(turn)
        conv.failures += 1
        own = fallback(conv.step, self.knowledge, conv.answers) if generic else None
        if own is not None and conv.failures > STUCK and inbound.kind is InboundKind.TEXT:
            return self._own_words(turn, own, inbound.text)
        if own is not None and conv.failures == STUCK:
            turn.say(self.copy("reasks.stuck", contact=helpline_contact(turn)))
        else:
            turn.say(self.copy(result.key, **(result.values or {})))
        self._ask_current(turn)

    def _first_words(self, conv: Conversation, inbound: Inbound) -> bool:
        """A first message of a few words, at the first question, that is not a greeting."""
        return (
            conv.step is Step.ROLE_GROUP
            and not conv.history
            and "opening" not in conv.answers
            and inbound.kind is InboundKind.TEXT
            and number_of(inbound.text) is None
            and len(inbound.text.split()) >= STORY_WORDS
            and not self.understander.is_greeting(inbound.text)
        )

    def _own_words(self, turn: Turn, value: object, text: str) -> None:
        """Keep their words for the practitioner, with the nearest label, and move on."""
        conv = turn.conversation
        step = conv.step
        conv.answers[step.value] = value
        own = conv.answers.setdefault("own_words", {})
        own[step.value] = " ".join(text.split())[:OWN_WORDS_LIMIT]
        conv.failures = 0
        turn.say(self.copy("reasks.own_words_noted"))
        self._moved_on(conv, step)
        self._advance(turn)

    def _advance(self, turn: Turn, *, corrected: Step | None = None) -> None:
        """Move on until a question that needs asking (or an end) is reached.

        While correcting what a first message said, that is back at the confirmation,
        unless the change needs its follow-up (a role in a newly chosen group)."""
        conv = turn.conversation
        while step_on(turn) is not None:
            step = conv.step
            if step in FINAL_STEPS or step in (Step.REVIEW, Step.EDIT):
                break
            if step is Step.ROLE and self._auto_role(conv):
                continue
            skip = conv.editing or conv.correcting or step.value in conv.understood
            if skip and is_answered(step, self.knowledge, conv.answers):
                continue
            break
        follow_up = conv.step in FOLLOW_UPS.get(corrected, ())
        if conv.correcting and conv.step not in FINAL_STEPS and not follow_up:
            conv.step, conv.correcting = Step.CONFIRM, False
        if conv.step is Step.REVIEW:
            conv.editing = False
        if conv.step is Step.DESCRIPTION and not conv.pending and "opening" in conv.answers:
            # Their first message is where the description starts.
            conv.pending = [str(conv.answers["opening"])]
        if conv.step not in FINAL_STEPS:
            self._ask_current(turn)

    def _auto_role(self, conv: Conversation) -> bool:
        """A group with one role (Police, Parent…) answers the role question itself."""
        roles = offered(Step.ROLE, self.knowledge, conv.answers)
        if len(roles) == 1:
            conv.answers[Step.ROLE.value] = roles[0].option.id
            return True
        return False

    def describe(self, conversation: Conversation, inbound: Inbound) -> str:
        """How an inbound message reads in the transcript: choices by their labels."""
        if inbound.kind is InboundKind.TEXT:
            return inbound.text
        if inbound.kind is InboundKind.ATTACHMENT:
            return ""
        if inbound.kind is InboundKind.COMMAND:
            return f"/{inbound.command.value if inbound.command else ''}"
        step = conversation.step
        if inbound.question == WHICH_CASE:
            return f"[chose: {', '.join(inbound.option_ids)}]"
        if step is Step.EDIT:
            labels = {o.id: o.label for o in casefile.edit_options(conversation, self.knowledge)}
        elif step in QUESTIONS:
            items = menu(step, conversation, self.knowledge)
            labels = {o.option.id: o.option.label for o in items}
            labels |= {
                o.option.id: o.option.label
                for o in offered(step, self.knowledge, conversation.answers)
            }
        else:
            labels = {o.id: o.label for o in after_submit_options(self.copy)}
        names = [labels.get(i, "?") for i in inbound.option_ids]
        verb = "ticked" if inbound.kind is InboundKind.TOGGLE else "chose"
        return f"[{verb}: {', '.join(names) or self.copy('options.done')}]"

    # Commands --------------------------------------------------------------------------

    def _command(self, turn: Turn, command: Command) -> None:
        conv = turn.conversation
        if command is Command.HELP:
            if conv.step is Step.SIGNPOSTED and SIGNPOSTED_ROUTE in conv.answers:
                return self._signpost_again(turn)
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
            conv.editing = conv.correcting = False
            return enter_cancelled(turn)
        self._back(turn)

    def _back(self, turn: Turn) -> None:
        conv = turn.conversation
        if conv.correcting:
            conv.step, conv.correcting = Step.CONFIRM, False
            conv.pending.clear()
            return self._ask_current(turn)
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
        conv.failures = 0
        self._prefill(conv)
        self._ask_current(turn)

    def _back_to_review(self, turn: Turn) -> None:
        """Leave an edit for the review, unless the change left a question unanswered."""
        conv = turn.conversation
        missing = casefile.missing(conv.answers, self.knowledge)
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
        earlier = [*old.earlier, *([old.reference] if old.reference else [])]
        turn.conversation = Conversation(earlier=list(dict.fromkeys(earlier))[-EARLIER:])
        if old.step is Step.START and "risks" in old.answers:
            turn.conversation.answers["risks"] = old.answers["risks"]
            turn.conversation.answers["signposted_to"] = old.answers.get("signposted_to", [])
        if welcome:
            turn.say(self.copy("welcome"))
        self._advance(turn)

    def _after_end(self, turn: Turn, inbound: Inbound) -> None:
        conv = turn.conversation
        if inbound.kind is InboundKind.TEXT:
            # "2", or "Start a new enquiry" typed, picks the option shown under the
            # message (as a number does under any question); other words are a message.
            offered = self._after_end_options(conv)
            named = choices_for([(o.id, (o.label,)) for o in offered])
            if picked := match_exact(inbound.text, named):
                inbound = Inbound.chose(picked)
        if inbound.kind is InboundKind.CHOOSE and NEW_ENQUIRY in inbound.option_ids:
            return self._begin(turn, welcome=True)
        asks_copy = (inbound.kind is InboundKind.CHOOSE and SEND_COPY in inbound.option_ids) or (
            inbound.kind is InboundKind.TEXT
            and self.knowledge.understander.is_copy_request(inbound.text)
        )
        if asks_copy and conv.step is Step.SUBMITTED and conv.reference:
            return self._send_copy(turn, conv.reference)
        if conv.step is Step.SUBMITTED and conv.reference and inbound.kind is InboundKind.TEXT:
            self._file_follow_up(turn, conv.reference, inbound.text, said="outcome.followup_added")
            return
        key = {
            Step.CANCELLED: "outcome.after_cancel",
            Step.SUBMITTED: "outcome.after_submit",
        }.get(conv.step, "outcome.after_signpost")
        text = self.copy(key, reference=conv.reference or "")
        turn.replies.append(Reply(text, self._after_end_options(conv)))

    def _after_end_options(self, conv: Conversation) -> tuple[Option, ...]:
        """What the message after an enquiry ended offers."""
        if conv.step is Step.SUBMITTED:
            return after_submit_options(self.copy)
        return (Option(NEW_ENQUIRY, self.copy("options.new_enquiry")),)

    def _send_copy(self, turn: Turn, reference: str) -> None:
        """What they sent, as they reviewed it (the answers stay with the conversation until
        a new enquiry begins, or the chat is erased), and by email once, to the address
        they gave, when the helpline can send email."""
        conv, k = turn.conversation, self.knowledge
        turn.effects.append(CopyShown(reference))
        draft = casefile.draft_of(conv, turn.context, k)
        address = draft.contact_email
        intro = self.copy("data_protection.your_copy", reference=reference)
        if address:
            note = "data_protection.copy_no_email"
            if conv.answers.get(COPY_EMAILED):
                note = "data_protection.copy_emailed_before"
            elif turn.context.email_copies:
                conv.answers[COPY_EMAILED] = True
                note = "data_protection.copy_emailing"
                turn.effects.append(
                    casefile.copy_email(
                        k,
                        reference=reference,
                        to=address,
                        name=draft.contact_name,
                        intro=intro,
                        summary=casefile.summary(conv, k, whole=True),
                    )
                )
            intro += " " + self.copy(note, address=mask_email(address))
        summary = casefile.summary(conv, k)
        turn.replies.append(Reply(f"{intro}\n\n{summary}", after_submit_options(self.copy)))

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
            return self._ask_current(turn)
        conv.step = Step(picked)
        if not conv.correcting:
            conv.editing = True
        self._prefill(conv)
        self._ask_current(turn)

    def _edit_options(self, conv: Conversation) -> tuple[Option, ...]:
        options = casefile.edit_options(conv, self.knowledge)
        if conv.correcting:
            options = tuple(o for o in options if o.id in conv.understood)
        return options

    def _prefill(self, conv: Conversation) -> None:
        if conv.step is Step.CATEGORIES:
            conv.selection = list(conv.answers.get(Step.CATEGORIES, []))

    # Rendering -------------------------------------------------------------------------

    def _ask_current(self, turn: Turn) -> None:
        step = turn.conversation.step
        if step in QUESTIONS or step is Step.EDIT:
            turn.replies.append(self._question_reply(turn, None))
        elif step in FINAL_STEPS:
            self._after_end(turn, Inbound(InboundKind.COMMAND))

    def _question_reply(self, turn: Turn, override: str | None) -> Reply:
        conv = turn.conversation
        step = conv.step
        k = self.knowledge
        if step is Step.EDIT:
            key = "questions.correct" if conv.correcting else "questions.edit"
            return Reply(override or self.copy(key), self._edit_options(conv), question=step.value)
        question = QUESTIONS[step]
        options = tuple(o.option for o in menu(step, conv, k))
        if step is Step.CONFIRM:
            text = self._confirmation(turn, override or self.copy("confirm.intro"))
        else:
            text = override or self._question_text(turn)
        if question.kind is Kind.MULTI:
            return Reply(
                text,
                options,
                multiple=True,
                selected=frozenset(conv.selection),
                question=step.value,
                done_id="done",
            )
        return Reply(text, options, question=step.value)

    def _question_text(self, turn: Turn) -> str:
        conv, k, audience = turn.conversation, self.knowledge, turn.audience
        step = conv.step
        first = self._first_category(conv)
        if step is Step.SUBJECT:
            example = self._by_category("title_examples", first)
            return self.copy.worded("questions.subject", audience, example=example)
        if step is Step.DESCRIPTION:
            if conv.pending and conv.pending == [conv.answers.get("opening")]:
                text = self.copy("questions.description_kept")
            else:
                text = self._by_category("describe", first)
            if self._needs_image_warning(conv):
                text = self.copy("image_warning") + "\n\n" + text
            return text
        text = self.copy.worded(f"questions.{step.value}", audience)
        if step is Step.REVIEW:
            text += "\n\n" + casefile.summary(conv, k)
        return text

    def _confirmation(self, turn: Turn, intro: str) -> str:
        """What was taken from their words, between an introduction and "is that right?"."""
        summary = casefile.understood_summary(turn.conversation, self.knowledge)
        return "\n".join([intro, summary, self.copy("confirm.outro")])

    @staticmethod
    def _first_category(conv: Conversation) -> str | None:
        chosen = conv.answers.get(Step.CATEGORIES)
        return str(chosen[0]) if isinstance(chosen, list) and chosen else None

    def _by_category(self, table: str, category: str | None) -> str:
        """Wording that fits the concern (``[table] <category>``), or the table's default."""
        key = f"{table}.{category}"
        return self.copy(key if category and key in self.copy.entries else f"{table}.default")

    def _needs_image_warning(self, conv: Conversation) -> bool:
        categories = self.taxonomy["category"]
        chosen = conv.answers.get(Step.CATEGORIES)
        terms = [categories.get(str(c)) for c in chosen] if isinstance(chosen, list) else []
        return any(term is not None and "image_warning" in term.flags for term in terms)
