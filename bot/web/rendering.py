"""How the web chat shows things: a :class:`~flows.messages.Reply` as a message frame.

The browser renders these as text (never HTML) and turns options into real buttons.
"""

from __future__ import annotations

from typing import Any

from flows.messages import Reply
from flows.privacy import ERASE

FIRST_QUESTION = "role_group"  # nothing before it to go back to (as on Telegram)


def erase_question(question: str | None) -> bool:
    """A delete confirmation's question (``erase:<nonce>``): the channel answers it, not
    the flow, and it has no Back."""
    return bool(question) and (question or "").split(":")[0] == ERASE


def bot_message(reply: Reply, *, update: bool = False) -> dict[str, Any]:
    """A reply as the browser draws it. ``update``: it redraws the ticks of the question
    just above (a tick on a multiple choice) instead of adding a message."""
    payload: dict[str, Any] = {"from": "bot", "text": reply.text}
    if reply.options:
        payload["options"] = [
            {"id": o.id, "label": o.label, "selected": o.id in reply.selected}
            for o in reply.options
        ]
    if reply.question:
        payload["question"] = reply.question
        payload["back"] = reply.question != FIRST_QUESTION and not erase_question(reply.question)
    if reply.multiple:
        payload["multiple"] = True
        payload["done"] = reply.done_id or ""
    if update:
        payload["update"] = True
    return payload


def own_message(text: str, client_id: str) -> dict[str, Any]:
    """What the enquirer sent, shown back in their own chat (and on a replay)."""
    return {"from": "you", "text": text, "id": client_id}


def practitioner_message(text: str) -> dict[str, Any]:
    """A practitioner's reply from the desk."""
    return {"from": "practitioner", "text": text}


def option_label(question_payload: dict[str, Any] | None, option_id: str) -> str | None:
    """The label of a pressed option, from the message that offered it."""
    for option in (question_payload or {}).get("options", ()):
        if isinstance(option, dict) and option.get("id") == option_id:
            return str(option.get("label", ""))
    return None
