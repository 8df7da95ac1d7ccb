"""An enquiry that arrived by email: read whole, turned into a case (or a signpost) at once.

A chat asks what it did not understand; an email cannot, so everything the message says
(its subject, its body, its signature) is read by the same understanding layer as a first
chat message, and the acknowledgement shows what was understood so the enquirer can
correct it by replying. The remit is the chat's: a child writing about themselves, or an
adult whose own intimate images were shared, is signposted and only a record with nothing
personal in it is kept; risk puts 999 and the crisis lines first and makes the case urgent.

The acknowledgement offers a copy of what was recorded: a reply asking for one
(:func:`copy_request`) gets :func:`case_copy`.

Pure: the channel (``bot/email``) parses the mail and sends what this returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from flows import casefile
from flows.conversation import CaseDraft, CaseStatus, Conversation, ReplyVia, Step
from flows.intake import IntakeFlow
from flows.machine import CALLBACKS
from flows.questions import DESCRIPTION_LIMIT, SUBJECT_LIMIT
from flows.remit import RISK_ROUTES, Audience, Route
from flows.routing import PUBLIC_ROLES
from flows.signposting import show_route
from flows.turn import Context, CopyEmailed, Turn
from flows.understanding import Risk
from flows.validate import find_links

REFERENCE = re.compile(r"\[?\b(HL-[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6})\b\]?", re.I)
"""A case reference as it appears in a subject line (``Re: [HL-7KQ3MX] …``)."""

_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|tr)\s*(\[\d+\])?\s*:\s*)+", re.I)


@dataclass(frozen=True, slots=True)
class EmailEnquiry:
    """What the channel read from one email (quoted history and signature noise gone)."""

    subject: str
    body: str
    sender: str
    sender_name: str | None = None
    attachments: int = 0
    """How many attachments or images were refused (never opened, never kept)."""


@dataclass(frozen=True, slots=True)
class EmailReading:
    """The case to record and the acknowledgement to send."""

    draft: CaseDraft
    signposted: bool
    """Out of remit: only the signposted record is kept (no description, no contact)."""
    subject: str
    """The acknowledgement's subject line (with the reference)."""
    text: str
    """The acknowledgement, plain text; every section is a paragraph."""
    sections: tuple[str, ...]


COURTESY_WORDS = 5
"""Words after a request for a copy that are only a sign-off ("Thanks, Jane"): not news
for the desk. More, and the rest of the reply goes to the case's thread as well."""


@dataclass(frozen=True, slots=True)
class FollowUpMail:
    """What the channel read from an enquirer's reply on a case they sent."""

    text: str
    """The reply without its quoted history."""
    enquirer_type: str | None = None
    """The case's enquirer type (its label), so safety wording fits the reader."""
    attachments: int = 0
    too_large_mb: str | None = None
    """The size limit, when the reply was over it and could not be read."""
    opens: str | None = None
    """When the helpline opens next, worded (``at 10:00 on Monday``), while it is closed."""


@dataclass(frozen=True, slots=True)
class FollowUpReading:
    """What a reply on a case raises, and the answer it needs, if any."""

    risks: tuple[Risk, ...]
    """Risk in the reply: the case becomes urgent."""
    text: str | None
    """The answer, plain text: 999 and the crisis lines first for risk, then what became
    of the reply (urgent; attachments refused; too large to read). None when the reply is
    only added to its case: answering every reply would be noise, and feeds mail loops."""


def read_follow_up(flow: IntakeFlow, mail: FollowUpMail, context: Context) -> FollowUpReading:
    """The risk in an enquirer's reply on case ``context.reference``, and its answer."""
    k = flow.knowledge
    copy = k.copy
    reading = k.understander.read(mail.text)
    conversation = Conversation()
    role = k.taxonomy["enquirer_type"].by_label(mail.enquirer_type or "")
    if role is not None:
        conversation.answers[Step.ROLE.value] = role.id
    turn = Turn(
        knowledge=k,
        conversation=conversation,
        context=context,
        reader=Audience.CHILD if reading.under_18 else None,  # as in the chat
    )
    for risk in reading.risks:
        show_route(turn, RISK_ROUTES[risk])
    news = [copy("email.follow_up_urgent", reference=context.reference)] if reading.risks else []
    if reading.risks and mail.opens:
        news.append(copy("email.follow_up_closed", opens=mail.opens))
    if mail.too_large_mb is not None:
        news.append(copy("email.oversized", limit=mail.too_large_mb))
    if mail.attachments:
        news.append(copy("email.attachments", count=mail.attachments))
    if not news:
        return FollowUpReading(reading.risks, None)
    sections = [*(r.text for r in turn.replies), copy("email.greeting"), *news]
    return FollowUpReading(reading.risks, "\n\n".join([*sections, copy("email.signoff")]))


def copy_request(flow: IntakeFlow, text: str) -> str | None:
    """Whether a reply asks for a copy of the enquiry (its first line does: "COPY", "please
    send me a copy"), and if so what else it says for the desk ("" for only a sign-off).
    None: it does not ask, and is a follow-up like any other."""
    first, _, rest = text.strip().partition("\n")
    if not flow.knowledge.understander.is_copy_request(first):
        return None
    rest = rest.strip()
    return rest if len(rest.split()) > COURTESY_WORDS else ""


def case_copy(flow: IntakeFlow, draft: CaseDraft) -> CopyEmailed | None:
    """The copy an enquirer who wrote by email asked for: what their case holds, whole.
    None when the case has no address (it was erased)."""
    k = flow.knowledge
    if not draft.contact_email:
        return None
    return casefile.copy_email(
        k,
        reference=draft.reference,
        to=draft.contact_email,
        name=draft.contact_name,
        intro=k.copy("email.copy_recorded", reference=draft.reference),
        summary=casefile.draft_summary(draft, k),
    )


def clean_subject(subject: str) -> str:
    """The subject without ``Re:``/``Fwd:`` prefixes and our reference (the case's title)."""
    plain = " ".join(subject.split())
    plain = _REPLY_PREFIX.sub("", plain)
    plain = REFERENCE.sub("", plain)
    return " ".join(plain.split()).strip(" -:")[:SUBJECT_LIMIT]


def reference_in(subject: str) -> str | None:
    """The case reference a subject line carries, if any (``[HL-XXXXXX]``)."""
    found = REFERENCE.search(subject or "")
    return found.group(1).upper() if found else None


PUBLIC_ROUTES = {"parent": Route.WORRIED_ABOUT_CHILD}
"""What an email from the public is given (beside its case): a parent, the services for a
worried parent; anyone else, those for harmful content (the chat asks which it is)."""


def read_email(flow: IntakeFlow, enquiry: EmailEnquiry, context: Context) -> EmailReading:
    """The case (or signpost) and acknowledgement for a new email."""
    k = flow.knowledge
    copy = k.copy
    subject = clean_subject(enquiry.subject)
    text = f"{subject}\n\n{enquiry.body}" if subject else enquiry.body
    reading = k.understander.read(text)
    conversation = Conversation()
    flow.take_in(conversation, reading)
    answers = conversation.answers
    description = enquiry.body.strip()[:DESCRIPTION_LIMIT]
    answers[Step.SUBJECT.value] = subject or copy("email.no_subject")
    if description:
        answers[Step.DESCRIPTION.value] = description
        answers["description_links"] = find_links(description)
    answers[Step.LINKS.value] = []
    answers[Step.REPLY_VIA.value] = ReplyVia.EMAIL.value
    answers[Step.EMAIL.value] = enquiry.sender
    if enquiry.sender_name:
        answers[Step.NAME.value] = enquiry.sender_name
    child = bool(reading.under_18) and (reading.child_certain or reading.enquirer_type is None)
    own_images = reading.own_images and reading.enquirer_type in (None, *PUBLIC_ROLES)
    turn = Turn(
        knowledge=k,
        conversation=conversation,
        context=context,
        reader=Audience.CHILD if child else None,
    )
    if reading.risks:
        answers["risks"] = [r.value for r in reading.risks]
    for risk in reading.risks:
        show_route(turn, RISK_ROUTES[risk])
    safety = [r.text for r in turn.replies]
    route = Route.CHILD if child else Route.INTIMATE_ADULT if own_images else None
    if route is not None:
        age_unknown = reading.under_18 is None and reading.enquirer_type is None
        return _signposted(flow, enquiry, context, turn, route, safety, age_unknown=age_unknown)
    audience = turn.audience
    sections: list[str] = [*safety]
    name = enquiry.sender_name
    sections.append(copy("email.greeting_named", name=name) if name else copy("email.greeting"))
    sections.append(copy("email.received", reference=context.reference))
    if context.reply_note:
        sections.append(context.reply_note)
    understood = casefile.understood_summary(conversation, k)
    sections.append(
        f"{copy('email.understood')}\n{understood}"
        if understood
        else copy("email.understood_nothing")
    )
    if enquiry.attachments:
        sections.append(copy("email.attachments", count=enquiry.attachments))
    if len(enquiry.body.strip()) > DESCRIPTION_LIMIT:
        sections.append(copy("email.cut", limit=f"{DESCRIPTION_LIMIT:,}"))
    shown = len(turn.replies)
    if reading.enquirer_type in PUBLIC_ROLES:  # as the chat does for the public
        public = PUBLIC_ROUTES.get(reading.enquirer_type or "", Route.PUBLIC_OTHER)
        show_route(turn, public, intro=f"email.intro_{public.value}")
    CALLBACKS["show_category_services"](turn)  # CEOP for grooming, as in the chat
    sections += [r.text for r in turn.replies[shown:]]
    if help_text := casefile.while_you_wait(conversation, k, audience):
        sections.append(help_text)
    sections += [copy("email.copy_offer"), copy("email.signoff")]
    draft = casefile.draft_of(conversation, context, k, complete=True)
    draft = replace(draft, urgent=draft.urgent or bool(reading.risks))
    return EmailReading(
        draft=draft,
        signposted=False,
        subject=_ack_subject(flow, context.reference, subject),
        text="\n\n".join(sections),
        sections=tuple(sections),
    )


def _signposted(
    flow: IntakeFlow,
    enquiry: EmailEnquiry,
    context: Context,
    turn: Turn,
    route: Route,
    safety: list[str],
    *,
    age_unknown: bool,
) -> EmailReading:
    """A kind reply pointing to the right service; a record with nothing personal in it
    (``age_unknown``: nobody said whether the writer is under 18)."""
    copy = flow.knowledge.copy
    show_route(turn, route)
    if route is Route.INTIMATE_ADULT and age_unknown:
        # No age given, and an email cannot ask: the services for a child too, in case.
        show_route(turn, Route.CHILD, intro="email.intro_if_under_18")
    signposts = [r.text for r in turn.replies[len(safety) :]]
    closing = copy.worded("signpost.closing_ends", turn.audience)
    if route is Route.CHILD:
        closing = copy("email.child_closing")
    sections = [*safety, copy("email.child_greeting"), *signposts]
    if enquiry.attachments:
        sections.append(copy("email.attachments", count=enquiry.attachments))
    sections.append(closing)
    role = "child" if route is Route.CHILD else turn.answers.get(Step.ROLE)
    draft = CaseDraft(
        reference=context.reference,
        status=CaseStatus.SIGNPOSTED,
        received_at=context.now,
        enquirer_type=casefile.label(flow.knowledge, "enquirer_type", role),
        signposted_to=tuple(turn.answers.get("signposted_to", ())),
    )
    subject = clean_subject(enquiry.subject) or copy("email.no_subject")
    return EmailReading(
        draft=draft,
        signposted=True,
        subject=copy("email.oversized_subject", subject=subject),
        text="\n\n".join(sections),
        sections=tuple(sections),
    )


def _ack_subject(flow: IntakeFlow, reference: str, subject: str) -> str:
    copy = flow.knowledge.copy
    return copy("email.subject", reference=reference, subject=subject or copy("email.no_subject"))


def reply_subject(flow: IntakeFlow, reference: str, subject: str | None) -> str:
    """The subject of a practitioner's email on a case (threads with the enquirer's mail)."""
    return _ack_subject(flow, reference, clean_subject(subject or ""))
