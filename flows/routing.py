"""The route through the conversation, as a table, and the one function that reads it.

:data:`ROUTE` is the whole conversation, read top to bottom: each :class:`Edge` goes
from a step to the next when its condition holds (the first that holds wins), and may
name a callback to run on the way (signposting). :func:`successor` is the only reader of
the table: the transitions machine (``flows/machine.py``) fires the edge it picks, and
:func:`walk` follows it to find the questions an enquirer's answers lead through and the
first one still unanswered (the review, the draft and "finish this first" use that).
Conditions read only the answers and the data, so the route is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flows.conversation import FINAL_STEPS, Step
from flows.knowledge import Knowledge
from flows.questions import is_answered
from flows.remit import Route

Answers = Mapping[str, Any]
Condition = Callable[[Answers, Knowledge, str | None], bool]

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
"""The answers the review can change: (copy key under [fields], the step that asks it)."""


def concern_route(answers: Answers) -> Route | None:
    """The route a member of the public's concern takes, if they gave one."""
    concern = str(answers.get(Step.PUBLIC_CONCERN))
    return ENDING_CONCERNS.get(concern) or CONTINUING_CONCERNS.get(concern)


def _ends(answers: Answers, k: Knowledge, choice: str | None) -> bool:
    route = concern_route(answers)
    return route is not None and k.directory.ends(route)


def _asks_platform(answers: Answers, k: Knowledge, choice: str | None) -> bool:
    kind = k.taxonomy["platform_type"].get(str(answers.get(Step.PLATFORM_TYPE)))
    return kind is not None and "asks_platform" in kind.flags


def _reportable(answers: Answers, k: Knowledge, choice: str | None) -> bool:
    """Some content to report: not when every category is a question (advice, policy…)."""
    chosen = answers.get(Step.CATEGORIES)
    table = k.taxonomy["category"]
    terms = [table.get(str(c)) for c in chosen] if isinstance(chosen, list) else []
    return not terms or any(t is None or "no_report" not in t.flags for t in terms)


def _answer_is(step: Step, *values: str) -> Condition:
    return lambda answers, k, choice: answers.get(step.value) in values


def _chose(value: str) -> Condition:
    return lambda answers, k, choice: choice == value


CONDITIONS: Mapping[str, Condition] = {
    "is_child": _answer_is(Step.ROLE, "child"),
    # By equality, not hashing: a damaged saved answer (a list, say) is just not a match.
    "is_public": _answer_is(Step.ROLE, *sorted(PUBLIC_ROLES)),
    "is_parent": _answer_is(Step.ROLE, "parent"),
    "concern_ends": _ends,
    "asks_platform": _asks_platform,
    "reportable": _reportable,
    "wants_email": _answer_is(Step.REPLY_VIA, "email"),
    "wants_phone": _answer_is(Step.REPLY_VIA, "phone"),
    "chose_submit": _chose("submit"),
    "chose_edit": _chose("edit"),
    "chose_cancel": _chose("cancel"),
    **{f"edit_{name}": _chose(step.value) for name, step in EDITABLE},
}


@dataclass(frozen=True, slots=True)
class Edge:
    """One way from a step to the next: taken when ``condition`` holds (or always)."""

    source: Step
    dest: Step
    condition: str | None = None
    after: str | None = None
    """A callback (``flows/machine.py``) run when the edge is taken."""

    @property
    def name(self) -> str:
        """The edge's trigger name in the state machine, also used in errors about it."""
        return f"{self.source.value}->{self.dest.value}"


S = Step
ROUTE: tuple[Edge, ...] = (
    Edge(S.START, S.ROLE_GROUP),
    Edge(S.ROLE_GROUP, S.ROLE),
    Edge(S.ROLE, S.SIGNPOSTED, "is_child"),
    Edge(S.ROLE, S.PUBLIC_CONCERN, "is_public"),
    Edge(S.ROLE, S.SETTING),
    Edge(S.PUBLIC_CONCERN, S.SIGNPOSTED, "concern_ends"),
    # A parent is asked about their child's school; nobody else outside a profession is.
    Edge(S.PUBLIC_CONCERN, S.SETTING, "is_parent", "show_concern_services"),
    Edge(S.PUBLIC_CONCERN, S.REGION, None, "show_concern_services"),
    Edge(S.SETTING, S.REGION),
    Edge(S.REGION, S.PLATFORM_TYPE),
    Edge(S.PLATFORM_TYPE, S.PLATFORM, "asks_platform"),
    Edge(S.PLATFORM_TYPE, S.CATEGORIES),
    Edge(S.PLATFORM, S.CATEGORIES),
    Edge(S.CATEGORIES, S.SUBJECT, None, "show_category_services"),
    Edge(S.SUBJECT, S.DESCRIPTION),
    # A question about advice or policy has nothing to link to or to have reported.
    Edge(S.DESCRIPTION, S.LINKS, "reportable"),
    Edge(S.DESCRIPTION, S.DANGER),
    Edge(S.LINKS, S.ALREADY_REPORTED),
    Edge(S.ALREADY_REPORTED, S.DANGER),
    Edge(S.DANGER, S.REPLY_VIA, None, "show_danger"),
    Edge(S.REPLY_VIA, S.EMAIL, "wants_email"),
    Edge(S.REPLY_VIA, S.PHONE, "wants_phone"),
    Edge(S.REPLY_VIA, S.NAME),
    Edge(S.EMAIL, S.NAME),
    Edge(S.PHONE, S.NAME),
    Edge(S.NAME, S.REVIEW),
    Edge(S.REVIEW, S.SUBMITTED, "chose_submit"),
    Edge(S.REVIEW, S.EDIT, "chose_edit"),
    Edge(S.REVIEW, S.CANCELLED, "chose_cancel"),
    *(Edge(S.EDIT, step, f"edit_{name}") for name, step in EDITABLE),
)

ORDER: Mapping[Step, int] = {
    step: index for index, step in enumerate(dict.fromkeys(e.dest for e in ROUTE))
}
"""Each step's place along the route (for "does this come before that")."""


def _check() -> None:
    for edge in ROUTE:
        if edge.condition is not None and edge.condition not in CONDITIONS:
            raise ValueError(f"edge {edge.name}: unknown condition {edge.condition!r}")


_check()


def successor(step: Step, answers: Answers, k: Knowledge, choice: str | None = None) -> Edge | None:
    """The edge the conversation takes from ``step``: the first whose condition holds."""
    for edge in ROUTE:
        if edge.source is step and (
            edge.condition is None or CONDITIONS[edge.condition](answers, k, choice)
        ):
            return edge
    return None


@dataclass(frozen=True, slots=True)
class Walk:
    """Where an enquirer's answers lead from the start."""

    path: tuple[Step, ...]
    """The answered questions on the way, in order (up to the review)."""
    missing: Step | None
    """The first question on the way still unanswered; None when all are."""
    end: Step | None = None
    """A final step the answers lead to instead of the review (signposted)."""


def ahead(answers: Answers, k: Knowledge) -> tuple[Step, ...]:
    """Every question the answers so far lead to, answered or not, up to the review."""
    steps: list[Step] = []
    step = Step.START
    while (edge := successor(step, answers, k)) is not None:
        step = edge.dest
        if step in FINAL_STEPS or step is Step.REVIEW or step in steps:
            break
        steps.append(step)
    return tuple(steps)


def walk(answers: Answers, k: Knowledge) -> Walk:
    """Follow the route from the start through every answered question."""
    steps: list[Step] = []
    step = Step.START
    while True:
        edge = successor(step, answers, k)
        nxt = edge.dest if edge else None
        if nxt is None or nxt is Step.REVIEW or nxt in steps:
            return Walk(tuple(steps), None)
        if nxt in FINAL_STEPS:
            return Walk(tuple(steps), None, nxt)
        if not is_answered(nxt, k, answers):
            return Walk(tuple(steps), nxt)
        steps.append(nxt)
        step = nxt
