"""The case taxonomy (the report's tables), loaded from ``data/taxonomy.toml``.

Labels are stored on cases exactly as the report prints them, so the product's counts
line up with the helpline's published tables. Ids are what channels send back.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from flows.messages import Option

TABLES = (
    "enquirer_group",
    "enquirer_type",
    "setting",
    "region",
    "platform_type",
    "platform",
    "category",
    "outcome",
)


FLAGS = ("asks_platform", "image_warning", "referred_to_platform", "no_report", "only_alone")
"""The yes/no markers a term can carry in the data file."""


@dataclass(frozen=True, slots=True)
class Term:
    """One entry of a taxonomy table."""

    id: str
    label: str
    text: str
    help: str = ""
    aliases: tuple[str, ...] = ()
    offered: bool = True
    members: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()
    signposts: tuple[str, ...] = ()
    kind: str | None = None
    """A platform's platform_type id."""
    fallback: str | None = None
    """A group's role kept when someone describes theirs in their own words."""

    def option(self, *, with_help: bool = False) -> Option:
        """The term as a button or menu entry; ``with_help`` adds its explanation."""
        return Option(self.id, self.text, self.help if with_help else "")


@dataclass(frozen=True, slots=True)
class Table:
    """An ordered taxonomy table with lookups by id and by label."""

    name: str
    terms: tuple[Term, ...]
    _by_id: Mapping[str, Term] = field(repr=False, default_factory=dict)
    _by_label: Mapping[str, Term] = field(repr=False, default_factory=dict)

    @classmethod
    def of(cls, name: str, terms: Iterable[Term]) -> Table:
        """A table from its terms; duplicate ids are refused when the data loads."""
        terms = tuple(terms)
        by_id = {t.id: t for t in terms}
        if len(by_id) != len(terms):
            raise ValueError(f"taxonomy table {name!r} has duplicate ids")
        return cls(name, terms, by_id, {t.label.casefold(): t for t in terms})

    def __getitem__(self, term_id: str) -> Term:
        return self._by_id[term_id]

    def get(self, term_id: str) -> Term | None:
        """The term with ``term_id``, or None for an id the table does not have."""
        return self._by_id.get(term_id)

    def by_label(self, label: str) -> Term | None:
        """The term whose stored label is ``label`` (case-insensitive), if any."""
        return self._by_label.get(label.strip().casefold())

    @property
    def labels(self) -> tuple[str, ...]:
        """Every stored label, in table order (what imports and reports accept)."""
        return tuple(t.label for t in self.terms)

    @property
    def offered(self) -> tuple[Term, ...]:
        """The terms shown to enquirers, in table order (``offered = false`` keeps a label for
        reports and imports only).
        """
        return tuple(t for t in self.terms if t.offered)


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """All the tables, by name."""

    tables: Mapping[str, Table]

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    def group_of(self, role_id: str) -> Term | None:
        """The enquirer group a role belongs to (its first, if several)."""
        return next((g for g in self["enquirer_group"].terms if role_id in g.members), None)


def _term(raw: Mapping[str, Any]) -> Term:
    label = str(raw.get("label", raw.get("text", raw["id"])))
    flags = frozenset(key for key in FLAGS if raw.get(key))
    return Term(
        id=str(raw["id"]),
        label=label,
        text=str(raw.get("text", label)),
        help=str(raw.get("help", "")),
        aliases=tuple(str(a) for a in raw.get("aliases", ())),
        offered=bool(raw.get("offered", True)),
        members=tuple(str(m) for m in raw.get("members", ())),
        flags=flags,
        signposts=tuple(str(s) for s in raw.get("signposts", ())),
        kind=str(raw["type"]) if raw.get("type") else None,
        fallback=str(raw["fallback"]) if raw.get("fallback") else None,
    )


def parse_taxonomy(data: Mapping[str, Any]) -> Taxonomy:
    """Build and check a taxonomy: every table present, every group member known."""
    missing = [name for name in TABLES if name not in data]
    if missing:
        raise ValueError(f"taxonomy is missing tables: {', '.join(missing)}")
    tables = {name: Table.of(name, (_term(raw) for raw in data[name])) for name in TABLES}
    types = tables["enquirer_type"]
    for group in tables["enquirer_group"].terms:
        unknown = [m for m in group.members if types.get(m) is None]
        if unknown or not group.members:
            raise ValueError(f"enquirer group {group.id!r} has bad members: {unknown}")
        if group.fallback is not None and group.fallback not in group.members:
            raise ValueError(f"enquirer group {group.id!r}: fallback is not one of its members")
    kinds = tables["platform_type"]
    for platform in tables["platform"].terms:
        if platform.kind is not None and kinds.get(platform.kind) is None:
            raise ValueError(f"platform {platform.id!r} has an unknown type {platform.kind!r}")
    return Taxonomy(tables)


def load_toml(name: str) -> dict[str, Any]:
    """Read one of the data files shipped inside the ``flows`` package."""
    text = resources.files("flows").joinpath("data", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def default_taxonomy() -> Taxonomy:
    """The shipped taxonomy (read once per process)."""
    return parse_taxonomy(load_toml("taxonomy.toml"))
