"""Data protection rules that are pure logic: when a subject access request is due, and
how a chat asks an enquirer to confirm erasing what they told us.

The ICO's rule (UK GDPR Art. 12(3)): a request is answered within one calendar month of
receipt, counted from the day it arrives to the corresponding day of the next month; if
that month has no such day, the last day of that month. A complex request may be
extended by two further months. (If the day falls on a weekend or bank holiday the ICO
allows until the next working day: :func:`answer_by` applies that when given a calendar.)
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from enum import StrEnum

from flows.copy import Copy
from flows.messages import Option, Reply

ONE_MONTH = 1
EXTENSION_MONTHS = 2


class RequestKind(StrEnum):
    """What a person asked the helpline for."""

    ACCESS = "access"
    ERASURE = "erasure"


class Identity(StrEnum):
    """How a person is named in a request (the ``helpline privacy`` options)."""

    TELEGRAM_USER = "telegram-user"
    WEB_SESSION = "web-session"
    EMAIL = "email"
    PHONE = "phone"
    REFERENCE = "reference"


def add_months(day: date, months: int) -> date:
    """The corresponding day ``months`` later, or the last day of that month if it has none."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(received: date, *, extended: bool = False) -> date:
    """The day a request received on ``received`` must be answered by (ICO rule)."""
    return add_months(received, ONE_MONTH + (EXTENSION_MONTHS if extended else 0))


def answer_by(
    received: date, *, extended: bool = False, working_day: Callable[[date], bool] | None = None
) -> date:
    """:func:`due_date`, moved on to the next working day when ``working_day`` says so."""
    due = due_date(received, extended=extended)
    while working_day is not None and not working_day(due):
        due += timedelta(days=1)
    return due


def is_overdue(due: date, today: date) -> bool:
    """Past its due day: a request due today is answered in time if answered today."""
    return today > due


ERASE = "erase"
"""The question of an enquirer's delete confirmation (answered by the channel, not the flow)."""
ERASE_YES, ERASE_NO = "yes", "no"


def erase_confirmation(copy: Copy, question: str = ERASE) -> Reply:
    """What a chat asks before erasing what the enquirer told us (Telegram's /delete, the
    web chat's "Delete what I told you"): nothing is erased without their Yes."""
    options = (
        Option(ERASE_YES, copy("data_protection.delete_yes")),
        Option(ERASE_NO, copy("data_protection.delete_no")),
    )
    return Reply(copy("data_protection.delete_confirm"), options, question=question)


def erased_text(copy: Copy, references: Sequence[str], key: str = "data_protection.deleted") -> str:
    """What the enquirer is told once their chat is erased, naming the enquiries erased
    with it (``key``: the channel's wording, whose ``{cases}`` takes them)."""
    cases = (
        copy("data_protection.deleted_cases", references=", ".join(references))
        if references
        else ""
    )
    return copy(key, cases=cases)


class AuditAction(StrEnum):
    """What the audit trail records: practitioner actions and disclosures of personal data."""

    CARD_DETAILS_OPENED = "card_details_opened"
    CONTACT_SHOWN = "contact_shown"
    CASE_SHOWN = "case_shown"
    CASE_EXPORTED = "case_exported"
    CASE_LISTED = "case_listed"
    """Its title was shown in ``helpline cases list`` (``--json``: exported)."""
    LINKS_SHOWN = "links_shown"
    """The accounts it shares with other cases were shown (``helpline cases linked``)."""
    CLAIM = "claim"
    RELEASE = "release"
    REPLY_SENT = "reply_sent"
    RESOLVE = "resolve"
    ERASE_PREVIEWED = "erase_previewed"
    ERASED = "erased"
    ERASED_BY_ENQUIRER = "erased_by_enquirer"
    ERASED_BY_RETENTION = "erased_by_retention"
    SAR_EXPORT = "sar_export"
    HOLD_PLACED = "hold_placed"
    HOLD_LIFTED = "hold_lifted"
    REQUEST_CLOSED = "request_closed"
    REQUEST_EXTENDED = "request_extended"
    REFUSED = "refused"
    """Someone who is not a practitioner pressed a card's button."""
    COPY_SHOWN = "copy_shown"
    """The enquirer was shown a copy of their enquiry in their chat."""
    COPY_EMAILED = "copy_emailed"
    """A copy of an enquiry was emailed to the address its enquirer gave."""


class AuditChannel(StrEnum):
    """Through what an action was taken."""

    SLACK = "slack"
    CLI = "cli"
    TELEGRAM = "telegram"
    WEB = "web"
    EMAIL = "email"
    TERMINAL = "terminal"
    """``helpline chat``: an enquirer's conversation in a terminal."""
    SYSTEM = "system"


def audit_channel(channel: str) -> AuditChannel:
    """The audit channel of an enquirer's chat channel (one the audit does not name, as a
    test's own, counts as the system's rather than failing the turn)."""
    try:
        return AuditChannel(channel)
    except ValueError:
        return AuditChannel.SYSTEM
