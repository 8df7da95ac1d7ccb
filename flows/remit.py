"""Remit and signposting: who is sent where, from the directory in ``data/signposts.toml``.

The helpline serves professionals. Children, adults facing intimate-image abuse and
people with their own worries are pointed to the services made for them; immediate
danger always comes first. Contact facts live once in the directory, with wording for
each kind of reader where it differs (a police officer is not told to call the police).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from flows.taxonomy import load_toml
from flows.understanding import Risk


class Route(StrEnum):
    """The signposting routes the conversation can take."""

    CHILD = "child"
    INTIMATE_ADULT = "intimate_adult"
    WORRIED_ABOUT_CHILD = "worried_about_child"
    PUBLIC_OTHER = "public_other"
    DANGER = "danger"
    SELF_HARM = "self_harm"
    OWN_THOUGHTS = "own_thoughts"


RISK_ROUTES: Mapping[Risk, Route] = {Risk.DANGER: Route.DANGER, Risk.SELF_HARM: Route.SELF_HARM}


class Audience(StrEnum):
    """Who is reading, so safety wording fits them (a DSL is not told to tell their DSL)."""

    CHILD = "child"
    PARENT = "parent"
    PUBLIC = "public"
    PROFESSIONAL = "professional"
    DSL = "dsl"
    POLICE = "police"

    @property
    def chain(self) -> tuple[str, ...]:
        """Wording variants to try, most specific first (then the plain wording)."""
        broader = {Audience.DSL: "professional", Audience.POLICE: "professional"}
        return (self.value, broader[self]) if self in broader else (self.value,)


_READERS: Mapping[str, Audience] = {
    "child": Audience.CHILD,
    "parent": Audience.PARENT,
    "public": Audience.PUBLIC,
    "other": Audience.PUBLIC,
    "dsl": Audience.DSL,
    "police": Audience.POLICE,
}


def audience_of(role_id: object) -> Audience | None:
    """The reader for an enquirer type id; None while nobody has said who they are."""
    if not isinstance(role_id, str) or not role_id:
        return None
    return _READERS.get(role_id, Audience.PROFESSIONAL)


@dataclass(frozen=True, slots=True)
class Service:
    """A service we point people to, with its contact worded for each kind of reader."""

    id: str
    name: str
    contact: str
    always_open: bool = False
    contacts: Mapping[str, str] = field(default_factory=dict)
    not_for: frozenset[str] = frozenset()
    """Readers this service is never shown to (the police, to a police officer)."""

    def contact_for(self, audience: Audience | None) -> str | None:
        """What to show this reader, or None when the service is not for them."""
        chain = audience.chain if audience else ()
        if self.not_for & set(chain):
            return None
        return next((self.contacts[a] for a in chain if a in self.contacts), self.contact)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """What a route shows: its services, and whether the conversation ends there."""

    services: tuple[str, ...]
    ends: bool
    """The conversation stops there: a signposted record is kept, nothing personal."""


@dataclass(frozen=True, slots=True)
class Directory:
    """The signposting directory: services and the routes that use them."""

    services: Mapping[str, Service]
    routes: Mapping[Route, RouteSpec]

    def ends(self, route: Route) -> bool:
        """Whether the conversation stops at ``route`` (see :attr:`RouteSpec.ends`)."""
        return self.routes[route].ends

    def resolve(self, service_ids: Iterable[str]) -> tuple[Service, ...]:
        """Services by id, each once, in the order given."""
        return tuple(self.services[s] for s in dict.fromkeys(service_ids))


def _service(sid: str, raw: Mapping[str, Any]) -> Service:
    audiences = {a.value for a in Audience}
    contacts = {
        key.removeprefix("contact_"): str(value)
        for key, value in raw.items()
        if key.startswith("contact_")
    }
    not_for = [str(a) for a in raw.get("not_for", ())]
    if unknown := sorted((set(contacts) | set(not_for)) - audiences):
        raise ValueError(f"service {sid!r} names unknown readers: {unknown}")
    return Service(
        sid,
        str(raw["name"]),
        str(raw["contact"]),
        bool(raw.get("always_open")),
        contacts,
        frozenset(not_for),
    )


def parse_directory(data: Mapping[str, Any]) -> Directory:
    """Build and check the directory: every route names known services."""
    services = {sid: _service(sid, raw) for sid, raw in data["service"].items()}
    routes: dict[Route, RouteSpec] = {}
    for route in Route:
        raw = data["route"][route.value]
        ids = tuple(str(s) for s in raw["services"])
        unknown = [s for s in ids if s not in services]
        if unknown:
            raise ValueError(f"route {route} names unknown services: {unknown}")
        routes[route] = RouteSpec(ids, bool(raw.get("ends", False)))
    return Directory(services, routes)


@cache
def default_directory() -> Directory:
    """The shipped directory (read once per process)."""
    return parse_directory(load_toml("signposts.toml"))
