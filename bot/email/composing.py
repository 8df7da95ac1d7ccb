"""Writing the helpline's emails: plain text, a clean HTML alternative, threading headers.

Every email we send carries our own Message-ID (fixed before the first attempt, so a resend
is the same message and mail clients show it once), threads onto the enquirer's mail
(``In-Reply-To`` / ``References``) and, when a machine wrote it, says so
(``Auto-Submitted: auto-replied``) so their autoresponder does not answer it. The HTML is
made from the text: every character the enquirer or a practitioner wrote is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from storage.mail import domain_of, message_id

__all__ = ["as_html", "compose", "domain_of", "message_id"]

_LINK = re.compile(r"https?://[^\s<>\"']+")


def as_html(text: str) -> str:
    """The plain text as simple HTML: paragraphs, line breaks, links; everything escaped."""
    paragraphs = []
    for block in text.split("\n\n"):
        escaped = html.escape(block, quote=True)
        linked = _LINK.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    body = "\n".join(paragraphs)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.4">\n{body}\n</body></html>\n'
    )


def compose(
    *,
    sender: str,
    sender_name: str,
    to: str,
    subject: str,
    text: str,
    msg_id: str,
    at: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    automatic: bool = False,
    with_html: bool = True,
) -> EmailMessage:
    """The finished message, ready for SMTP."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())[:250]
    message["Date"] = format_datetime(at)
    message["Message-ID"] = msg_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    refs = list(dict.fromkeys(r for r in (*references, in_reply_to) if r))[-20:]
    if refs:
        message["References"] = " ".join(refs)
    if automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    message["X-Loop"] = sender
    message.set_content(text)
    if with_html:
        message.add_alternative(as_html(text), subtype="html")
    return message
