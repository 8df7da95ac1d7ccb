"""Showing the services a route or a category points to, worded for whoever is reading.

Every signpost goes through :func:`show_services`: the introduction (``copy.toml``
``[signpost]``, with a variant per reader), one line per service from the directory (a
service that is not for this reader is left out) and a record of where they were sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from flows.remit import Route
from flows.turn import Turn


def show_route(turn: Turn, route: Route, *, intro: str | None = None) -> None:
    """A route's services, introduced by its own sentence (or ``intro``, a copy key)."""
    services = turn.knowledge.directory.routes[route].services
    show_services(turn, intro or f"signpost.intro_{route.value}", services)


def show_services(turn: Turn, intro_key: str, service_ids: Iterable[str]) -> None:
    """One message: the introduction, then each service's contact for this reader."""
    k, audience = turn.knowledge, turn.audience
    lines = [k.copy.worded(intro_key, audience)]
    shown = []
    for service in k.directory.resolve(service_ids):
        contact = service.contact_for(audience)
        if contact is not None and service.id not in turn.shown:
            turn.shown.add(service.id)
            lines.append(k.copy("signpost.service_line", name=service.name, contact=contact))
            shown.append(service.name)
    turn.say("\n".join(lines))
    given = turn.answers.setdefault("signposted_to", [])
    given.extend(name for name in shown if name not in given)


def helpline_contact(turn: Turn) -> str:
    """How to reach the helpline itself (for when the bot cannot help)."""
    return turn.knowledge.directory.services["helpline"].contact
