"""What each step asks, which answers it accepts, and how an inbound message answers it.

One table (:data:`QUESTIONS`) says, per step, the kind of question, where its options
come from, which part of the understanding a typed answer is read for, and which option
means "not sure". :func:`interpret` turns an inbound message into an answer, a change of
pending state (a tick, another piece of description) or a kind re-ask.

A number picks a numbered option of the question on screen and nothing else; words are
matched against every name of every option (``flows/matching.py``), then read for the
question's field by the understanding layer (which knows role words, towns and typos).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from flows.conversation import Conversation, Step
from flows.links import account_names
from flows.matching import Choice, choices_for, match_one, normalise, split_parts
from flows.messages import Inbound, InboundKind, Option
from flows.understanding import Field, Understanding
from flows.validate import clean_email, clean_phone, find_links

if TYPE_CHECKING:
    from flows.knowledge import Knowledge

SUBJECT_LIMIT = 150
DESCRIPTION_LIMIT = 10_000
NAME_LIMIT = 200
LINKS_LIMIT = 20
MENU_SIZE = 8
"""A long menu (categories) shows this many options, most likely first, then "More"."""

DONE = "done"
SKIP = "skip"
NO_LINKS = "no_links"
MORE = "more"


class Kind(StrEnum):
    """What kind of answer a question takes, which decides how it is asked and checked."""

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


Answers = Mapping[str, Any]
OptionSource = Callable[["Knowledge", Answers], tuple[Offered, ...]]


def _once_per_knowledge(
    make: Callable[[Knowledge, str], tuple[Offered, ...]], key: Callable[[Answers], str]
) -> OptionSource:
    """``make(k, key(answers))``, made once per knowledge and key: the data does not change
    while it is in use, and every message asks for the options of several steps."""
    made: dict[tuple[int, str], tuple[Knowledge, tuple[Offered, ...]]] = {}

    def offered(k: Knowledge, answers: Answers) -> tuple[Offered, ...]:
        at = (id(k), key(answers))
        found = made.get(at)
        if found is None or found[0] is not k:
            found = made[at] = (k, make(k, at[1]))
        return found[1]

    return offered


def _always(answers: Answers) -> str:
    return ""


def _table(name: str, *, with_help: bool = False) -> OptionSource:
    def make(k: Knowledge, _: str) -> tuple[Offered, ...]:
        return tuple(
            Offered(t.option(with_help=with_help), (t.id, t.label, t.text, *t.aliases))
            for t in k.taxonomy[name].offered
        )

    return _once_per_knowledge(make, _always)


def _make_roles(k: Knowledge, group_id: str) -> tuple[Offered, ...]:
    group = k.taxonomy["enquirer_group"].get(group_id)
    if group is None:
        return ()
    types = k.taxonomy["enquirer_type"]
    return tuple(
        Offered(types[m].option(), (m, types[m].label, types[m].text, *types[m].aliases))
        for m in group.members
    )


_roles = _once_per_knowledge(_make_roles, lambda answers: str(answers.get(Step.ROLE_GROUP, "")))
"""The roles of the group chosen first."""


def _fixed(*specs: tuple[str, str]) -> OptionSource:
    """Options the flow itself offers: (id, key). The label is ``[options] key`` in
    copy.toml; other names for it are ``[answers] key`` in lexicon.toml."""

    def make(k: Knowledge, _: str) -> tuple[Offered, ...]:
        return tuple(
            Offered(
                Option(oid, k.copy(f"options.{key}")),
                (oid, k.copy(f"options.{key}"), *k.understander.answers.get(key, ())),
            )
            for oid, key in specs
        )

    return _once_per_knowledge(make, _always)


def _none(k: Knowledge, answers: Answers) -> tuple[Offered, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class Question:
    """One step's question: its kind, options, and how typed words are read for it."""

    kind: Kind
    options: OptionSource = _none
    field: Field | None = None
    """The understanding field a short typed answer is read for."""
    understood: Callable[[Understanding], str | None] | None = None
    """The option the understanding of a typed answer picks, if the names did not."""
    unsure: str | None = None
    """The option "not sure", "don't know" and the like pick."""


def _read(field: Field) -> Callable[[Understanding], str | None]:
    return lambda u: u.value(field)


QUESTIONS: Mapping[Step, Question] = {
    Step.CONFIRM: Question(Kind.SINGLE, _fixed(("ok", "confirm_ok"), ("change", "confirm_change"))),
    Step.ROLE_GROUP: Question(
        Kind.SINGLE, _table("enquirer_group"), Field.ROLE, lambda u: u.enquirer_group
    ),
    Step.ROLE: Question(Kind.SINGLE, _roles, Field.ROLE, _read(Field.ROLE)),
    Step.PUBLIC_CONCERN: Question(
        Kind.SINGLE,
        _fixed(
            ("my_images", "concern_my_images"),
            ("child", "concern_child"),
            ("own_thoughts", "concern_own_thoughts"),
            ("other", "concern_other"),
        ),
        understood=lambda u: "my_images" if u.own_images else None,
    ),
    Step.SETTING: Question(
        Kind.SINGLE, _table("setting"), Field.SETTING, _read(Field.SETTING), unsure="none"
    ),
    Step.REGION: Question(
        Kind.SINGLE, _table("region"), Field.REGION, _read(Field.REGION), unsure="unknown"
    ),
    Step.PLATFORM_TYPE: Question(
        Kind.SINGLE,
        _table("platform_type"),
        Field.PLATFORM_TYPE,
        _read(Field.PLATFORM_TYPE),
        unsure="unknown",
    ),
    Step.PLATFORM: Question(
        Kind.SINGLE, _table("platform"), Field.PLATFORM, _read(Field.PLATFORM), unsure="other"
    ),
    Step.CATEGORIES: Question(
        Kind.MULTI, _table("category", with_help=True), Field.CATEGORIES, unsure="other"
    ),
    Step.SUBJECT: Question(Kind.TEXT),
    Step.DESCRIPTION: Question(Kind.DESCRIPTION, _fixed((DONE, "done"))),
    Step.LINKS: Question(Kind.LINKS, _fixed((NO_LINKS, "no_links"))),
    Step.ALREADY_REPORTED: Question(
        Kind.SINGLE,
        _fixed(
            ("yes", "reported_yes"),
            ("no", "reported_no"),
            ("not_sure", "not_sure"),
            ("na", "reported_na"),
        ),
        understood=lambda u: {True: "yes", False: "no"}.get(u.already_reported),  # type: ignore[arg-type]
        unsure="not_sure",
    ),
    Step.DANGER: Question(
        Kind.SINGLE,
        _fixed(("yes", "danger_yes"), ("no", "danger_no"), ("not_sure", "danger_not_sure")),
        unsure="not_sure",
    ),
    Step.REPLY_VIA: Question(
        Kind.SINGLE,
        _fixed(("chat", "reply_chat"), ("email", "reply_email"), ("phone", "reply_phone")),
    ),
    Step.EMAIL: Question(Kind.EMAIL),
    Step.PHONE: Question(Kind.PHONE),
    Step.NAME: Question(Kind.OPTIONAL_TEXT, _fixed((SKIP, "skip"))),
    Step.REVIEW: Question(
        Kind.SINGLE, _fixed(("submit", "submit"), ("edit", "edit"), ("cancel", "cancel"))
    ),
}

FALLBACKS: Mapping[Step, str] = {
    Step.ROLE_GROUP: "other",
    Step.PUBLIC_CONCERN: "other",
    Step.SETTING: "none",
    Step.REGION: "unknown",
    Step.PLATFORM_TYPE: "unknown",
    Step.PLATFORM: "other",
    Step.CATEGORIES: "other",
    Step.ALREADY_REPORTED: "not_sure",
    Step.DANGER: "not_sure",
    Step.REPLY_VIA: "chat",
}
"""What an answer in the enquirer's own words is kept as, when no option fits (the words
go to the practitioner beside it). A role falls back to its group's ``fallback``."""


def fallback(step: Step, k: Knowledge, answers: Answers) -> Any:
    """The answer kept for words no option matched, or None where there is none."""
    if step is Step.ROLE:
        group = k.taxonomy["enquirer_group"].get(str(answers.get(Step.ROLE_GROUP)))
        return group.fallback if group else None
    value = FALLBACKS.get(step)
    return [value] if value and QUESTIONS[step].kind is Kind.MULTI else value


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
_NUMBER = re.compile(r"\s*#?\s*([0-9]{1,3})\s*[.)]?\s*")


def offered(step: Step, k: Knowledge, answers: Answers) -> tuple[Offered, ...]:
    """The options ``step`` shows, given the answers so far."""
    return QUESTIONS[step].options(k, answers)


def menu(step: Step, conv: Conversation, k: Knowledge) -> tuple[Offered, ...]:
    """The options shown, in order: a long menu most likely first, the rest behind More."""
    items = offered(step, k, conv.answers)
    if step is not Step.CATEGORIES:
        return items
    mentioned = [str(m) for m in conv.answers.get("mentioned", [])]
    rank = {c: i for i, c in enumerate(mentioned)}
    ordered = sorted(items, key=lambda o: (rank.get(o.option.id, len(rank)), items.index(o)))
    chosen = set(conv.selection) | set(conv.answers.get(Step.CATEGORIES) or [])
    if conv.expanded or len(ordered) <= MENU_SIZE + 1:
        return tuple(ordered)
    head = [o for o in ordered[:MENU_SIZE]]
    head += [o for o in ordered[MENU_SIZE:] if o.option.id in chosen]
    more = Option(MORE, k.copy("options.more_topics"), k.copy("options.more_topics_help"))
    return (*head, Offered(more, (MORE, more.label, *k.understander.answers.get("more", ()))))


def _choices(items: Sequence[Offered]) -> tuple[Choice, ...]:
    return choices_for([(o.option.id, o.names) for o in items])


def number_of(text: str) -> int | None:
    """The option number a message is, if it is only a number ("2", "2.", "#2")."""
    match = _NUMBER.fullmatch(text)
    return int(match[1]) if match else None


def _numbered(text: str, shown: Sequence[Offered]) -> str | None:
    number = number_of(text)
    if number is None or not 1 <= number <= len(shown):
        return None
    return shown[number - 1].option.id


def interpret(
    step: Step,
    inbound: Inbound,
    conv: Conversation,
    k: Knowledge,
    reading: Understanding | None = None,
) -> Interpretation:
    """What ``inbound`` means at ``step``. Never raises on any input."""
    question = QUESTIONS[step]
    items = offered(step, k, conv.answers)
    shown = menu(step, conv, k)
    ids = {o.option.id for o in items}
    if inbound.kind is InboundKind.TEXT and not inbound.text.strip():
        return Reask("reasks.text_empty")
    if question.kind is Kind.MULTI:
        return _multi(inbound, conv, items, shown, k, reading)
    if inbound.kind in (InboundKind.CHOOSE, InboundKind.TOGGLE):
        picked = inbound.option_ids
        if len(picked) == 1 and picked[0] in ids:
            return _picked(question.kind, picked[0], conv)
        return Reask("reasks.choose")
    text = inbound.text
    numbered = _numbered(text, shown)
    if question.kind is Kind.SINGLE:
        if number_of(text) is not None:
            return Answer(numbered) if numbered else Reask("reasks.choose")
        found = _single(text, question, items, k, reading)
        return Answer(found) if found in ids else Reask("reasks.choose")
    # Typed answers: an offered option (Done, Skip, No links) by number or name still counts.
    if numbered or (items and normalise(text) in {n for c in _choices(items) for n in c.names}):
        return _picked(question.kind, numbered or items[0].option.id, conv)
    if question.kind is Kind.OPTIONAL_TEXT and k.understander.is_skip(text):
        return Answer(None)
    return _typed(question.kind, text, conv)


def _single(
    text: str,
    question: Question,
    items: Sequence[Offered],
    k: Knowledge,
    reading: Understanding | None,
) -> str | None:
    if question.unsure and k.understander.is_unsure(text):
        return question.unsure
    found = match_one(text, _choices(items))
    if found is None and question.understood is not None:
        if reading is None:
            reading = k.understander.read(text, answering=question.field)
        found = question.understood(reading)
    return found


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
    inbound: Inbound,
    conv: Conversation,
    items: Sequence[Offered],
    shown: Sequence[Offered],
    k: Knowledge,
    reading: Understanding | None,
) -> Interpretation:
    ids = {o.option.id for o in items}
    if inbound.kind is InboundKind.TOGGLE:
        (option_id,) = inbound.option_ids or ("",)
        if option_id == MORE:
            conv.expanded = True
            return Stay()
        if option_id not in ids:
            return Reask("reasks.choose_multiple")
        if option_id in conv.selection:
            conv.selection.remove(option_id)
        else:
            conv.selection.append(option_id)
        return Stay()
    if inbound.kind is InboundKind.CHOOSE:
        picked = [i for i in inbound.option_ids if i != DONE]
        if MORE in picked:
            conv.expanded = True
            return Stay()
        if any(i not in ids for i in picked):
            return Reask("reasks.choose_multiple")
        chosen = picked or list(conv.selection)
    elif normalise(inbound.text) in k.understander.answers.get("done", ()):
        chosen = list(conv.selection)
    else:
        found = _typed_choices(inbound.text, items, shown, k, reading)
        if found is None:
            return Reask("reasks.choose_multiple")
        if MORE in found:
            conv.expanded = True
            return Stay()
        chosen = list(found)
    if not chosen:
        return Reask("reasks.choose_at_least_one")
    return Answer(list(dict.fromkeys(chosen)))


def _typed_choices(
    text: str,
    items: Sequence[Offered],
    shown: Sequence[Offered],
    k: Knowledge,
    reading: Understanding | None,
) -> tuple[str, ...] | None:
    """Ids for "1, 3", "bullying and tiktok" or a sentence about the problem; None if not."""
    if k.understander.is_unsure(text):
        return ("other",)
    names = _choices([*shown, *items])
    parts = split_parts(text)
    ids: list[str] = []
    for part in parts:
        found = _numbered(part, shown) if number_of(part) is not None else match_one(part, names)
        if found is None:
            break
        ids.append(found)
    else:
        if ids:
            return tuple(dict.fromkeys(ids))
    if any(number_of(part) is not None for part in parts):
        return None  # a number that is not on screen, or numbers mixed with words
    reading = reading or k.understander.read(text, answering=Field.CATEGORIES)
    return reading.categories or None


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
        links = find_links(text) or account_names(text)
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


def is_answered(step: Step, k: Knowledge, answers: Answers) -> bool:
    """Whether ``answers`` hold a still-valid answer for ``step``.

    A choice made under an earlier answer (a role from another group, a platform after
    the content moved to a website) no longer counts.
    """
    if step not in answers or step not in QUESTIONS:
        return False
    value = answers[step]
    kind = QUESTIONS[step].kind
    if kind in (Kind.SINGLE, Kind.MULTI):
        ids = {o.option.id for o in offered(step, k, answers)}
        if kind is Kind.SINGLE:
            return isinstance(value, str) and value in ids
        return isinstance(value, list) and bool(value) and all(v in ids for v in value)
    if kind is Kind.LINKS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is Kind.OPTIONAL_TEXT:
        return value is None or isinstance(value, str)
    return isinstance(value, str) and bool(value)
