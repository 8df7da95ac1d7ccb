"""The case a conversation describes: which answers count, the review, the draft, self-help.

Answers to questions no longer on the enquirer's path (a platform, after the content moved
to a website) are left out, so what is reviewed is exactly what is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flows.conversation import FINAL_STEPS, CaseDraft, CaseStatus, Conversation, ReplyVia, Step
from flows.messages import Option
from flows.questions import is_answered, offered
from flows.table import CONDITIONS, EDITABLE, TRANSITIONS
from flows.turn import Context, Turn

if TYPE_CHECKING:
    from flows.intake import IntakeFlow


class CaseFile:
    def __init__(self, flow: IntakeFlow) -> None:
        self.flow = flow

    def edit_options(self, conv: Conversation) -> tuple[Option, ...]:
        on_path = set(self.path(conv.answers))
        return tuple(
            Option(step.value, self.flow.copy(f"fields.{name}"))
            for name, step in EDITABLE
            if step in on_path
        )

    def summary(self, conv: Conversation) -> str:
        """The review: every answer on the enquirer's path, as they will be sent."""
        draft = self.draft(conv, Context(now=datetime.min, reference=""))
        c = self.flow.copy
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
            "already_reported": self.option_label(Step.ALREADY_REPORTED, conv.answers),
            "danger": self.option_label(Step.DANGER, conv.answers),
            "reply_via": contact[draft.reply_via] if draft.reply_via else None,
            "name": draft.contact_name or c("review.skipped"),
        }
        on_path = set(self.path(conv.answers))
        return "\n".join(
            c("review.line", field=c(f"fields.{name}"), value=values[name])
            for name, step in EDITABLE
            if step in on_path and values[name] is not None
        )

    def option_label(self, step: Step, answers: Mapping[str, Any]) -> str | None:
        for item in offered(step, self.flow.taxonomy, self.flow.copy, answers):
            if item.option.id == answers.get(step.value):
                return item.option.label
        return None

    def path(self, answers: Mapping[str, Any]) -> list[Step]:
        """The questions the enquirer's answers lead through, in order, up to the review.

        Answers to questions no longer on the path (a platform, after the content moved
        to a website) are left out of the case.
        """
        return self._walk(answers)[0]

    def missing(self, answers: Mapping[str, Any]) -> Step | None:
        """The first question still to answer before the review, or None if complete."""
        return self._walk(answers)[1]

    def _walk(self, answers: Mapping[str, Any]) -> tuple[list[Step], Step | None]:
        probe = Turn(self.flow, Conversation(answers=dict(answers)), Context(datetime.min, ""))
        steps: list[Step] = []
        step = Step.START
        while True:
            rows = [r for r in TRANSITIONS if r[0] is step]
            nxt = next(
                (d for _, d, cond, _ in rows if cond is None or CONDITIONS[cond](probe)), None
            )
            if nxt is None or nxt in FINAL_STEPS or nxt is Step.REVIEW or nxt in steps:
                return steps, None
            if not is_answered(nxt, self.flow.taxonomy, self.flow.copy, answers):
                return steps, nxt
            steps.append(nxt)
            step = nxt

    def while_you_wait(self, conv: Conversation) -> str:
        """The platform's own reporting route for what the enquirer described."""
        on_path = self.path(conv.answers)
        platform = conv.answers.get(Step.PLATFORM) if Step.PLATFORM in on_path else None
        categories = conv.answers.get(Step.CATEGORIES, []) if Step.CATEGORIES in on_path else []
        playbook = self.flow.playbooks.for_case(platform, [str(c) for c in categories])
        return self.flow.playbooks.render(playbook)

    def label(self, table: str, term_id: Any) -> str | None:
        term = self.flow.taxonomy[table].get(str(term_id)) if term_id is not None else None
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
                self.flow.taxonomy["category"][c].label for c in a.get(Step.CATEGORIES, [])
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
