"""Reading one email as it came off the wire, whatever shape it is in, without raising.

Real mail is messy: missing or doubled headers, undeclared or unknown charsets, RFC 2047
subjects, quoted-printable and base64 bodies, HTML only, attachments, whole replies with
every earlier message quoted under them. :func:`parse_email` takes the bytes and returns
a :class:`ParsedEmail`: the headers the channel decides on, and the text the enquirer
wrote this time (the quoted history and signature split off by ``mail-parser-reply``).

Attachments and images are never decoded or kept: only how many there were. HTML is
turned into text by the standard library's parser; nothing it refers to is ever fetched.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser

from bot.text import normalise as clean

READ_CHARS = 60_000
"""Characters of a body that are read: far past any description (10,000 are kept)."""

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,240}>")
_C1 = re.compile(r"[\x80-\x9f]")
_FORWARDED = re.compile(
    r"^\s*(-{2,}\s*forwarded message\s*-{2,}|begin forwarded message:)", re.I | re.M
)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|fw)\s*:", re.I)
_BOILERPLATE = re.compile(
    r"confidential|intended (solely )?for|disclaimer|virus|privileged|think before you print",
    re.I,
)
_REPLIES = EmailReplyParser(languages=["en"])
_TEXT_TYPES = ("text/plain", "text/html")
_SKIPPED_HTML = frozenset({"script", "style", "head", "title"})
_BLOCK_HTML = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"}
)


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """What one email is, for classifying, threading and reading it."""

    message_id: str | None
    subject: str
    sender: str
    """The From address, lower-cased ("" when there is none that parses)."""
    sender_name: str | None
    return_path: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: dict[str, str]
    """Lower-cased header name to its (first) value, for the loop and junk checks."""
    content_type: str
    text: str
    """This message's own words: quoted history, signature and disclaimers taken off."""
    signature: str
    attachments: int
    """Attachments and images refused (never decoded)."""
    returned_ids: tuple[str, ...] = ()
    """For a delivery report: the Message-IDs of the mail it returns."""

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every Message-ID this email answers (In-Reply-To first)."""
        return tuple(dict.fromkeys((*self.in_reply_to, *reversed(self.references))))


def _cp1252(text: str) -> str:
    """C1 controls read as Windows-1252, as browsers do: mail labelled ISO-8859-1 is very
    often Windows-1252 (curly quotes, dashes), and C1 controls never mean anything in mail."""
    return _C1.sub(lambda m: m.group(0).encode("latin-1").decode("cp1252", "replace"), text)


def _header(message: Message, name: str) -> str:
    """A header's value as text, or "" (a malformed header is read as best it can be)."""
    try:
        value = message.get(name)
    except Exception:  # the policy's header parser can fail on real junk
        value = None
        with contextlib.suppress(Exception):
            raw = dict(message.raw_items()).get(name) or dict(
                (k.lower(), v) for k, v in message.raw_items()
            ).get(name.lower())
            value = str(make_header(decode_header(str(raw)))) if raw else None
    if value is None:
        return ""
    try:
        return " ".join(_cp1252(str(value)).split())
    except Exception:
        return ""


def _ids(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_MESSAGE_ID.findall(value or "")))


def _address(message: Message) -> tuple[str, str | None]:
    raw = _header(message, "from")
    try:
        name, address = getaddresses([raw])[0] if raw else ("", "")
    except Exception:
        name, address = parseaddr(raw)
    if "@" not in address:
        address = ""
    return address.strip().lower(), (clean(name).strip() or None)


def _decoded(part: Message) -> str:
    """A text part's content in any charset real mail uses (unknown ones read leniently)."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return _cp1252(content)
    except Exception:  # unknown charset, broken transfer encoding
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return _cp1252(payload.decode(charset, errors="replace"))
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment" or part.get_filename():
        return True
    return part.get_content_maintype() in ("image", "audio", "video", "application", "font")


class _TextOfHtml(HTMLParser):
    """HTML to plain text: block elements become line breaks, a link keeps its address."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skipping = 0
        self._href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_HTML:
            self._skipping += 1
        if tag in _BLOCK_HTML:
            self.out.append("\n")
        if tag == "a":
            self._href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_HTML and self._skipping:
            self._skipping -= 1
        if tag in _BLOCK_HTML:
            self.out.append("\n")
        if tag == "a" and self._href:
            href = self._href.pop()
            if href and href.startswith(("http://", "https://")) and href not in self.out[-1:]:
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body (no remote content is loaded: none is fetched)."""
    parser = _TextOfHtml()
    with contextlib.suppress(Exception):
        parser.feed(html)
        parser.close()
    text = "".join(parser.out)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _walk(message: Message) -> tuple[str, int, tuple[str, ...]]:
    """(the body's text, attachments refused, Message-IDs of a returned message)."""
    plain: str | None = None
    html: str | None = None
    attachments = 0
    returned: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if part.is_multipart():
            continue
        if kind in ("message/delivery-status", "text/rfc822-headers", "message/rfc822-headers"):
            returned += _ids(_decoded(part) if kind != "message/delivery-status" else str(part))
            continue
        if kind in _TEXT_TYPES and not _is_attachment(part):
            if kind == "text/plain" and plain is None:
                plain = _decoded(part)[:READ_CHARS]
            elif kind == "text/html" and html is None:
                html = _decoded(part)[: READ_CHARS * 4]
            continue
        attachments += 1
    # A returned whole message (message/rfc822) is a multipart child: its headers count.
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            with contextlib.suppress(Exception):
                inner = part.get_payload()
                first = inner[0] if isinstance(inner, list) and inner else None
                if isinstance(first, Message):
                    returned += _ids(_header(first, "message-id"))
    text = plain if plain is not None and plain.strip() else html_to_text(html or "")
    return text, attachments, tuple(dict.fromkeys(returned))


def own_words(text: str, *, forwarded: bool = False) -> tuple[str, str]:
    """(what this message says, its signature): quoted replies and disclaimers taken off.

    A forwarded email keeps what it forwards: that is the enquiry."""
    text = clean(text.replace("\r\n", "\n"))[:READ_CHARS]
    if forwarded:
        return text.strip(), ""
    try:
        replies = _REPLIES.read(text).replies
    except Exception:  # the parser's regexes on truly odd input
        return text.strip(), ""
    if not replies:
        return text.strip(), ""
    first = replies[0]
    body = first.body.strip() or first.full_body.strip()
    signature = "\n\n".join(
        p for p in (first.signatures or "").split("\n\n") if not _BOILERPLATE.search(p)
    )
    return body, signature.strip()


def parse_email(raw: bytes) -> ParsedEmail:
    """Read ``raw`` (one message as fetched); never raises on malformed mail."""
    message: Message
    try:
        message = message_from_bytes(raw, policy=policy.default)
    except Exception:  # the standard parser fails on some junk headers (`Content-Type: x;0*`)
        # compat32 keeps headers as text it does not parse: the rest is read as before.
        message = message_from_bytes(raw, policy=policy.compat32)
    headers: dict[str, str] = {}
    for header_name in message:
        lowered = header_name.lower()
        if lowered not in headers:
            headers[lowered] = _header(message, header_name)
    sender, name = _address(message)
    try:
        body, attachments, returned = _walk(message)
    except Exception:  # a structure the walker cannot follow: nothing readable
        body, attachments, returned = "", 0, ()
    subject = clean(_header(message, "subject"))[:500]
    forwarded = bool(_FORWARD_SUBJECT.match(subject) or _FORWARDED.search(body[:READ_CHARS]))
    text, signature = own_words(body, forwarded=forwarded)
    message_ids = _ids(_header(message, "message-id"))
    return_path = _header(message, "return-path")
    return ParsedEmail(
        message_id=message_ids[0] if message_ids else None,
        subject=subject,
        sender=sender,
        sender_name=name[:200] if name else None,
        return_path=return_path or None,
        in_reply_to=_ids(_header(message, "in-reply-to")),
        references=_ids(_header(message, "references"))[-30:],
        headers=headers,
        content_type=message.get_content_type(),
        text=text,
        signature=signature,
        attachments=attachments,
        returned_ids=returned,
    )
