"""A case draft with every field filled, for storage tests to change one field of."""

from __future__ import annotations

from datetime import UTC, datetime

from flows.conversation import CaseDraft, CaseStatus, ReplyVia

NOW = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


def draft(reference: str = "HL-AAAAAA", **changes: object) -> CaseDraft:
    values: dict[str, object] = {
        "reference": reference,
        "status": CaseStatus.NEW,
        "received_at": NOW,
        "enquirer_type": "Teacher",
        "setting": "Secondary",
        "region": "London",
        "platform_type": "Social Networks",
        "platform": "TikTok",
        "categories": ("Online Reputation", "Cyberbullying"),
        "subject": "Fake account",
        "description": "Details",
        "links": ("https://tiktok.com/@x",),
        "already_reported": True,
        "urgent": False,
        "reply_via": ReplyVia.EMAIL,
        "contact_email": "a@school.org",
    }
    values.update(changes)
    return CaseDraft(**values)  # type: ignore[arg-type]
