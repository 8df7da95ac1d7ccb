"""A fake OAuth2 provider on loopback: a token endpoint for the service, and the token
introspection endpoint Dovecot's ``oauth2`` passdb asks whether a token is good.

Its own thread (a stdlib ``ThreadingHTTPServer``), so it answers whatever the event loop
of the test is doing: the mailbox poller's blocking sign-in, or Dovecot's check of the
token that sign-in carries, can both be waiting on it at once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

CLIENT_ID = "helpline-intake"
CLIENT_SECRET = "client-secret-value"
REFRESH_TOKEN = "refresh-token-1"


@dataclass
class Grant:
    """One token request: its grant type, and whether it was honoured."""

    grant_type: str
    issued: str | None
    scope: str = ""


@dataclass
class FakeOAuth:
    """Issues ``token-N`` for the right client; ``lifetime``: each token's ``expires_in``."""

    user: str
    lifetime: int = 3600
    rotate: bool = False
    """Answer a refresh with a new refresh token (as Microsoft does)."""
    grants: list[Grant] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=lambda: {REFRESH_TOKEN})
    introspected: list[str] = field(default_factory=list)
    refuse_next: int = 0
    """Answer the next few token requests ``503`` (the provider having a bad minute)."""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def revoke(self, token: str) -> None:
        with self._lock:
            self.valid.discard(token)

    def accepts(self, token: str) -> bool:
        with self._lock:
            return token in self.valid

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = fake._answer(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows failures, not every request

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if path == "/introspect":
                token = form.get("token", "")
                self.introspected.append(token)
                if token in self.valid:
                    return 200, {"active": True, "username": self.user}
                return 200, {"active": False}
            return self._token(form)

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.grants.append(Grant(grant, None))
            return 503, {"error": "temporarily_unavailable"}
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            self.grants.append(Grant(grant, None))
            return 401, {"error": "invalid_client", "error_description": "bad secret"}
        answer: dict[str, Any] = {}
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                self.grants.append(Grant(grant, None))
                return 400, {"error": "invalid_grant"}
            if self.rotate:
                rotated = f"refresh-token-{len(self.refresh_tokens) + 1}"
                self.refresh_tokens = {rotated}
                answer["refresh_token"] = rotated
        elif grant != "client_credentials":
            self.grants.append(Grant(grant, None))
            return 400, {"error": "unsupported_grant_type"}
        token = f"token-{len(self.grants) + 1}"
        self.valid.add(token)
        self.grants.append(Grant(grant, token, form.get("scope", "")))
        answer |= {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        return 200, answer
