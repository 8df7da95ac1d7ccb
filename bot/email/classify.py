"""Which emails a person wrote to us, and which must never be answered.

An acknowledgement sent to an out-of-office reply, a bounce, a mailing list or our own
mail starts a loop (two robots writing to each other all night) or spams a list. The
checks are the ones Zammad and django-helpdesk use, as a table: the first that matches
names the kind. Such mail is recorded, never turned into a case.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from bot.email.parsing import ParsedEmail


class MailKind(StrEnum):
    """What an email is, for what to do with it."""

    PERSON = "person"
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    LIST = "list"
    """A mailing list, a newsletter or other bulk mail."""
    OWN = "own"
    NO_SENDER = "no_sender"


_NULL_SENDERS = ("mailer-daemon@", "postmaster@")
_BOUNCE_SUBJECT = re.compile(
    r"^(undeliver|undelivered mail|delivery status notification|delivery failure|"
    r"mail delivery (failed|subsystem)|returned mail|failure notice)",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response)|out of (the )?office|away from the office)", re.I
)


def _is_bounce(mail: ParsedEmail, own: frozenset[str]) -> bool:
    report = mail.content_type == "multipart/report"
    null = mail.return_path in ("<>", "") or mail.sender.startswith(_NULL_SENDERS)
    return (
        report
        or (null and bool(_BOUNCE_SUBJECT.search(mail.subject)))
        or (mail.sender.startswith(_NULL_SENDERS))
    )


def _is_auto_reply(mail: ParsedEmail, own: frozenset[str]) -> bool:
    h = mail.headers
    auto = h.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return True
    if "x-autoreply" in h or "x-autorespond" in h or "x-auto-response-suppress" in h:
        return True
    if h.get("precedence", "").strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.search(mail.subject))


def _is_list(mail: ParsedEmail, own: frozenset[str]) -> bool:
    h = mail.headers
    listed = "list-id" in h or "list-unsubscribe" in h or "list-post" in h
    return listed or h.get("precedence", "").strip().lower() in ("list", "bulk", "junk")


def _is_own(mail: ParsedEmail, own: frozenset[str]) -> bool:
    if mail.sender in own:
        return True
    if "x-loop" in mail.headers and any(a in mail.headers["x-loop"].lower() for a in own):
        return True
    domains = {a.rsplit("@", 1)[-1] for a in own}
    ours = mail.message_id and mail.message_id.rstrip(">").rsplit("@", 1)[-1] in domains
    return bool(ours and mail.message_id and mail.message_id.startswith("<hl-"))


CHECKS: tuple[tuple[MailKind, Callable[[ParsedEmail, frozenset[str]], bool]], ...] = (
    (MailKind.NO_SENDER, lambda mail, own: not mail.sender),
    (MailKind.OWN, _is_own),
    (MailKind.BOUNCE, _is_bounce),
    (MailKind.AUTO_REPLY, _is_auto_reply),
    (MailKind.LIST, _is_list),
)
"""In order: the first that holds names the kind (a bounce also looks automatic)."""


def classify(mail: ParsedEmail, own_addresses: frozenset[str]) -> MailKind:
    """What ``mail`` is; ``own_addresses`` are the helpline's own (lower-cased)."""
    for kind, check in CHECKS:
        if check(mail, own_addresses):
            return kind
    return MailKind.PERSON
