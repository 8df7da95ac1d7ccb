"""The conversation as a table: states, transitions, their conditions and callbacks.

:data:`TRANSITIONS` is the whole route through the conversation, read top to bottom:
each row is ``(source, dest, condition, after)``; the first row whose condition holds
wins. One module-level ``transitions.Machine`` runs it for every conversation (the model
is restored from storage on each message); unknown names fail when the module loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from transitions import Machine

from flows.conversation import CaseDraft, CaseStatus, Step
from flows.messages import Option, Reply
from flows.questions import QUESTIONS
from flows.remit import Route
from flows.turn import CaseSubmitted, Forget, Signposted, Turn

NEW_ENQUIRY = "new"

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
        enquirer_type=flow.casefile.label("enquirer_type", answers.get(Step.ROLE)),
        signposted_to=tuple(answers.get("signposted_to", ())),
    )
    turn.effects.append(Signposted(draft))
    turn.conversation.answers = {}
    turn.conversation.history.clear()


def _enter_submitted(turn: Turn) -> None:
    draft = turn.flow.casefile.draft(turn.conversation, turn.context)
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
    turn.say(turn.flow.casefile.while_you_wait(turn.conversation))
    turn.conversation.reference = draft.reference
    turn.conversation.history.clear()


def enter_cancelled(turn: Turn) -> None:
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
    S.CANCELLED: enter_cancelled,
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
