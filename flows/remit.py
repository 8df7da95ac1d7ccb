"""Remit and signposting: who is sent where, from the directory in ``data/signposts.toml``.

The helpline serves professionals. Children, adults facing intimate-image abuse and
people with their own worries are pointed to the services made for them; immediate
danger always comes first. Contact facts live once in the directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from flows.taxonomy import load_toml


class Route(StrEnum):
    """The signposting routes the conversation can take."""

    CHILD = "child"
    INTIMATE_ADULT = "intimate_adult"
    WORRIED_ABOUT_CHILD = "worried_about_child"
    PUBLIC_OTHER = "public_other"
    DANGER = "danger"
    SELF_HARM = "self_harm"
    OWN_THOUGHTS = "own_thoughts"


class Risk(StrEnum):
    DANGER = "danger"
    SELF_HARM = "self_harm"


RISK_ROUTES: Mapping[Risk, Route] = {Risk.DANGER: Route.DANGER, Risk.SELF_HARM: Route.SELF_HARM}


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    contact: str
    always_open: bool = False


@dataclass(frozen=True, slots=True)
class RouteSpec:
    services: tuple[str, ...]
    ends: bool


@dataclass(frozen=True, slots=True)
class Directory:
    """The signposting directory: services, routes and risk phrases."""

    services: Mapping[str, Service]
    routes: Mapping[Route, RouteSpec]
    risk_patterns: Mapping[Risk, re.Pattern[str]]

    def services_for(self, route: Route) -> tuple[Service, ...]:
        return tuple(self.services[s] for s in self.routes[route].services)

    def ends(self, route: Route) -> bool:
        return self.routes[route].ends

    def risks_in(self, text: str) -> tuple[Risk, ...]:
        """Which kinds of risk ``text`` mentions, in a fixed order (danger first)."""
        return tuple(risk for risk, pattern in self.risk_patterns.items() if pattern.search(text))

    def resolve(self, service_ids: Iterable[str]) -> tuple[Service, ...]:
        """Services by id, each once, in the order given."""
        return tuple(self.services[s] for s in dict.fromkeys(service_ids))


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted((re.escape(p.strip()) for p in phrases if p.strip()), key=len)
    return re.compile(r"(?<!\w)(?:" + "|".join(reversed(alternatives)) + r")(?!\w)", re.I)


def parse_directory(data: Mapping[str, Any]) -> Directory:
    """Build and check the directory: every route names known services."""
    services = {
        sid: Service(sid, str(raw["name"]), str(raw["contact"]), bool(raw.get("always_open")))
        for sid, raw in data["service"].items()
    }
    routes: dict[Route, RouteSpec] = {}
    for route in Route:
        raw = data["route"][route.value]
        ids = tuple(str(s) for s in raw["services"])
        unknown = [s for s in ids if s not in services]
        if unknown:
            raise ValueError(f"route {route} names unknown services: {unknown}")
        routes[route] = RouteSpec(ids, bool(raw.get("ends", False)))
    risk = {r: _phrase_pattern(data["risk"][r.value]) for r in Risk}
    return Directory(services, routes, risk)


@cache
def default_directory() -> Directory:
    """The shipped directory (read once per process)."""
    return parse_directory(load_toml("signposts.toml"))
