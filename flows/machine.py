"""The transitions machine that moves a conversation along the route, with its callbacks.

One module-level ``transitions.Machine`` serves every conversation (the model, a
:class:`~flows.turn.Turn`, is restored from storage on each message). It has one trigger
per edge of :data:`flows.routing.ROUTE`; which edge to take is decided by the route's
own :func:`~flows.routing.successor`, and the machine runs what happens on the way:
signposting after an edge, and building the case when a final step is entered.
Callbacks take the turn and read the helpline's data from ``turn.knowledge``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from transitions import Machine

from flows import casefile
from flows.conversation import CaseDraft, CaseStatus, Step
from flows.copy import Copy
from flows.messages import Option, Reply
from flows.questions import QUESTIONS
from flows.remit import Route
from flows.routing import CONTINUING_CONCERNS, ENDING_CONCERNS, ROUTE, Edge, successor
from flows.signposting import show_route, show_services
from flows.turn import CaseSubmitted, Forget, Signposted, Turn

NEW_ENQUIRY = "new"
SEND_COPY = "copy"
"""After submitting: "Send me a copy" shows what was sent (a summary, in the chat), and
emails it once to the address they gave, when they gave one and the helpline sends email."""


def _show_concern_services(turn: Turn) -> None:
    route = CONTINUING_CONCERNS.get(str(turn.answers.get(Step.PUBLIC_CONCERN)))
    if route is not None:
        show_route(turn, route)


def _category_signposts(turn: Turn) -> list[str]:
    """The services of the categories chosen (or read) so far: CEOP for grooming…"""
    categories = turn.knowledge.taxonomy["category"]
    chosen = turn.answers.get(Step.CATEGORIES, [])
    return [s for c in chosen if (term := categories.get(c)) for s in term.signposts]


def _show_category_services(turn: Turn) -> None:
    if ids := _category_signposts(turn):
        show_services(turn, "signpost.intro_categories", ids)


DANGER_INTROS: Mapping[str, str] = {
    "yes": "signpost.intro_danger_said",
    "not_sure": "signpost.intro_danger_unsure",
}


def _show_danger(turn: Turn) -> None:
    intro = DANGER_INTROS.get(str(turn.answers.get(Step.DANGER)))
    if intro is not None:
        show_route(turn, Route.DANGER, intro=intro)


SIGNPOSTED_ROUTE = "signposted_route"
"""The one answer a signposted conversation keeps: the route it was given."""


def enter_signposted(turn: Turn) -> None:
    """A route that ends here: its services, and a record with nothing personal in it."""
    k, answers = turn.knowledge, turn.answers
    child = answers.get(Step.ROLE) == "child"
    route = Route.CHILD if child else ENDING_CONCERNS.get(str(answers.get(Step.PUBLIC_CONCERN)))
    route = route or Route.CHILD
    services = k.directory.routes[route].services
    # A child is also pointed to what fits what they told us (CEOP for grooming).
    extra = _category_signposts(turn) if route is Route.CHILD else []
    show_services(turn, f"signpost.intro_{route.value}", [*services, *extra])
    turn.say(k.copy.worded("signpost.closing_ends", turn.audience))
    draft = CaseDraft(
        reference=turn.context.reference,
        status=CaseStatus.SIGNPOSTED,
        received_at=turn.context.now,
        enquirer_type=casefile.label(k, "enquirer_type", answers.get(Step.ROLE)),
        signposted_to=tuple(answers.get("signposted_to", ())),
    )
    turn.effects.append(Signposted(draft))
    # Nothing they told us is kept; only where they were sent, to send them there again.
    turn.conversation.answers = {SIGNPOSTED_ROUTE: route.value}
    turn.conversation.history.clear()
    turn.conversation.understood.clear()


def _urgent_note(turn: Turn) -> str | None:
    danger = turn.answers.get(Step.DANGER)
    if danger in ("yes", "not_sure"):
        return turn.knowledge.copy(f"outcome.urgent_{danger}")
    if turn.answers.get("risks"):
        return turn.knowledge.copy.worded("outcome.urgent_risk", turn.audience)
    return None


def after_submit_options(copy: Copy) -> tuple[Option, ...]:
    """What a submitted enquiry's replies offer: a copy of what was sent, or a new one."""
    return (
        Option(SEND_COPY, copy("data_protection.send_copy")),
        Option(NEW_ENQUIRY, copy("options.new_enquiry")),
    )


def enter_submitted(turn: Turn) -> None:
    """The case is sent: its reference, when they will hear back, and what to do now."""
    k = turn.knowledge
    draft = casefile.draft_of(turn.conversation, turn.context, k)
    turn.effects.append(CaseSubmitted(draft))
    copy = k.copy
    via = copy(f"outcome.submitted_reply_{draft.reply_via or 'chat'}")
    text = copy("outcome.submitted", reference=draft.reference, reply_via=via)
    if turn.context.reply_note:
        text += "\n\n" + turn.context.reply_note
    if turn.context.out_of_hours:
        given = set(draft.signposted_to)
        always = [s for s in k.directory.services.values() if s.always_open and s.name in given]
        lines = [
            copy("signpost.service_line", name=s.name, contact=contact)
            for s in always
            if (contact := s.contact_for(turn.audience)) is not None
        ]
        if lines:
            text += "\n" + "\n".join([copy("hours.open_now_services"), *lines])
    if note := _urgent_note(turn):
        text += "\n" + note
    turn.replies.append(Reply(text, after_submit_options(copy)))
    turn.say(casefile.while_you_wait(turn.conversation, k, turn.audience))
    turn.conversation.reference = draft.reference
    turn.conversation.history.clear()


def enter_cancelled(turn: Turn) -> None:
    """On cancel: forget everything the conversation collected and tell the enquirer."""
    turn.conversation.answers = {}
    turn.conversation.history.clear()
    turn.conversation.understood.clear()
    turn.effects.append(Forget())
    turn.say(turn.knowledge.copy("outcome.cancelled"))


CALLBACKS: Mapping[str, Callable[[Turn], None]] = {
    "show_concern_services": _show_concern_services,
    "show_category_services": _show_category_services,
    "show_danger": _show_danger,
}
ON_ENTER: Mapping[Step, Callable[[Turn], None]] = {
    Step.SIGNPOSTED: enter_signposted,
    Step.SUBMITTED: enter_submitted,
    Step.CANCELLED: enter_cancelled,
}


def build_machine() -> Machine:
    """The one machine for all conversations; unknown names in the route fail here."""
    rows: list[dict[str, Any]] = []
    for edge in ROUTE:
        if edge.after is not None and edge.after not in CALLBACKS:
            raise ValueError(f"edge {edge.name}: unknown callback {edge.after!r}")
        row: dict[str, Any] = {
            "trigger": edge.name,
            "source": edge.source.value,
            "dest": edge.dest.value,
        }
        if edge.after:
            row["after"] = [CALLBACKS[edge.after]]
        rows.append(row)
    states = [{"name": s.value, "on_enter": [ON_ENTER[s]] if s in ON_ENTER else []} for s in Step]
    asked = {edge.source for edge in ROUTE} - {Step.START, Step.EDIT}
    if missing := asked - set(QUESTIONS):
        raise ValueError(f"steps with edges but no question: {sorted(missing)}")
    return Machine(
        model=None, states=states, transitions=rows, initial=None, auto_transitions=False
    )


MACHINE = build_machine()


def step_on(turn: Turn) -> Edge | None:
    """Take the edge the route picks from the current step (running its callbacks)."""
    edge = successor(turn.conversation.step, turn.answers, turn.knowledge, turn.choice)
    turn.choice = None
    if edge is not None:
        MACHINE.events[edge.name].trigger(turn, turn)
    return edge
