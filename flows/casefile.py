"""The case a conversation describes: which answers count, the review, the draft, self-help.

Answers to questions no longer on the enquirer's path (a platform, after the content moved
to a website) are left out, so what is reviewed is exactly what is stored. The path is
the route's own (:func:`flows.routing.walk`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flows.conversation import CaseDraft, CaseStatus, Conversation, ReplyVia, Step, steps_of
from flows.knowledge import Knowledge
from flows.messages import Option
from flows.questions import is_answered, offered
from flows.remit import Audience
from flows.routing import EDITABLE, ahead, walk
from flows.turn import Context, CopyEmailed

SUMMARY_DESCRIPTION = 600
"""Characters of the description shown in the review (the case keeps all of it)."""


def path(answers: Mapping[str, Any], k: Knowledge) -> tuple[Step, ...]:
    """The questions the enquirer's answers lead through, in order, up to the review."""
    return walk(answers, k).path


def missing(answers: Mapping[str, Any], k: Knowledge) -> Step | None:
    """The first question still to answer before the review, or None if complete."""
    return walk(answers, k).missing


def edit_options(conv: Conversation, k: Knowledge) -> tuple[Option, ...]:
    """The answers that can be changed: those on the enquirer's path."""
    on_path = set(path(conv.answers, k))
    return tuple(
        Option(step.value, k.copy(f"fields.{name}")) for name, step in EDITABLE if step in on_path
    )


def option_label(step: Step, answers: Mapping[str, Any], k: Knowledge) -> str | None:
    """The label of the option chosen at ``step``, if it is still one the step offers."""
    for item in offered(step, k, answers):
        if item.option.id == answers.get(step.value):
            return item.option.label
    return None


def label(k: Knowledge, table: str, term_id: Any) -> str | None:
    """The stored label of a taxonomy term (None for no answer), as cases keep it for counting."""
    term = k.taxonomy[table].get(str(term_id)) if term_id is not None else None
    return term.label if term else None


def draft_values(draft: CaseDraft, k: Knowledge, *, whole: bool = False) -> dict[str, str | None]:
    """Each field of a case as the enquirer reads it back, in the review's wording.

    ``whole``: the description in full (a copy to keep), not cut short for the chat."""
    c = k.copy
    none = c("review.none")
    contact = {
        ReplyVia.CHAT: c("review.reply_chat"),
        ReplyVia.EMAIL: c("review.reply_email", email=draft.contact_email),
        ReplyVia.PHONE: c("review.reply_phone", phone=draft.contact_phone),
    }
    description = draft.description or none
    if len(description) > SUMMARY_DESCRIPTION and not whole:
        description = description[:SUMMARY_DESCRIPTION].rstrip() + "…"
    known = draft.already_reported
    reported = None if known is None else ("yes" if known else "no")
    return {
        "enquirer_type": draft.enquirer_type,
        "setting": draft.setting,
        "region": draft.region,
        "platform_type": draft.platform_type,
        "platform": draft.platform,
        "categories": ", ".join(draft.categories),
        "subject": draft.subject,
        "description": description,
        "links": "\n".join(draft.links) or none,
        "already_reported": option_label(
            Step.ALREADY_REPORTED, {Step.ALREADY_REPORTED.value: reported}, k
        ),
        "danger": None,  # a case keeps only whether it is urgent, not the answer
        "reply_via": contact[draft.reply_via] if draft.reply_via else None,
        "name": draft.contact_name or c("review.skipped"),
    }


def _values(
    conv: Conversation, k: Knowledge, *, complete: bool, whole: bool = False
) -> dict[str, str | None]:
    """Each editable answer as the enquirer should read it back (``complete``: every valid
    answer, not only those on the path so far), with the options exactly as chosen."""
    draft = draft_of(conv, Context(now=datetime.min, reference=""), k, complete=complete)
    return draft_values(draft, k, whole=whole) | {
        "already_reported": option_label(Step.ALREADY_REPORTED, conv.answers, k),
        "danger": option_label(Step.DANGER, conv.answers, k),
    }


def summary(conv: Conversation, k: Knowledge, *, whole: bool = False) -> str:
    """The review: every answer on the enquirer's path, as they will be sent (``whole``:
    the description in full)."""
    return _lines(_values(conv, k, complete=False, whole=whole), k, set(path(conv.answers, k)))


def understood_summary(conv: Conversation, k: Knowledge) -> str:
    """What was taken from their own words (not asked), for them to check."""
    coming = set(ahead(conv.answers, k)) - {Step.DESCRIPTION, Step.LINKS}  # their own words
    valid = {s for s in steps_of(conv.understood) if is_answered(s, k, conv.answers)}
    return _lines(_values(conv, k, complete=True), k, valid & coming)


def draft_summary(draft: CaseDraft, k: Knowledge) -> str:
    """What a stored case holds, in the review's words and order, description in full: the
    copy an enquirer who wrote by email gets (there was no review to show them)."""
    return _lines(draft_values(draft, k, whole=True), k, {step for _, step in EDITABLE})


def _lines(values: Mapping[str, str | None], k: Knowledge, steps: set[Step]) -> str:
    return "\n".join(
        k.copy("review.line", field=k.copy(f"fields.{name}"), value=values[name])
        for name, step in EDITABLE
        if step in steps and values[name] is not None
    )


def copy_email(
    k: Knowledge, *, reference: str, to: str, name: str | None, intro: str, summary: str
) -> CopyEmailed:
    """The email a copy of an enquiry goes out in: greeting, ``intro``, the summary, and
    how to write back (a reply to it reaches the case)."""
    c = k.copy
    greeting = c("email.greeting_named", name=name) if name else c("email.greeting")
    return CopyEmailed(
        reference=reference,
        to=to,
        subject=c("email.copy_subject", reference=reference),
        text="\n\n".join([greeting, intro, summary, c("email.copy_signoff")]),
    )


def while_you_wait(conv: Conversation, k: Knowledge, audience: Audience | None) -> str:
    """The platform's own reporting route for what the enquirer described."""
    on_path = path(conv.answers, k)
    platform = conv.answers.get(Step.PLATFORM) if Step.PLATFORM in on_path else None
    categories = conv.answers.get(Step.CATEGORIES, []) if Step.CATEGORIES in on_path else []
    playbook = k.playbooks.for_case(platform, [str(c) for c in categories], audience)
    return k.playbooks.render(playbook)


def _own_words(conv: Conversation, k: Knowledge) -> str:
    """Answers given in the enquirer's own words where no option fitted, for the practitioner."""
    own = conv.answers.get("own_words")
    if not isinstance(own, dict) or not own:
        return ""
    fields = {step.value: name for name, step in EDITABLE} | {"role": "enquirer_type"}
    lines = [
        k.copy(
            "review.own_words",
            field=k.copy(f"fields.{fields.get(step, 'enquirer_type')}"),
            text=text,
        )
        for step, text in own.items()
        if isinstance(text, str)
    ]
    return "\n".join(lines)


def draft_of(
    conv: Conversation, context: Context, k: Knowledge, *, complete: bool = False
) -> CaseDraft:
    """The case the conversation describes, with the taxonomy's labels.

    Only answers on the enquirer's path count, or with ``complete`` every answer to a
    question still ahead of them (what they have told us so far)."""
    steps = ahead(conv.answers, k) if complete else path(conv.answers, k)
    a = {s.value: conv.answers[s.value] for s in steps if is_answered(s, k, conv.answers)}
    links = list(a.get(Step.LINKS, []))
    if Step.DESCRIPTION in a:
        links += [u for u in conv.answers.get("description_links", []) if u not in links]
    reply_via = ReplyVia(a[Step.REPLY_VIA]) if Step.REPLY_VIA in a else None
    already = a.get(Step.ALREADY_REPORTED)
    risks = conv.answers.get("risks", [])
    description = a.get(Step.DESCRIPTION)
    if own := _own_words(conv, k):
        description = f"{description}\n\n{own}" if description else own
    return CaseDraft(
        reference=context.reference,
        status=CaseStatus.NEW,
        received_at=context.now,
        enquirer_type=label(k, "enquirer_type", a.get(Step.ROLE)),
        setting=label(k, "setting", a.get(Step.SETTING)),
        region=label(k, "region", a.get(Step.REGION)),
        platform_type=label(k, "platform_type", a.get(Step.PLATFORM_TYPE)),
        platform=label(k, "platform", a.get(Step.PLATFORM)),
        categories=tuple(k.taxonomy["category"][c].label for c in a.get(Step.CATEGORIES, [])),
        subject=a.get(Step.SUBJECT),
        description=description,
        links=tuple(links),
        already_reported={"yes": True, "no": False}.get(str(already)) if already else None,
        urgent=a.get(Step.DANGER) in ("yes", "not_sure") or bool(risks),
        reply_via=reply_via,
        contact_email=a.get(Step.EMAIL) if reply_via is ReplyVia.EMAIL else None,
        contact_phone=a.get(Step.PHONE) if reply_via is ReplyVia.PHONE else None,
        contact_name=a.get(Step.NAME),
        signposted_to=tuple(conv.answers.get("signposted_to", ())),
    )
