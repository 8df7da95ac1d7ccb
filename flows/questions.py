"""What each step asks, which answers it accepts, and how an inbound message answers it.

One table (:data:`QUESTIONS`) says, per step, the kind of question and where its options
come from. :func:`interpret` turns an inbound message into an answer, a change of
pending state (a tick, another piece of description) or a kind re-ask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flows.conversation import Conversation, Step
from flows.copy import Copy
from flows.matching import Choice, choices_for, match_many, match_one, normalise
from flows.messages import Inbound, InboundKind, Option
from flows.taxonomy import Taxonomy
from flows.validate import clean_email, clean_phone, find_links

SUBJECT_LIMIT = 150
DESCRIPTION_LIMIT = 10_000
NAME_LIMIT = 200
LINKS_LIMIT = 20

DONE = "done"
SKIP = "skip"
NO_LINKS = "no_links"


class Kind(StrEnum):
    SINGLE = "single"
    MULTI = "multi"
    TEXT = "text"
    DESCRIPTION = "description"
    LINKS = "links"
    EMAIL = "email"
    PHONE = "phone"
    OPTIONAL_TEXT = "optional_text"


@dataclass(frozen=True, slots=True)
class Offered:
    """An option offered at a step, with every name free text may use for it."""

    option: Option
    names: tuple[str, ...]


OptionSource = Callable[[Taxonomy, Copy, Mapping[str, Any]], tuple[Offered, ...]]


def _table(name: str, *, with_help: bool = False) -> OptionSource:
    def offered(tax: Taxonomy, copy: Copy, answers: Mapping[str, Any]) -> tuple[Offered, ...]:
        return tuple(
            Offered(t.option(with_help=with_help), (t.id, t.label, t.text, *t.aliases))
            for t in tax[name].offered
        )

    return offered


def _roles(tax: Taxonomy, copy: Copy, answers: Mapping[str, Any]) -> tuple[Offered, ...]:
    group = tax["enquirer_group"].get(str(answers.get(Step.ROLE_GROUP, "")))
    if group is None:
        return ()
    types = tax["enquirer_type"]
    return tuple(
        Offered(types[m].option(), (m, types[m].label, types[m].text, *types[m].aliases))
        for m in group.members
    )


def _fixed(*specs: tuple[str, str, tuple[str, ...]]) -> OptionSource:
    """Options the flow itself offers: (id, copy key under [options], extra names)."""

    def offered(tax: Taxonomy, copy: Copy, answers: Mapping[str, Any]) -> tuple[Offered, ...]:
        return tuple(
            Offered(Option(oid, copy(f"options.{key}")), (oid, copy(f"options.{key}"), *names))
            for oid, key, names in specs
        )

    return offered


def _none(tax: Taxonomy, copy: Copy, answers: Mapping[str, Any]) -> tuple[Offered, ...]:
    return ()


_YES = ("y", "yes", "yeah", "yep", "yup", "i have", "we have", "already")
_NO = ("n", "no", "nope", "not yet", "none", "no one", "nobody", "not really", "haven't")
_UNSURE = ("not sure", "unsure", "don't know", "dont know", "maybe", "idk", "no idea")
_DONE = ("done", "finished", "that's all", "thats all", "that's it", "end", "complete", "ok")


@dataclass(frozen=True, slots=True)
class Question:
    kind: Kind
    options: OptionSource = _none
    skippable: bool = False


QUESTIONS: Mapping[Step, Question] = {
    Step.ROLE_GROUP: Question(Kind.SINGLE, _table("enquirer_group")),
    Step.ROLE: Question(Kind.SINGLE, _roles),
    Step.PUBLIC_CONCERN: Question(
        Kind.SINGLE,
        _fixed(
            ("my_images", "concern_my_images", ("my images", "intimate images", "revenge porn")),
            ("child", "concern_child", ("a child", "worried about a child", "my child")),
            ("own_thoughts", "concern_own_thoughts", ("my thoughts", "my own thoughts")),
            ("other", "concern_other", ("other", "something else")),
        ),
    ),
    Step.SETTING: Question(Kind.SINGLE, _table("setting")),
    Step.REGION: Question(Kind.SINGLE, _table("region")),
    Step.PLATFORM_TYPE: Question(Kind.SINGLE, _table("platform_type")),
    Step.PLATFORM: Question(Kind.SINGLE, _table("platform")),
    Step.CATEGORIES: Question(Kind.MULTI, _table("category", with_help=True)),
    Step.SUBJECT: Question(Kind.TEXT),
    Step.DESCRIPTION: Question(Kind.DESCRIPTION, _fixed((DONE, "done", _DONE))),
    Step.LINKS: Question(Kind.LINKS, _fixed((NO_LINKS, "no_links", (*_NO, "no links")))),
    Step.ALREADY_REPORTED: Question(
        Kind.SINGLE,
        _fixed(
            ("yes", "reported_yes", _YES),
            ("no", "reported_no", _NO),
            ("not_sure", "not_sure", _UNSURE),
        ),
    ),
    Step.DANGER: Question(
        Kind.SINGLE, _fixed(("yes", "danger_yes", _YES), ("no", "danger_no", _NO))
    ),
    Step.REPLY_VIA: Question(
        Kind.SINGLE,
        _fixed(
            ("chat", "reply_chat", ("here", "chat", "this chat", "telegram", "message")),
            ("email", "reply_email", ("email", "e-mail", "mail")),
            ("phone", "reply_phone", ("phone", "call", "telephone", "ring", "call me")),
        ),
    ),
    Step.EMAIL: Question(Kind.EMAIL),
    Step.PHONE: Question(Kind.PHONE),
    Step.NAME: Question(
        Kind.OPTIONAL_TEXT,
        _fixed((SKIP, "skip", ("no", "none", "skip it", "rather not"))),
        skippable=True,
    ),
    Step.REVIEW: Question(
        Kind.SINGLE,
        _fixed(
            ("submit", "submit", ("send", "send it", "submit", "yes", "confirm", "looks good")),
            ("edit", "edit", ("change", "edit", "change something", "amend")),
            ("cancel", "cancel", ("cancel", "delete", "discard")),
        ),
    ),
}


# Interpreting an inbound message --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """The question is answered with ``value``."""

    value: Any


@dataclass(frozen=True, slots=True)
class Stay:
    """Still on the same question; ``notice`` (a copy key) acknowledges what changed."""

    notice: str | None = None


@dataclass(frozen=True, slots=True)
class Reask:
    """The message did not answer the question; say why (copy key and values)."""

    key: str
    values: Mapping[str, object] | None = None


Interpretation = Answer | Stay | Reask


def offered(
    step: Step, tax: Taxonomy, copy: Copy, answers: Mapping[str, Any]
) -> tuple[Offered, ...]:
    return QUESTIONS[step].options(tax, copy, answers)


def _choices(items: tuple[Offered, ...]) -> tuple[Choice, ...]:
    return choices_for([(o.option.id, o.names) for o in items])


def interpret(
    step: Step, inbound: Inbound, conv: Conversation, tax: Taxonomy, copy: Copy
) -> Interpretation:
    """What ``inbound`` means at ``step``. Never raises on any input."""
    question = QUESTIONS[step]
    items = offered(step, tax, copy, conv.answers)
    ids = {o.option.id for o in items}
    if inbound.kind is InboundKind.TEXT and not inbound.text.strip():
        return Reask("reasks.text_empty")
    if question.kind is Kind.MULTI:
        return _multi(inbound, conv, items, ids)
    if inbound.kind in (InboundKind.CHOOSE, InboundKind.TOGGLE):
        picked = inbound.option_ids
        if len(picked) == 1 and picked[0] in ids:
            return _picked(question.kind, picked[0], conv)
        return Reask("reasks.choose")
    text = inbound.text
    if question.kind is Kind.SINGLE:
        found = match_one(text, _choices(items))
        return Answer(found) if found else Reask("reasks.choose")
    # Typed answers: an offered option (Done, Skip, No links) typed exactly still counts.
    if items and normalise(text) in {n for c in _choices(items) for n in c.names}:
        return _picked(question.kind, items[0].option.id, conv)
    return _typed(question.kind, text, conv)


def _picked(kind: Kind, option_id: str, conv: Conversation) -> Interpretation:
    if kind is Kind.DESCRIPTION:
        pieces = conv.pending or (
            [conv.answers["description"]] if conv.answers.get("description") else []
        )
        if not pieces:
            return Reask("reasks.description_empty")
        return Answer("\n\n".join(pieces))
    if kind is Kind.LINKS:
        return Answer([])
    if kind is Kind.OPTIONAL_TEXT:
        return Answer(None)
    return Answer(option_id)


def _multi(
    inbound: Inbound, conv: Conversation, items: tuple[Offered, ...], ids: set[str]
) -> Interpretation:
    if inbound.kind is InboundKind.TOGGLE:
        (option_id,) = inbound.option_ids or ("",)
        if option_id not in ids:
            return Reask("reasks.choose_multiple")
        if option_id in conv.selection:
            conv.selection.remove(option_id)
        else:
            conv.selection.append(option_id)
        return Stay()
    if inbound.kind is InboundKind.CHOOSE:
        picked = [i for i in inbound.option_ids if i != DONE]
        if any(i not in ids for i in picked):
            return Reask("reasks.choose_multiple")
        chosen = picked or list(conv.selection)
    else:
        if normalise(inbound.text) in _DONE:
            chosen = list(conv.selection)
        else:
            found = match_many(inbound.text, _choices(items))
            if found is None:
                return Reask("reasks.choose_multiple")
            chosen = list(found)
    if not chosen:
        return Reask("reasks.choose_at_least_one")
    return Answer(list(dict.fromkeys(chosen)))


def _typed(kind: Kind, text: str, conv: Conversation) -> Interpretation:
    value = " ".join(text.split())
    if kind is Kind.TEXT:
        if len(value) > SUBJECT_LIMIT:
            return Reask("reasks.subject_too_long", {"length": len(value), "limit": SUBJECT_LIMIT})
        return Answer(value)
    if kind is Kind.OPTIONAL_TEXT:
        if len(value) > NAME_LIMIT:
            return Reask("reasks.name_too_long", {"limit": NAME_LIMIT})
        return Answer(value)
    if kind is Kind.DESCRIPTION:
        piece = text.strip()
        if sum(len(p) + 2 for p in conv.pending) + len(piece) > DESCRIPTION_LIMIT:
            return Reask("reasks.description_too_long", {"limit": DESCRIPTION_LIMIT})
        conv.pending.append(piece)
        return Stay("reasks.description_added")
    if kind is Kind.LINKS:
        links = find_links(text)
        if not links:
            return Reask("reasks.links_none_found")
        if len(links) > LINKS_LIMIT:
            return Reask("reasks.links_too_many", {"limit": LINKS_LIMIT})
        return Answer(links)
    if kind is Kind.EMAIL:
        email = clean_email(text)
        return Answer(email) if email else Reask("reasks.email_invalid")
    phone = clean_phone(text)
    return Answer(phone) if phone else Reask("reasks.phone_invalid")


def is_answered(step: Step, tax: Taxonomy, copy: Copy, answers: Mapping[str, Any]) -> bool:
    """Whether ``answers`` hold a still-valid answer for ``step``.

    A choice made under an earlier answer (a role from another group, a platform after
    the content moved to a website) no longer counts.
    """
    if step not in answers:
        return False
    value = answers[step]
    kind = QUESTIONS[step].kind
    if kind in (Kind.SINGLE, Kind.MULTI):
        ids = {o.option.id for o in offered(step, tax, copy, answers)}
        if kind is Kind.SINGLE:
            return isinstance(value, str) and value in ids
        return isinstance(value, list) and bool(value) and all(v in ids for v in value)
    if kind is Kind.LINKS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is Kind.OPTIONAL_TEXT:
        return value is None or isinstance(value, str)
    return isinstance(value, str) and bool(value)
