"""The baseline: a plain PTB bot asking the same questions, state in memory, no database.

A ``ConversationHandler`` with one state per question. Its questions, options, buttons
and confirmation are made from the flow's own data (``flows.questions.QUESTIONS`` and
``flows/data/copy.toml``) along the path the benchmark's enquirers take, so its messages
and keyboards are the size of ours on the wire; what it does not have is the database,
the flow's understanding and the transcript.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bench.telegram_turns.service import PTBApplication
from flows.conversation import Step
from flows.knowledge import Knowledge, default_knowledge
from flows.questions import QUESTIONS, Kind

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Coroutine[Any, Any, int]]

# The questions on the enquirers' path, in order, and what was chosen before a question
# whose options depend on it (the roles of the group chosen first).
PATH = (
    Step.ROLE_GROUP,
    Step.ROLE,
    Step.SETTING,
    Step.REGION,
    Step.PLATFORM_TYPE,
    Step.PLATFORM,
    Step.CATEGORIES,
    Step.SUBJECT,
    Step.DESCRIPTION,
    Step.LINKS,
    Step.ALREADY_REPORTED,
    Step.DANGER,
    Step.REPLY_VIA,
    Step.NAME,
    Step.REVIEW,
)
CHOSEN_BEFORE = {Step.ROLE_GROUP.value: "school"}
# How the baseline treats each kind of question: pick one, tick several, type, or type
# several messages then Done.
STYLE = {
    Kind.SINGLE: "choose",
    Kind.MULTI: "multi",
    Kind.TEXT: "text",
    Kind.LINKS: "text",
    Kind.OPTIONAL_TEXT: "text",
    Kind.DESCRIPTION: "description",
}
SUBMIT, EDIT = "submit", "edit"


@dataclass(frozen=True)
class Question:
    """One of the baseline's questions: our flow's wording and options."""

    name: str
    text: str
    options: tuple[str, ...]
    option_ids: tuple[str, ...]
    style: str


def _question_text(k: Knowledge, step: Step) -> str:
    if step is Step.SUBJECT:
        return k.copy("questions.subject", example=k.copy("title_examples.default"))
    if step is Step.DESCRIPTION:
        return k.copy("describe.default")
    return k.copy(f"questions.{step.value}")


@cache
def questions() -> tuple[Question, ...]:
    """The path's questions, worded from the flow's data."""
    k = default_knowledge()
    made = []
    for step in PATH:
        question = QUESTIONS[step]
        offered = [o.option for o in question.options(k, CHOSEN_BEFORE)]
        made.append(
            Question(
                step.value,
                _question_text(k, step),
                tuple(o.label for o in offered),
                tuple(o.id for o in offered),
                STYLE[question.kind],
            )
        )
    return tuple(made)


def build_baseline(
    token: str, base_url: str, processor: BaseUpdateProcessor, *, aiohttp: bool = False
) -> PTBApplication:
    """A plain PTB bot asking the same questions: ConversationHandler, state in memory.

    With ``aiohttp``, it talks HTTP through our transport (``bot.telegram.transport``)
    instead of PTB's default httpx one: the same bot, so the difference between it and
    ours is what the database, the flow and the transcript cost, and what is left of it
    is PTB's.
    """
    k = default_knowledge()
    asked = questions()
    ticked_mark, unticked_mark = k.copy("channel.ticked"), k.copy("channel.unticked")

    def markup(index: int, ticked: set[int] | None = None) -> InlineKeyboardMarkup:
        question = asked[index]
        rows = []
        for n, label in enumerate(question.options):
            if question.style == "multi":
                tick = ticked_mark if n in (ticked or set()) else unticked_mark
                rows.append([InlineKeyboardButton(tick + label, callback_data=f"t:{n}")])
            else:
                rows.append([InlineKeyboardButton(label, callback_data=f"c:{n}")])
        if question.style == "multi":
            rows.append([InlineKeyboardButton(k.copy("channel.done_button"), callback_data="done")])
        if index:
            rows.append([InlineKeyboardButton(k.copy("channel.back_button"), callback_data="back")])
        return InlineKeyboardMarkup(rows)

    async def ask(update: Update, context: Context, index: int) -> int:
        question = asked[index]
        text = question.text
        if question.name == Step.REVIEW.value:
            answers = context.chat_data or {}
            summary = "\n".join(f"{key}: {v}" for key, v in answers.items() if key != "ticked")
            text = f"{text}\n\n{summary}"
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup(index))
        return index

    async def start(update: Update, context: Context) -> int:
        assert update.effective_chat is not None and context.chat_data is not None
        context.chat_data.clear()
        await context.bot.send_message(update.effective_chat.id, k.copy("welcome"))
        return await ask(update, context, 0)

    async def finish(update: Update, context: Context) -> int:
        chat = update.effective_chat
        assert chat is not None
        reference = "HL-" + secrets.token_hex(3).upper()
        reply_via = k.copy("outcome.submitted_reply_chat")
        text = k.copy("outcome.submitted", reference=reference, reply_via=reply_via)
        new = InlineKeyboardMarkup(
            [[InlineKeyboardButton(k.copy("options.new_enquiry"), callback_data="c:new")]]
        )
        await context.bot.send_message(chat.id, text, reply_markup=new)
        context.application.drop_chat_data(chat.id)  # finished: keep nothing in memory
        return ConversationHandler.END

    def on_button(index: int) -> Handler:
        question = asked[index]

        async def handler(update: Update, context: Context) -> int:
            query = update.callback_query
            assert query is not None and context.chat_data is not None
            await query.answer()
            data = query.data or ""
            if data.startswith("t:") and question.style == "multi":
                ticked: set[int] = context.chat_data.setdefault("ticked", set())
                ticked ^= {int(data[2:])}
                await query.edit_message_reply_markup(markup(index, ticked))
                return index
            await query.edit_message_reply_markup(None)
            if data == "back":
                return await ask(update, context, max(index - 1, 0))
            chosen = None
            if data.startswith("c:") and question.style != "description":
                chosen = question.option_ids[int(data[2:])]
                context.chat_data[question.name] = question.options[int(data[2:])]
            elif data == "done" and question.style == "multi":
                ticked = context.chat_data.pop("ticked", set())
                context.chat_data[question.name] = [question.options[n] for n in sorted(ticked)]
            if question.name == Step.REVIEW.value:
                if chosen == SUBMIT:
                    return await finish(update, context)
                if chosen == EDIT:
                    return await ask(update, context, 0)
                assert update.effective_chat is not None
                context.application.drop_chat_data(update.effective_chat.id)
                return ConversationHandler.END
            return await ask(update, context, index + 1)

        return handler

    def on_text(index: int) -> Handler:
        question = asked[index]

        async def handler(update: Update, context: Context) -> int:
            message = update.effective_message
            assert message is not None and message.text is not None
            assert context.chat_data is not None
            text = message.text.strip()
            if question.style == "description":
                context.chat_data[question.name] = (
                    context.chat_data.get(question.name, "") + "\n" + text
                ).strip()
                await message.reply_text(
                    k.copy("reasks.description_added"), reply_markup=markup(index)
                )
                return index
            if question.style == "text":
                context.chat_data[question.name] = text
                return await ask(update, context, index + 1)
            match = next((o for o in question.options if o.lower() == text.lower()), None)
            if match is None or question.style == "multi":
                return await ask(update, context, index)  # not an option: ask again
            context.chat_data[question.name] = match
            return await ask(update, context, index + 1)

        return handler

    text_only = filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND
    conversation: ConversationHandler[Context] = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            index: [
                CallbackQueryHandler(on_button(index)),
                MessageHandler(text_only, on_text(index)),
            ]
            for index in range(len(asked))
        },
        fallbacks=[CommandHandler("start", start)],
        allow_reentry=True,
    )
    builder = ApplicationBuilder().token(token).base_url(base_url).concurrent_updates(processor)
    if aiohttp:
        from bot.telegram.transport import AiohttpRequest

        builder = builder.request(AiohttpRequest()).get_updates_request(
            AiohttpRequest(connection_pool_size=1, read_timeout=30.0)
        )
    app = builder.build()
    app.add_handler(conversation)
    return app
