"""``helpline privacy``: subject access, erasure, legal holds and the requests register.

A person is named by exactly one of ``--telegram-user``, ``--web-session``, ``--email``,
``--phone`` or ``--reference``. Commands that disclose or change personal data take
``--as NAME`` so the audit trail knows who acted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.base import Commands, day, needs_core
from bot.cli.base import reference as case_reference
from bot.settings import Settings
from bot.text import for_terminal
from flows.privacy import Identity, is_overdue
from storage.privacy import ErasurePlan

if TYPE_CHECKING:
    from bot.core import Core

OPTIONS = {
    Identity.TELEGRAM_USER: "ID",
    Identity.WEB_SESSION: "ID",
    Identity.EMAIL: "ADDRESS",
    Identity.PHONE: "NUMBER",
    Identity.REFERENCE: "REF",
}


def _who(args: argparse.Namespace) -> tuple[Identity, str]:
    for identity in Identity:
        value = getattr(args, identity.value.replace("-", "_"), None)
        if value:
            return identity, str(value)
    raise SystemExit("name the person with one of: " + ", ".join(f"--{i}" for i in Identity))


def _add_who(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    for identity, metavar in OPTIONS.items():
        group.add_argument(f"--{identity.value}", metavar=metavar)


def _add_actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="actor", required=True, metavar="NAME", help="who you are")


async def _find(core: Core, args: argparse.Namespace) -> int:
    found = await core.privacy.find(*_who(args))
    summary = {
        "cases": found.references,
        "conversations": len(found.conversations),
        "messages": found.messages,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    if not found.cases and not found.conversations:
        print("No records about that person.")
        return 0
    print(f"Cases: {', '.join(found.references) or '-'}")
    print(f"Conversations in progress or kept: {summary['conversations']}")
    print(f"Messages (transcript entries): {found.messages}")
    return 0


async def _export(core: Core, args: argparse.Namespace) -> int:
    identity, value = _who(args)
    exported = await core.privacy.export(
        identity, value, actor=args.actor, out=Path(args.out), received=args.received
    )
    print(f"Subject access request {exported.request} recorded: due {exported.due_on.isoformat()}.")
    print(f"Cases included: {', '.join(exported.cases) or 'none'}.")
    for path in exported.files:
        print(f"Written: {for_terminal(str(path))}")
    print(
        "Check the bundle for other people's personal data before sending it, then close the "
        f"request: helpline privacy requests --close {exported.request} --as NAME"
    )
    return 0


def _plan_to_dict(plan: ErasurePlan) -> dict[str, object]:
    return {
        "cases": [
            {
                "reference": c.reference,
                "fields": c.fields,
                "transcript": c.transcript,
                "notes": c.notes,
                "outbox": c.messages_waiting,
            }
            for c in plan.cases
        ],
        "conversations": plan.conversations,
        "conversation_messages": plan.conversation_messages,
    }


async def _erase(core: Core, args: argparse.Namespace) -> int:
    identity, value = _who(args)
    erased = await core.privacy.erase(identity, value, actor=args.actor, dry_run=args.dry_run)
    if args.json:
        data = {"done": erased.done, "request": erased.request, **_plan_to_dict(erased.plan)}
        print(json.dumps(data, indent=2))
        return 0
    plan = erased.plan
    if not plan.cases and not plan.conversations:
        print("No records about that person: nothing to erase.")
        return 0
    print("Would erase:" if not erased.done else "Erased:")
    for case in plan.cases:
        fields = ", ".join(case.fields) or "no personal fields left"
        print(
            f"  {case.reference}: {fields}; {case.transcript} transcript message(s), "
            f"{case.notes} note(s) or reply text(s), {case.messages_waiting} outbox row(s)"
        )
    if plan.conversations:
        print(
            f"  {plan.conversations} conversation(s) with {plan.conversation_messages} "
            "message(s) not yet part of a case"
        )
    if erased.done:
        print(f"The anonymous labels stay. Recorded as erasure request {erased.request}.")
    else:
        print("Nothing was changed (dry run). The anonymous labels would stay.")
    return 0


async def _requests(core: Core, args: argparse.Namespace) -> int:
    for reference, change in ((args.close, "close"), (args.extend, "extend")):
        if reference:
            if not args.actor:
                print("Say who you are with --as NAME.", file=sys.stderr)
                return 2
            act = core.privacy.close_request if change == "close" else core.privacy.extend_request
            request = await act(reference, args.actor)
            if request is None:
                print(f"No request {for_terminal(reference)}.", file=sys.stderr)
                return 1
            said = "closed" if change == "close" else f"extended: due {request.due_on}"
            print(f"{request.reference} {said}.")
            return 0
    today = core.privacy.today()
    rows = [
        {
            "reference": r.reference,
            "kind": r.kind,
            "received_on": r.received_on.isoformat(),
            "due_on": r.due_on.isoformat(),
            "extended": r.extended,
            "overdue": is_overdue(r.due_on, today),
            "recorded_by": r.recorded_by,
        }
        for r in await core.privacy.requests()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No open data protection requests.")
        return 0
    for row in rows:
        flag = "  OVERDUE" if row["overdue"] else ""
        extended = " (extended)" if row["extended"] else ""
        print(
            f"{row['reference']}  {row['kind']:<8} received {row['received_on']}  "
            f"due {row['due_on']}{extended}{flag}"
        )
    return 0


async def _hold(core: Core, args: argparse.Namespace) -> int:
    if not args.lift and not (args.reason or "").strip():
        print("Give a reason (--reason TEXT) or --lift.", file=sys.stderr)
        return 2
    reason = None if args.lift else args.reason.strip()
    print(for_terminal(await core.privacy.hold(args.reference, args.actor, reason)))
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``privacy find|export|erase|requests|hold``."""
    privacy = commands.add_parser("privacy", help="subject access, erasure and legal holds")
    actions = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    find = actions.add_parser("find", help="list every record about a person")
    _add_who(find)
    find.add_argument("--json", action="store_true")
    needs_core(find, _find)

    export = actions.add_parser(
        "export", help="write a person's data to a folder and record the access request"
    )
    _add_who(export)
    export.add_argument("--out", required=True, metavar="DIR")
    export.add_argument(
        "--received", type=day, metavar="YYYY-MM-DD", help="when the request came (default today)"
    )
    _add_actor(export)
    needs_core(export, _export)

    erase = actions.add_parser("erase", help="erase a person's personal data (labels stay)")
    _add_who(erase)
    erase.add_argument("--dry-run", action="store_true", help="show exactly what would go")
    erase.add_argument("--json", action="store_true")
    _add_actor(erase)
    needs_core(erase, _erase)

    requests = actions.add_parser("requests", help="open requests and their due dates")
    requests.add_argument("--json", action="store_true")
    requests.add_argument("--close", metavar="REF", help="mark a request answered")
    requests.add_argument("--extend", metavar="REF", help="complex: two more months")
    requests.add_argument("--as", dest="actor", metavar="NAME", help="who you are")
    needs_core(requests, _requests)

    hold = actions.add_parser("hold", help="keep a case past its retention date (legal hold)")
    hold.add_argument("reference", type=case_reference)
    hold.add_argument("--reason", metavar="TEXT")
    hold.add_argument("--lift", action="store_true", help="lift the hold")
    _add_actor(hold)
    needs_core(hold, _hold)
