"""Real mail servers for the tests: Dovecot (Debian's dovecot-imapd) and aiosmtpd.

:class:`Dovecot` writes a throwaway configuration (a passwd-file user, Maildir storage in
a temporary folder, plain IMAP on a free loopback port), runs ``dovecot -F`` and can be
stopped and started again on the same port and mail (a restart mid-poll). Mail is put in
the mailbox with IMAP APPEND, as a mail server's delivery would leave it.

:class:`SmtpRecorder` is an aiosmtpd server that keeps every message it accepts and can
be told to refuse the next few (``451``, try again later) or a recipient (``550``), or to
keep the next few and answer too late (the sender times out not knowing they arrived).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from base64 import b64decode
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from imapclient import IMAPClient

from tests.fakes.oauth import FakeOAuth

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
USER = "helpline@helpline.test"
PASSWORD = "mailbox-secret"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = root
default_internal_group = root
default_login_user = nobody
mail_location = maildir:{root}/mail/%u
mail_uid = nobody
mail_gid = nogroup
{oauth_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
service imap-hibernate {{
  chroot =
}}
service auth {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""


_OAUTH_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf
}}
"""

_OAUTH_CONFIG = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    """A private Dovecot IMAP server (see the module docstring)."""

    def __init__(self, oauth: FakeOAuth | None = None) -> None:
        """``oauth``: sign-in with its tokens (``XOAUTH2``) too, checked with it."""
        if DOVECOT is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        # Under /tmp (world-traversable): Dovecot's unprivileged processes must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="helpline-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir()
        shutil.chown(self.root / "mail", "nobody", "nogroup")
        shutil.chown(self.root / "home", "nobody", "nogroup")
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        self.config = self.root / "dovecot.conf"
        mechanisms, passdb = "plain login", ""
        if oauth is not None:
            mechanisms, passdb = "plain login xoauth2 oauthbearer", _OAUTH_PASSDB
            oauth_config = _OAUTH_CONFIG.format(url=oauth.introspection_url)
            (self.root / "oauth2.conf").write_text(oauth_config)
        self.config.write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                mechanisms=mechanisms,
                oauth_passdb=passdb.format(root=self.root),
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"imap://{USER.replace('@', '%40')}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    @property
    def oauth_url(self) -> str:
        """The mailbox for a service signing in with a token: a user, no password."""
        return f"imap://{USER.replace('@', '%40')}@127.0.0.1:{self.port}/INBOX"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends every process of it
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with self.client():
                    return
            except Exception:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"dovecot did not start: {self.log()[-2000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # The whole group, as a server crash would: open IMAP sessions end with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Put messages in the mailbox, in this order (as a delivery would)."""
        with self.client() as client:
            for raw in messages:
                client.append(folder, raw)

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            return {int(u): tuple(f) for u, f in client.get_flags(uids).items()} if uids else {}

    def count(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])


@dataclass
class _Handler:
    messages: list[EmailMessage] = field(default_factory=list)
    refuse_next: int = 0
    refuse_recipients: set[str] = field(default_factory=set)
    stall_next: int = 0
    """Keep the next few messages but answer only after ``stall_seconds``: a sender that
    gives up waiting first does not know they arrived."""
    stall_seconds: float = 3.0
    oauth: FakeOAuth | None = None
    """Sign-in with ``XOAUTH2`` and a token this provider issued is required."""
    signed_in: list[str] = field(default_factory=list)

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        """RFC-less but universal: base64 of ``user=U^Aauth=Bearer T^A^A``."""
        try:
            fields = dict(
                part.split("=", 1) for part in b64decode(args[1]).decode().split("\x01") if part
            )
        except (IndexError, ValueError):
            return AuthResult(success=False, handled=False)
        token = fields.get("auth", "").removeprefix("Bearer ")
        if self.oauth is None or not self.oauth.accepts(token):
            return AuthResult(success=False, handled=False)
        self.signed_in.append(fields.get("user", ""))
        return AuthResult(success=True, auth_data=fields.get("user"))

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.refuse_recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.stall_next > 0:
            self.stall_next -= 1
            await asyncio.sleep(self.stall_seconds)
        return "250 Message accepted for delivery"


class SmtpRecorder:
    """An aiosmtpd server on loopback keeping what it accepts (see the module docstring)."""

    def __init__(self, oauth: FakeOAuth | None = None) -> None:
        """``oauth``: refuse mail until the sender signs in with one of its tokens."""
        self.handler = _Handler(oauth=oauth)
        self.port = free_port()
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            auth_require_tls=False,  # loopback: the sign-in is what is tested, not TLS
            auth_required=oauth is not None,
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        """Wait until ``count`` messages arrived (a safety net for a hang, not an assertion)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} emails, got {len(self.messages)}")
            await asyncio.sleep(0.02)
        return list(self.messages)


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a message we sent."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def running_as_root() -> bool:
    return os.geteuid() == 0
