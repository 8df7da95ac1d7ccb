"""Polling the helpline's mailbox over IMAP: every message handled once, in order.

Each poll connects (imapclient, in a worker thread: its calls block), selects the folder
and lists the messages not yet marked handled, oldest UID first, so a backlog after an
outage is worked through in the order it arrived. A message is fetched with ``BODY.PEEK``
(people reading the mailbox still see it unread), handed to :class:`EmailIntake`, which
commits, and only then marked: with the keyword ``$HelplineHandled`` or, when
``HELPLINE_IMAP_DONE_FOLDER`` is set, moved there. A crash between the commit and the mark
leaves the message unmarked; the next poll finds it recorded (by folder, UIDVALIDITY and
UID, or its Message-ID) and only marks it. Nothing is lost and nothing is doubled.

A message over the size limit is not fetched at all: only its headers, for a polite
refusal. An IMAP error ends the poll; the next one starts again from what is unmarked.
Between polls the folder is watched with IMAP IDLE when the server offers it (Dovecot,
Gmail and Exchange do), so new mail is handled within a second or so; the poll interval
is then the longest an IDLE lasts before the folder is read again anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from bot.email.intake import EmailIntake
from bot.email.servers import ImapServer

log = logging.getLogger(__name__)

HANDLED = "$HelplineHandled"
"""The IMAP keyword that marks a message as handled (when none is moved)."""
CHUNK = 25
"""Messages fetched per round trip."""


class MailboxConnection:
    """A blocking IMAP session on one folder (run its methods in a thread)."""

    def __init__(self, server: ImapServer, *, done_folder: str = "", timeout: float = 60.0):
        self._server = server
        self._done = done_folder
        self._timeout = timeout
        self._client: IMAPClient | None = None
        self.uidvalidity = 0

    def open(self) -> None:
        """Connect, log in and select the folder (its UIDVALIDITY is kept)."""
        server = self._server
        context = ssl.create_default_context() if server.tls else None
        client = IMAPClient(
            server.host,
            port=server.port,
            ssl=server.tls,
            ssl_context=context,
            timeout=self._timeout,
        )
        if server.tokens is not None:
            try:
                client.oauth2_login(server.user, server.tokens.token())
            except LoginError:
                server.tokens.forget()
                raise
        else:
            client.login(server.user, server.password)
        selected = client.select_folder(server.folder)
        self.uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        if self._done and not client.folder_exists(self._done):
            client.create_folder(self._done)
        self._client = client

    @property
    def client(self) -> IMAPClient:
        """The logged-in client (only between :meth:`open` and :meth:`close`)."""
        if self._client is None:
            raise RuntimeError("the mailbox is not open")
        return self._client

    def pending(self) -> list[int]:
        """UIDs not yet marked handled, oldest first."""
        criteria: list[Any] = ["ALL"] if self._done else ["NOT", "KEYWORD", HANDLED]
        return sorted(int(uid) for uid in self.client.search(criteria))

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """Each message's size, so an oversized one is never downloaded."""
        found = self.client.fetch(list(uids), ["RFC822.SIZE"])
        return {int(uid): int(data.get(b"RFC822.SIZE", 0)) for uid, data in found.items()}

    def bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The whole messages, without setting \\Seen."""
        if not uids:
            return {}
        found = self.client.fetch(list(uids), ["BODY.PEEK[]"])
        return {int(uid): bytes(data.get(b"BODY[]", b"")) for uid, data in found.items()}

    def headers(self, uids: Sequence[int]) -> dict[int, bytes]:
        """Only the headers (of oversized messages), without setting \\Seen."""
        if not uids:
            return {}
        found = self.client.fetch(list(uids), ["BODY.PEEK[HEADER]"])
        return {int(uid): bytes(data.get(b"BODY[HEADER]", b"")) for uid, data in found.items()}

    def mark(self, uids: Sequence[int]) -> None:
        """Handled: flagged with the keyword, or moved to the done folder."""
        if not uids:
            return
        if self._done:
            self.client.move(list(uids), self._done)
        else:
            self.client.add_flags(list(uids), [HANDLED], silent=True)

    def wait_for_mail(self, seconds: float, stop: threading.Event) -> bool:
        """IMAP IDLE until new mail arrives, ``seconds`` pass or ``stop`` is set.

        False at once when the server does not offer IDLE (then the poller just waits)."""
        client = self.client
        if not client.has_capability("IDLE"):
            return False
        if self.pending():
            return True  # arrived since the poll looked: no need to wait
        client.idle()
        try:
            deadline = time.monotonic() + seconds
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                responses = client.idle_check(timeout=min(1.0, left))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    break
        finally:
            client.idle_done()
        return True

    def close(self) -> None:
        """Log out, or just drop a connection that is already broken."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except Exception:  # a broken connection: just drop it
                with contextlib.suppress(Exception):
                    client.shutdown()


class MailPoller:
    """Reads the mailbox every ``every`` seconds and hands each message to the intake."""

    def __init__(
        self,
        *,
        server: ImapServer,
        intake: EmailIntake,
        every: float = 30.0,
        done_folder: str = "",
        timeout: float = 60.0,
    ) -> None:
        self._server = server
        self._intake = intake
        self._every = every
        self._done = done_folder
        self._timeout = timeout
        self.polls = 0
        """Polls completed (a test waits on this; nothing else reads it)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; an error ends one poll, never the loop. Between
        polls the mailbox is watched with IMAP IDLE where the server offers it, so new
        mail is read at once rather than at the next poll."""
        idle_stop = threading.Event()
        mirror = asyncio.create_task(self._mirror(stop, idle_stop))
        try:
            while not stop.is_set():
                failed = False
                try:
                    await self.poll_once()
                except Exception as error:  # the server down or a broken connection
                    failed = True
                    log.warning("mailbox poll failed (%s); trying again", type(error).__name__)
                self.polls += 1
                if not failed and await self._idle(idle_stop):
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._every)
        finally:
            idle_stop.set()
            mirror.cancel()

    @staticmethod
    async def _mirror(stop: asyncio.Event, idle_stop: threading.Event) -> None:
        await stop.wait()
        idle_stop.set()

    async def _idle(self, stop: threading.Event) -> bool:
        """Wait for mail with IDLE (at most one poll interval); False if that was not possible."""
        mailbox = MailboxConnection(self._server, done_folder=self._done, timeout=self._timeout)
        try:
            await asyncio.to_thread(mailbox.open)
            return await asyncio.to_thread(mailbox.wait_for_mail, self._every, stop)
        except Exception as error:  # the server went away: the next poll will say
            log.warning("mailbox idle failed (%s)", type(error).__name__)
            return False
        finally:
            await asyncio.to_thread(mailbox.close)

    async def poll_once(self) -> int:
        """One pass over what is waiting; how many messages were handled."""
        mailbox = MailboxConnection(self._server, done_folder=self._done, timeout=self._timeout)
        await asyncio.to_thread(mailbox.open)
        try:
            uids = await asyncio.to_thread(mailbox.pending)
            handled = 0
            for start in range(0, len(uids), CHUNK):
                handled += await self._chunk(mailbox, uids[start : start + CHUNK])
            if handled:
                log.info("mailbox: %d email(s) handled", handled)
            return handled
        finally:
            await asyncio.to_thread(mailbox.close)

    async def _chunk(self, mailbox: MailboxConnection, uids: Sequence[int]) -> int:
        limit = self._intake.max_bytes
        sizes = await asyncio.to_thread(mailbox.sizes, uids)
        small = [u for u in uids if sizes.get(u, 0) <= limit]
        large = [u for u in uids if sizes.get(u, 0) > limit]
        bodies = await asyncio.to_thread(mailbox.bodies, small)
        heads = await asyncio.to_thread(mailbox.headers, large)
        done: list[int] = []
        for uid in uids:
            oversized = uid in heads
            raw = heads.get(uid) if oversized else bodies.get(uid)
            if raw is None:
                continue  # expunged meanwhile
            key = f"{self._server.folder}:{mailbox.uidvalidity}:{uid}"
            await self._intake.handle(raw, mailbox_key=key, oversized=oversized)
            done.append(uid)
        # Marked only now that every one of them is committed (see the module docstring).
        await asyncio.to_thread(mailbox.mark, done)
        return len(done)
