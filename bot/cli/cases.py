"""``helpline cases``: list and show cases, and act on them as the Slack desk does."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from bot.cli.base import Commands, disclosed_as, moment_in, needs_core, one_line, reference
from bot.settings import Settings
from bot.text import for_terminal, normalise
from flows.conversation import CaseStatus
from flows.privacy import AuditAction, AuditChannel
from storage import cases as case_store
from storage import desk as desk_store

CLI = AuditChannel.CLI

if TYPE_CHECKING:
    from bot.core import Core


async def _cases_list(core: Core, args: argparse.Namespace) -> int:
    rows = await core.desk.listed(
        args.actor,
        CLI,
        AuditAction.CASE_EXPORTED if args.json else AuditAction.CASE_LISTED,
        status=CaseStatus(args.status) if args.status else None,
        overdue_by=core.clock() if args.overdue else None,
        due_before=args.due_before,
    )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("No cases" + (f" with status {args.status}." if args.status else " yet."))
        return 0
    table = [LISTING_HEADER] + [_listed(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(LISTING_HEADER) - 1)]
    for line in table:
        padded = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        print("  ".join([*padded, line[-1]]).rstrip())
    return 0


LISTING_HEADER = ("Reference", "Received", "Status", "Enquirer", "About", "Subject")


def _listed(row: dict[str, Any]) -> tuple[str, ...]:
    """One case's cells in ``cases list``, each on one line and safe for a terminal."""
    return (
        row["reference"],
        (row["received_at"] or "")[:16].replace("T", " "),
        row["status"] + (" URGENT" if row["urgent"] else ""),
        one_line(row["enquirer_type"] or "-"),
        one_line(", ".join(row["categories"]) or "-"),
        one_line(row["subject"] or "-"),
    )


async def _cases_show(core: Core, args: argparse.Namespace) -> int:
    action = AuditAction.CASE_EXPORTED if args.json else AuditAction.CASE_SHOWN
    shown = await core.desk.case(args.reference, args.actor, CLI, action)
    async with core.readers() as session:
        case = await case_store.get_case(session, args.reference) if shown else None
        if case is None:
            print(
                for_terminal(core.flow.copy("desk.not_found", reference=args.reference)),
                file=sys.stderr,
            )
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


async def _cases_linked(core: Core, args: argparse.Namespace) -> int:
    """Other reports of the accounts and links of one case, newest first."""
    linked = await core.desk.linked(args.reference, args.actor, CLI)
    if linked is None:
        print(
            for_terminal(core.flow.copy("desk.not_found", reference=args.reference)),
            file=sys.stderr,
        )
        return 1
    case, found = linked
    if args.json:
        rows = [{"reference": f.case.reference, "shared": list(f.shared)} for f in found]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not found:
        print(f"No other case shares an account or link with {case.reference}.")
        return 0
    for other in found:
        c = other.case
        received = c.received_at.astimezone(core.calendar.zone).strftime("%Y-%m-%d %H:%M")
        where = ", ".join(p for p in (c.setting, c.region) if p) or "-"
        print(
            for_terminal(
                f"{c.reference}  {received}  {c.status.value:<10}  {one_line(where)}  "
                f"shares: {', '.join(other.shared)}"
            )
        )
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
        "claim": lambda: core.desk.claim(args.reference, args.actor, CLI),
        "release": lambda: core.desk.release(args.reference, args.actor, CLI),
        "reply": lambda: core.desk.reply(args.reference, args.actor, " ".join(args.text), CLI),
        "resolve": lambda: core.desk.resolve(
            args.reference, args.actor, args.outcome, args.note, CLI
        ),
    }
    if args.cases_command == "reply":
        args.text = [normalise(t) for t in args.text]
    result = await actions[args.cases_command]()
    print(for_terminal(result.message), file=sys.stdout if result.ok else sys.stderr)
    if result.ok and args.cases_command == "claim":
        contact = core.desk.contact_details(
            args.reference, escape=for_terminal, actor=args.actor, via=CLI
        )
        print(await contact)
    return 0 if result.ok else 1


def register(commands: Commands, settings: Settings) -> None:
    """``cases list|show|linked|claim|release|reply|resolve``."""
    moment = moment_in(settings.timezone)
    cases = commands.add_parser("cases", help="see the cases that arrived")
    actions = cases.add_subparsers(dest="cases_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list cases, newest first")
    listing.add_argument("--status", choices=[s.value for s in CaseStatus])
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--overdue", action="store_true", help="open cases past their due time")
    listing.add_argument(
        "--due-before", type=moment, metavar="ISO-DATETIME", help="open cases due before this"
    )
    show = actions.add_parser("show", help="show one case with its transcript")
    show.add_argument("reference", type=reference)
    show.add_argument("--json", action="store_true")
    linked = actions.add_parser("linked", help="other cases reporting the same accounts or links")
    linked.add_argument("reference", type=reference)
    linked.add_argument("--json", action="store_true")
    for disclosing, run in ((listing, _cases_list), (show, _cases_show), (linked, _cases_linked)):
        disclosed_as(disclosing)
        needs_core(disclosing, run)

    outcomes = "referred, advice, signposted, escalated, nfa"
    for name, help_text in (
        ("claim", "take a case (exactly one practitioner can hold it)"),
        ("release", "put a case you hold back in the queue"),
        ("reply", "send a message to the enquirer's chat"),
        ("resolve", f"close a case with an outcome ({outcomes})"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("reference", type=reference)
        if name == "reply":
            action.add_argument("text", nargs="+", help="the message")
        if name == "resolve":
            action.add_argument("--outcome", required=True, help=outcomes)
            action.add_argument("--note", help="internal note kept with the outcome")
        action.add_argument("--as", dest="actor", required=True, metavar="NAME", help="who you are")
        needs_core(action, _desk)
