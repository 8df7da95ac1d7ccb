"""Sending the helpline's email from the outbox, by SMTP (aiosmtplib).

One sender for every email on the ``email`` channel: acknowledgements and copies of an
enquiry (the row carries the whole message, :func:`storage.mail.queue_email`: recipient,
subject, text, our Message-ID) and desk messages, a
practitioner's reply or a notice (the row carries the text; the recipient, subject and
threading come from the case). The Message-ID is fixed per row before the first attempt
and stored, so a resend after a timeout is the same email (mail clients show it once)
and the enquirer's answer to it threads onto the case.

A refusal that will never change (5xx: no such mailbox) gives up and the desk is told;
anything else (4xx, the server down, a timeout) is retried by the outbox with backoff.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.email.composing import compose, domain_of, message_id
from bot.email.oauth import OAuthError
from bot.email.servers import SmtpServer
from bot.services.outbox import GiveUp, Result, Retry, Sent
from flows.intake import IntakeFlow
from flows.mail import reply_subject
from flows.privacy import AuditAction, AuditChannel
from storage import audit
from storage import mail as mail_store
from storage.models import Case, OutboxMessage

log = logging.getLogger(__name__)


async def _audit_copy(
    case_id: int, asked_on: AuditChannel, at: datetime, session: AsyncSession
) -> None:
    """A copy of a case reached the enquirer's mail server: a disclosure of personal data,
    audited in the transaction that marks its email sent (the audit names the case, not
    its text). A case erased since keeps its reference; one deleted outright has none left."""
    case = await session.get(Case, case_id)
    if case is None:
        return
    audit.record(
        session,
        at=at,
        actor="enquirer",
        action=AuditAction.COPY_EMAILED,
        channel=asked_on,
        case_reference=case.reference,
    )


class EmailSender:
    """Sends an outbox row's email (see the module docstring)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        server: SmtpServer,
        address: str,
        flow: IntakeFlow,
        clock: Clock,
        notices: bool = False,
        timeout: float = 30.0,
        name: str = "",
    ) -> None:
        """``address``: the helpline's own (From). ``notices``: send claimed and resolved
        notices by email too (a practitioner's reply is always sent)."""
        self._sessions = sessions
        self._server = server
        self._address = address
        self._domain = domain_of(address)
        self._flow = flow
        self._clock = clock
        self._notices = notices
        self._timeout = timeout
        self._name = name or flow.copy("email.from_name")

    async def __call__(self, row: OutboxMessage) -> Result:
        """Send the row's email; what happened, for the worker."""
        payload = row.payload or {}
        if "to" in payload:
            prepared: dict[str, Any] | None = dict(payload)
        elif not payload.get("log") and not self._notices:
            return Sent()  # the helpline does not send desk notices by email (a setting)
        else:
            prepared = await self._for_case(row)
        if prepared is None:
            return GiveUp("no email address on the case")
        message = compose(
            sender=self._address,
            sender_name=self._name,
            to=str(prepared["to"]),
            subject=str(prepared["subject"]),
            text=str(prepared["text"]),
            msg_id=str(prepared["message_id"]),
            at=self._clock(),
            in_reply_to=str(prepared.get("in_reply_to") or "") or None,
            references=[str(r) for r in prepared.get("references") or ()],
            automatic=bool(prepared.get("automatic")),
        )
        result = await self._send(message)
        asked_on = payload.get(mail_store.COPY_ASKED_ON)
        if isinstance(result, Sent) and asked_on and row.case_id is not None:
            audit_it = partial(_audit_copy, row.case_id, AuditChannel(asked_on), self._clock())
            return Sent(then=audit_it, even_if_gone=True)  # it went, even if erased since
        return result

    async def _for_case(self, row: OutboxMessage) -> dict[str, Any] | None:
        """A desk message's email: to the case's address, threaded onto its mail."""
        payload = row.payload or {}
        async with self._sessions() as session, session.begin():
            case = await session.get(Case, row.case_id) if row.case_id is not None else None
            if case is None or not case.contact_email:
                return None
            ours = message_id(f"{case.reference}-{row.id}", self._domain)
            last = await mail_store.last_inbound(session, case.id)
            thread = await mail_store.thread_of(session, case.id)
            await mail_store.record_outbound(
                session, message_id=ours, case_id=case.id, outcome="reply", at=self._clock()
            )
            return {
                "to": case.contact_email,
                "subject": reply_subject(self._flow, case.reference, case.subject),
                "text": str(payload.get("text", "")),
                "message_id": ours,
                "in_reply_to": last or "",
                "references": list(thread),
                "automatic": False,
            }

    async def _send(self, message: Any) -> Result:
        server = self._server
        signing_in: dict[str, Any] = {"username": server.user, "password": server.password}
        if server.tokens is not None:
            signing_in = {"username": server.user, "oauth_token_generator": server.tokens.current}
        try:
            await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                use_tls=server.security == "tls",
                start_tls=server.security == "starttls",
                timeout=self._timeout,
                **signing_in,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [e.code for e in error.recipients]
            if codes and all(500 <= c < 600 for c in codes):
                return GiveUp(f"the mail server refused the address ({codes[0]})")
            return Retry(f"recipient deferred ({codes[0] if codes else '?'})")
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600 and error.code not in (530, 535):
                return GiveUp(f"the mail server refused the email ({error.code})")
            if error.code in (530, 535) and server.tokens is not None:
                server.tokens.forget()  # refused (revoked, say): the next try fetches another
            return Retry(f"mail server said {error.code}")
        except OAuthError as error:
            return Retry(f"no token to sign in to the mail server ({error})")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return Retry("mail server timed out", maybe_sent=True)
        except (aiosmtplib.SMTPException, OSError) as error:
            return Retry(f"mail server unreachable ({type(error).__name__})")
        log.info("email sent")
        return Sent()
