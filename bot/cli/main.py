"""The ``helpline`` command: one entry point for the service, the terminal chat and the desk."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot import logs
from bot.cli import analysis as cli_analysis
from bot.core import Core, open_core
from bot.settings import Settings
from bot.cli.chat import run_chat
from bot.text import for_terminal, normalise
from storage import cases as case_store
from storage import db, outbox_status
from storage import desk as desk_store

log = logging.getLogger(__name__)

Handler = Callable[[Core, argparse.Namespace], Awaitable[int]]


async def _chat(core: Core, args: argparse.Namespace) -> int:
    await run_chat(core.intake, session_id=args.session, as_json=args.json)
    return 0


async def _cases_list(core: Core, args: argparse.Namespace) -> int:
    async with core.sessions() as session:
        found = await case_store.list_cases(
            session,
            status=args.status,
            overdue_at=core.clock() if args.overdue else None,
            due_before=args.due_before,
        )
        rows = [case_store.case_to_dict(c) for c in found]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("No cases" + (f" with status {args.status}." if args.status else " yet."))
        return 0
    for row in rows:
        received = (row["received_at"] or "")[:16].replace("T", " ")
        about = ", ".join(row["categories"]) or "-"
        urgent = " URGENT" if row["urgent"] else ""
        subject = _one_line(row["subject"] or "-")
        print(
            f"{row['reference']}  {received}  {row['status']:<10}{urgent}  "
            f"{_one_line(row['enquirer_type'] or '-')}  [{_one_line(about)}]  {subject}"
        )
    return 0


def _one_line(text: str) -> str:
    """A value for one line of a listing: breaks folded, controls shown, not obeyed."""
    return for_terminal(" ".join(text.splitlines()))


async def _cases_show(core: Core, args: argparse.Namespace) -> int:
    async with core.sessions() as session:
        case = await case_store.get_case(session, args.reference)
        if case is None:
            print(f"No case with reference {for_terminal(args.reference)}.", file=sys.stderr)
            return 1
        data = case_store.case_to_dict(case, await case_store.transcript(session, case.id))
        data["actions"] = [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in await desk_store.events(session, case.id)
        ]
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(_format_case(data))
    return 0


def _format_case(data: dict[str, Any]) -> str:
    """A case for a terminal: everything anyone wrote passes through ``for_terminal``."""
    lines = []
    for key, value in data.items():
        if key in ("transcript", "actions"):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        shown = value if value not in (None, "") else "-"
        lines.append(f"{key:>17}: {for_terminal(str(shown))}")
    actions = data.get("actions") or []
    if actions:
        lines.append("\nActions:")
        lines += [
            for_terminal(f"  [{a['at'][:16]}] {a['actor']}: {a['action']} {a['detail'] or ''}")
            for a in actions
        ]
    turns = data.get("transcript") or []
    if turns:
        lines.append("\nTranscript:")
        for turn in turns:
            text = (
                "(attachment refused, not kept)"
                if turn["kind"] == "attachment_refused"
                else turn["text"]
            )
            lines.append(for_terminal(f"  [{turn['at'][11:19]}] {turn['sender']}: {text}"))
    return "\n".join(lines)


async def _desk(core: Core, args: argparse.Namespace) -> int:
    """claim / release / reply / resolve: the same desk service Slack uses."""
    actions = {
        "claim": lambda: core.desk.claim(args.reference, args.actor),
        "release": lambda: core.desk.release(args.reference, args.actor),
        "reply": lambda: core.desk.reply(args.reference, args.actor, " ".join(args.text)),
        "resolve": lambda: core.desk.resolve(args.reference, args.actor, args.outcome, args.note),
    }
    if args.cases_command == "reply":
        args.text = [normalise(t) for t in args.text]
    result = await actions[args.cases_command]()
    print(for_terminal(result.message), file=sys.stdout if result.ok else sys.stderr)
    if result.ok and args.cases_command == "claim":
        print(await core.desk.contact_details(args.reference, escape=for_terminal))
    return 0 if result.ok else 1


async def _outbox(core: Core, args: argparse.Namespace) -> int:
    """What is waiting to be sent (or was given up), without anything anyone wrote."""
    stuck_after = timedelta(seconds=core.settings.outbox_stuck_seconds)
    now = core.clock()
    async with core.sessions() as session:
        summary = await outbox_status.summary(session, now, stuck_after)
        listed = await outbox_status.rows(session, failed=args.failed)
    if args.json:
        data = {
            "pending": summary.pending,
            "stuck": summary.stuck,
            "failed": summary.failed,
            "rows": [_outbox_row(row, now) for row in listed],
        }
        print(json.dumps(data, indent=2))
        return 1 if summary.stuck else 0
    print(
        f"{summary.pending} waiting, {summary.stuck} waiting for more than "
        f"{stuck_after.total_seconds():.0f} s, {summary.failed} given up."
    )
    for row in listed:
        shown = _outbox_row(row, now)
        print(
            f"  #{shown['id']:<6} {shown['kind']:<17} {shown['case'] or '-':<10} "
            f"{shown['age_seconds']:>8.0f} s old  {shown['attempts']} attempt(s), "
            f"{shown['failures']} failure(s)  {shown['state']}  {shown['last_error'] or ''}"
        )
    if summary.failed and not args.failed:
        print("Given-up rows: helpline outbox --failed; send them again: helpline outbox retry")
    return 1 if summary.stuck else 0


def _outbox_row(row: outbox_status.Listed, now: datetime) -> dict[str, Any]:
    if row.failed_at is not None:
        state = "given up"
    elif row.leased_by:
        state = "sending"
    elif row.available_at > now:
        state = f"retry in {(row.available_at - now).total_seconds():.0f} s"
    else:
        state = "due"
    return {
        "id": row.id,
        "kind": row.kind,
        "case": row.reference,
        "age_seconds": round((now - row.created_at).total_seconds(), 1),
        "attempts": row.attempts,
        "failures": row.failures,
        "state": state,
        "last_error": for_terminal(row.last_error or "") or None,
    }


async def _outbox_retry(core: Core, args: argparse.Namespace) -> int:
    if not args.ids and not args.all:
        print("Name the rows to send again (helpline outbox --failed lists them), or --all.")
        return 2
    async with core.sessions() as session, session.begin():
        count = await outbox_status.retry_failed(
            session, core.clock(), None if args.all else args.ids
        )
    print(f"{count} given-up row(s) will be sent again by the running service.")
    return 0


async def _db_purge(core: Core, args: argparse.Namespace) -> int:
    from bot.services.housekeeping import purge_expired

    purged = await purge_expired(core)
    print(
        f"Erased personal data from {purged.cases} case(s) and {purged.conversations} idle "
        f"conversation(s) older than {core.settings.retention_days} days."
    )
    return 0


async def _db_upgrade(core: Core, args: argparse.Namespace) -> int:
    print(f"Database schema is at revision {await db.current_revision(core.engine)}.")
    return 0


def _understand(args: argparse.Namespace) -> int:
    """What the bot takes from each message: for checking the lexicons, and for tests."""
    from flows.understanding import default_understander

    understander = default_understander()
    messages = [" ".join(args.text)] if args.text else (line.rstrip("\n") for line in sys.stdin)
    for message in messages:
        said = understander.read(message).to_json(understander.taxonomy)
        print(json.dumps(said, ensure_ascii=False) if args.json else _describe(said))
        sys.stdout.flush()
    return 0


def _describe(said: dict[str, Any]) -> str:
    """One line a person can read: each field and what was found for it."""
    yes_no = {True: "yes", False: "no", None: "can't tell"}
    where = said["platform_type"] or "-"
    if said["platform"]:
        where += f" ({said['platform']})"
    parts = [
        f"under 18: {yes_no[said['under_18']]}",
        f"role: {said['enquirer_type'] or '-'}",
        f"setting: {said['setting'] or '-'}",
        f"region: {said['region'] or '-'}",
        f"where: {where}",
        f"about: {', '.join(said['categories']) or '-'}",
        f"risks: {', '.join(said['risks']) or 'none'}",
        f"links: {' '.join(said['links']) or '-'}",
    ]
    return _printable(" | ".join(parts))


def _printable(text: str) -> str:
    """No control characters reach the terminal (a link could carry an escape sequence)."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def _diagram(args: argparse.Namespace) -> int:
    from flows.diagram import mermaid

    print(mermaid())
    return 0


def _when(text: str) -> datetime:
    """An ISO date-time; without a zone it is read in the helpline's time zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(Settings().timezone))


def _hours(args: argparse.Namespace) -> int:
    """Is the helpline open, when does it next open, when would a case sent now be due."""
    settings = Settings()
    try:
        calendar = settings.calendar()
    except ValueError as error:
        print(f"Working hours settings are not valid: {error}", file=sys.stderr)
        return 2
    at = args.at or datetime.now(calendar.zone)
    at = at.astimezone(calendar.zone)
    due = calendar.due_at(at, settings.response_target)
    opens = calendar.next_open(at)
    is_open = calendar.is_open(at)
    if args.json:
        print(
            json.dumps({"open": is_open, "next_open": opens.isoformat(), "due_at": due.isoformat()})
        )
        return 0
    state = "open" if is_open else "closed"
    print(f"At {at:%a %d %b %Y %H:%M %Z} the helpline is {state}.")
    if not is_open:
        print(f"It next opens at {opens:%H:%M on %A %d %B %Y}.")
    target = f"{settings.response_target_hours:g} working hours"
    print(f"A case submitted now is due {calendar.describe_due(due)} ({target}).")
    return 0


HOW_TO_RUN = """helpline run needs these settings: {missing}.
Set them in the environment or in a .env file, for example:
  TELEGRAM_BOT_TOKEN=123456:ABC...   (from @BotFather)
To try the conversation locally without Telegram, run: helpline chat"""
TOKEN_REJECTED = """Telegram rejected the bot token.
Check TELEGRAM_BOT_TOKEN (from @BotFather), and that TELEGRAM_API_BASE_URL, if set, points
at a Bot API server (for example https://api.telegram.org/bot)."""


def _run_service(args: argparse.Namespace) -> int:
    from telegram.error import InvalidToken

    from bot.app import missing_settings, serve

    settings = Settings()
    missing = missing_settings(settings)
    if missing:
        print(HOW_TO_RUN.format(missing=", ".join(missing)), file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except InvalidToken:
        # PTB's message quotes the token: say what to check, never what it was.
        print(TOKEN_REJECTED, file=sys.stderr)
        return 2
    except Exception:
        # Through the redacting log handler, not Python's own traceback printer.
        log.critical("the service stopped on an error", exc_info=True)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helpline", description="Helpline Intake: chat intake for the online-safety helpline."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    hours = sub.add_parser("hours", help="is the helpline open, and when is a new case due")
    hours.add_argument("--at", type=_when, metavar="ISO-DATETIME", help="ask about another moment")
    hours.add_argument("--json", action="store_true")
    hours.set_defaults(offline=_hours)

    run = sub.add_parser("run", help="run the service: Telegram intake and the HTTP server")
    run.set_defaults(offline=_run_service)

    chat = sub.add_parser("chat", help="chat with the intake bot in this terminal (as an enquirer)")
    chat.add_argument("--json", action="store_true", help="one JSON object per bot message")
    chat.add_argument("--session", default="local", help="resume or start this named chat")
    chat.set_defaults(handler=_chat)

    cases = sub.add_parser("cases", help="see the cases that arrived")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True, metavar="ACTION")
    listing = cases_sub.add_parser("list", help="list cases, newest first")
    listing.add_argument("--status", choices=["new", "claimed", "resolved", "signposted"])
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--overdue", action="store_true", help="open cases past their due time")
    listing.add_argument(
        "--due-before", type=_when, metavar="ISO-DATETIME", help="open cases due before this moment"
    )
    listing.set_defaults(handler=_cases_list)
    show = cases_sub.add_parser("show", help="show one case with its transcript")
    show.add_argument("reference")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_cases_show)

    outcomes = "referred, advice, signposted, escalated, nfa"
    for name, help_text in (
        ("claim", "take a case (exactly one practitioner can hold it)"),
        ("release", "put a case you hold back in the queue"),
        ("reply", "send a message to the enquirer's chat"),
        ("resolve", f"close a case with an outcome ({outcomes})"),
    ):
        action = cases_sub.add_parser(name, help=help_text)
        action.add_argument("reference")
        if name == "reply":
            action.add_argument("text", nargs="+", help="the message")
        if name == "resolve":
            action.add_argument("--outcome", required=True, help=outcomes)
            action.add_argument("--note", help="internal note kept with the outcome")
        action.add_argument("--as", dest="actor", required=True, metavar="NAME", help="who you are")
        action.set_defaults(handler=_desk)

    cli_analysis.register(sub)

    queue = sub.add_parser("outbox", help="what is waiting to go to Slack and to enquirers")
    queue.add_argument("--failed", action="store_true", help="list the rows given up instead")
    queue.add_argument("--json", action="store_true")
    queue.set_defaults(handler=_outbox)
    queue_sub = queue.add_subparsers(dest="outbox_command", metavar="ACTION")
    again = queue_sub.add_parser("retry", help="send given-up rows again")
    again.add_argument("ids", nargs="*", type=int, metavar="ID")
    again.add_argument("--all", action="store_true", help="every given-up row")
    again.set_defaults(handler=_outbox_retry)

    database = sub.add_parser("db", help="database maintenance")
    db_sub = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser(
        "purge", help="erase personal data older than HELPLINE_RETENTION_DAYS (also runs hourly)"
    ).set_defaults(handler=_db_purge)
    db_sub.add_parser("upgrade", help="bring the schema up to date").set_defaults(
        handler=_db_upgrade
    )

    sub.add_parser("diagram", help="print the conversation's state diagram (Mermaid)").set_defaults(
        offline=_diagram
    )

    understand = sub.add_parser(
        "understand", help="show what the bot takes from a message (one per line on stdin)"
    )
    understand.add_argument("text", nargs="*", help="the message (else read stdin, a line each)")
    understand.add_argument("--json", action="store_true", help="one JSON object per message")
    understand.set_defaults(offline=_understand)
    return parser


async def _run(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    async with open_core(settings) as core:
        return await handler(core, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "offline"):
        return int(args.offline(args))
    settings = Settings()
    logs.configure(settings.log_level if args.command != "chat" else "WARNING")
    try:
        return asyncio.run(_run(args.handler, args, settings))
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        log.error("cannot reach the database: %s", logs.kind(error))
        print(
            f"Cannot reach the database ({logs.kind(error)}). Check HELPLINE_DATABASE_URL.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
