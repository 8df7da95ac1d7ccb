"""How replies look on Telegram: buttons (and what a pressed one means), long texts split,
short ones folded together. The one place a :class:`~flows.messages.Reply` becomes messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import MessageLimit

from flows.copy import Copy
from flows.messages import Command, Inbound, Reply
from flows.privacy import ERASE

NAV = "nav"
SEP = "|"
Outgoing = list[tuple[str, InlineKeyboardMarkup | None]]


# Callback data: "<question>|<verb>|<option>" (well under Telegram's 64 bytes) ---------------


def button_data(question: str | None, verb: str, option_id: str) -> str:
    """A button's callback data; over Telegram's 64 bytes it becomes a stale button, which the
    flow answers kindly instead of the send failing.
    """
    data = SEP.join((question or "", verb, option_id))
    return data if len(data.encode()) <= 64 else SEP.join(("", "c", "stale"))


def inbound_from_button(data: str) -> Inbound:
    """The Inbound a pressed button means; anything unreadable is treated as stale."""
    parts = data.split(SEP)
    if len(parts) != 3:
        return Inbound.chose("", question="?")
    question, verb, option_id = parts
    if verb == NAV and option_id in {c.value for c in Command}:
        return Inbound.commanded(Command(option_id), question=question or None)
    if verb == "t":
        return Inbound.toggled(option_id, question=question or "?")
    if verb == "d":
        return Inbound.chose(question=question or "?")
    return Inbound.chose(option_id, question=question or "?")


def keyboard(reply: Reply, copy: Copy) -> InlineKeyboardMarkup | None:
    """Options one per row; ticks and a Done button for a multiple choice; a Back button."""
    rows: list[list[InlineKeyboardButton]] = []
    for option in reply.options:
        if reply.multiple:
            tick = copy("channel.ticked" if option.id in reply.selected else "channel.unticked")
            data = button_data(reply.question, "t", option.id)
            rows.append([InlineKeyboardButton(tick + option.label, callback_data=data)])
        else:
            data = button_data(reply.question, "c", option.id)
            rows.append([InlineKeyboardButton(option.label, callback_data=data)])
    if reply.multiple:
        done = button_data(reply.question, "d", reply.done_id or "")
        rows.append([InlineKeyboardButton(copy("channel.done_button"), callback_data=done)])
    if reply.question and reply.question not in ("role_group", ERASE):
        back = button_data(reply.question, NAV, Command.BACK.value)
        rows.append([InlineKeyboardButton(copy("channel.back_button"), callback_data=back)])
    return InlineKeyboardMarkup(rows) if rows else None


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Split long text at paragraph or line breaks so no message exceeds Telegram's limit."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(
            text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit)
        )
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text else parts


def merge_replies(replies: Sequence[Reply]) -> list[Reply]:
    """Fold plain-text replies into the next one: fewer messages, same order and words.

    Telegram allows about one message a second per chat, and one bubble reads better
    than three. A reply with buttons (options, or a question's Back button) ends a
    message, so buttons stay under their question.
    """
    merged: list[Reply] = []
    pending: list[str] = []
    for reply in replies:
        text = "\n\n".join([*pending, reply.text])
        if pending and len(text) > MessageLimit.MAX_TEXT_LENGTH:
            merged.append(Reply("\n\n".join(pending)))
            text, pending = reply.text, []
        if reply.options or reply.question:
            merged.append(replace(reply, text=text))
            pending = []
        else:
            pending = [text]
    if pending:
        merged.append(Reply(pending[0]))
    return merged


def outgoing(replies: Sequence[Reply], copy: Copy) -> Outgoing:
    """The messages to send: long texts split, each reply's buttons on its last part."""
    messages: Outgoing = []
    for reply in merge_replies(replies):
        chunks = split_text(reply.text)
        markup = keyboard(reply, copy)
        last = len(chunks) - 1
        messages += [(c, markup if i == last else None) for i, c in enumerate(chunks)]
    return messages
