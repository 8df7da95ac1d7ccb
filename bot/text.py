"""Text at the edges: what comes in is normalised, what goes out is escaped for its medium.

One function per direction and medium, used everywhere:

- :func:`normalise` for anything a person typed, as it enters (a channel, a form, a file):
  NUL and other control characters out, line breaks made plain, broken surrogates
  dropped (PostgreSQL refuses NUL in text, and a refused update would be resent forever).
- :func:`for_slack` for text shown in Slack mrkdwn (messages, sections, context, the
  notification text): ``&``, ``<`` and ``>`` become entities, so nobody's words can ping
  a channel, mention someone or dress a link up as something else. Slack's plain_text
  fields (headers, modal titles) show text literally: give them :func:`normalise`d text,
  never :func:`for_slack`.
- :func:`slack_actor` for a practitioner's name in Slack: a Slack user mention we made
  ourselves stays a mention, anything else is escaped.
- :func:`for_terminal` for text printed to a practitioner's terminal: control characters
  (escape sequences, bells, carriage returns, bidirectional overrides) are shown as
  visible ``\\x1b``-style escapes instead of being obeyed.

CSV cells have their own pair in ``storage.transfer`` (export escapes, import undoes it).
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and UTF-16 surrogates (which only a
# broken JSON escape can produce and no database can store).
_INBOUND_DROP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SLACK_USER = re.compile(r"<@[UW][A-Z0-9]{1,20}>")
# What a terminal would obey: C0 but tab and newline, DEL, C1, and the bidirectional
# embeddings, overrides and isolates that can make text read differently than it is.
_TERMINAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def normalise(text: str) -> str:
    """Text as a person meant it, safe to store and to compare: see the module docstring."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _INBOUND_DROP.sub("", text)


def for_slack(text: str) -> str:
    """Slack mrkdwn: the three characters Slack asks apps to escape."""
    return normalise(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_actor(actor: str) -> str:
    """A practitioner as Slack should show them: our own ``<@U…>`` mentions stay."""
    return actor if _SLACK_USER.fullmatch(actor) else for_slack(actor)


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """A terminal line: control and direction characters shown, not obeyed."""
    return _TERMINAL.sub(_visible, text)
