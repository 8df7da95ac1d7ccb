"""Making sure an urgent case is seen, on whichever channel it came.

A case urgent when it arrives has its card marked (and pings the channel in hours); out
of hours the on-call is paged as well, since nobody watches the channel then. Risk can
also come later, in a follow-up ("she's now saying she'll hurt herself"): the case
becomes urgent then, its card is redrawn, and the desk is alerted in hours as out of them.
Everything goes through the outbox, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flows.conversation import CaseStatus
from flows.copy import Copy
from flows.understanding import Risk
from storage import outbox
from storage.models import Case


def page_oncall(session: AsyncSession, case: Case, now: datetime) -> None:
    """Page the on-call about an urgent case that arrived out of hours."""
    alert = outbox.desk_note(
        "timers.oncall_alert", reference=case.reference, subject=case.subject or ""
    )
    alert["target"] = "oncall"
    outbox.enqueue(session, outbox.SLACK_POST, now=now, case_id=case.id, payload=alert)


def raise_urgency(
    session: AsyncSession,
    case: Case,
    risks: Sequence[Risk],
    now: datetime,
    *,
    open_now: bool,
    copy: Copy,
) -> None:
    """A follow-up on ``case`` raised ``risks``: mark it urgent and alert the desk.

    The alert goes to the channel in hours and to the on-call out of hours. In hours, a
    case urgent already and still open is being watched: its thread shows the message,
    without a second alert. Out of hours nobody watches threads, and a resolved case is
    watched by nobody: those are alerted again.
    """
    if not risks:
        return
    watched = open_now and case.urgent and case.status is not CaseStatus.RESOLVED
    if not case.urgent:
        case.urgent = True
        outbox.enqueue(session, outbox.SLACK_CARD, now=now, case_id=case.id)
    if watched:
        return
    alert = _risk_alert("desk.risk_raised", risks, open_now, copy, reference=case.reference)
    outbox.enqueue(session, outbox.SLACK_POST, now=now, case_id=case.id, payload=alert)


def alert_without_case(
    session: AsyncSession, risks: Sequence[Risk], now: datetime, *, open_now: bool, copy: Copy
) -> None:
    """Risk in a follow-up whose case is gone (erased): no card to mark, but the desk is
    still told that someone wrote it (the enquirer was shown 999 and the crisis lines)."""
    alert = _risk_alert("desk.risk_no_case", risks, open_now, copy)
    outbox.enqueue(session, outbox.SLACK_POST, now=now, payload=alert)


def _risk_alert(
    key: str, risks: Sequence[Risk], open_now: bool, copy: Copy, **values: str
) -> dict[str, Any]:
    """The desk note ``key`` naming ``risks``: for the channel in hours, else the on-call."""
    worded = ", ".join(copy(f"desk.risk_{risk.value}") for risk in risks)
    alert = outbox.desk_note(key, risks=worded)
    alert["values"].update(values)
    if not open_now:
        alert["target"] = "oncall"
    return alert
