"""Checks for typed answers: email addresses, phone numbers and links.

Each function returns the cleaned value or None; the flow turns None into a kind re-ask.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_EMAIL = 254
MAX_URL = 2000

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().-]+$")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|co\.uk|uk|org|net|tv|gg|app|me|io|ly|be)/[^\s<>\"']*",
    re.I,
)
_TRAILING = ".,;:!?)]}'\""


def clean_email(text: str) -> str | None:
    """A plausible email address (we only need to be able to write back), or None."""
    value = text.strip().strip("<>").strip()
    if len(value) > MAX_EMAIL or not _EMAIL.match(value):
        return None
    local, domain = value.rsplit("@", 1)
    if len(local) > 64 or ".." in value or domain.startswith("-"):
        return None
    return value


def mask_email(address: str) -> str:
    """The address as the chat shows it when saying a copy went there (``j…@school.org.uk``):
    enough to recognise it, not enough for someone looking over a shoulder to read it."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local[:1]}…@{domain}" if local else address


def clean_phone(text: str) -> str | None:
    """A UK or international number with 7 to 15 digits, spacing kept as typed."""
    value = " ".join(text.split())
    if not value or len(value) > 30 or not _PHONE_CHARS.match(value):
        return None
    digits = re.sub(r"\D", "", value)
    return value if 7 <= len(digits) <= 15 else None


def find_links(text: str) -> list[str]:
    """Web addresses in ``text``, each once, with a scheme added where it was left off."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if not url.lower().startswith(("http://", "https://")):
            url = "https://" + url
        parts = urlsplit(url)
        host = parts.hostname or ""
        if len(url) <= MAX_URL and "." in host and url not in found:
            found.append(url)
    return found
