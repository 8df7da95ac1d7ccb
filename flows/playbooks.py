"""'While you wait' self-help, from ``data/playbooks.toml``.

After an out-of-hours submission the enquirer can start on the platform's own reporting
route: short in-app steps, the platform's web forms, and the helpline's common advice
(evidence as written notes, never images of children; report first and allow about 48
hours unless there is a safeguarding concern). The wording lives in the data file, so the
helpline can correct it (and the items marked ``verify``) without a release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flows.remit import Audience
from flows.taxonomy import load_toml

GENERIC = "generic"
"""The platform entry used for ``other``, for no platform and for unknown platform ids."""

DEFAULT = "default"
"""The entry key used when none of a case's categories has its own entry."""

MAX_RENDERED = 3500
"""A rendered playbook must stay under this many characters (one chat message)."""


@dataclass(frozen=True, slots=True)
class Link:
    """A web page to open; ``verify`` marks one found in secondary sources."""

    label: str
    url: str
    verify: bool = False


@dataclass(frozen=True, slots=True)
class Playbook:
    """What to do while waiting, for one platform and one kind of problem."""

    platform_name: str
    steps: tuple[str, ...]
    links: tuple[Link, ...]
    notes: tuple[str, ...]
    verify: bool = False
    """True when the steps or a note came from secondary sources (links carry their own)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """Steps and links for one platform and one category (or group, or ``default``)."""

    steps: tuple[str, ...]
    links: tuple[Link, ...] = ()
    verify: bool = False


@dataclass(frozen=True, slots=True)
class Platform:
    """A platform's display name and its entries, by key."""

    id: str
    name: str
    entries: Mapping[str, Entry]


@dataclass(frozen=True, slots=True)
class Note:
    """Common advice, shown with every playbook unless limited to or from some categories."""

    name: str
    text: str
    only: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()
    links: tuple[Link, ...] = ()
    verify: bool = False
    variants: Mapping[str, str] = field(default_factory=dict)
    """The note worded for one kind of reader (``text_dsl``: a DSL is not told to tell one)."""

    def text_for(self, audience: Audience | None) -> str:
        """The note worded for this reader: the closest variant, else the plain text."""
        chain = audience.chain if audience else ()
        return next((self.variants[a] for a in chain if a in self.variants), self.text)

    def applies(self, categories: frozenset[str]) -> bool:
        """Whether the note goes with a playbook for these categories."""
        if self.only is not None and not self.only & categories:
            return False
        return not self.excluded & categories


@dataclass(frozen=True, slots=True)
class Playbooks:
    """All the playbooks, with the lookup by platform and categories."""

    platforms: Mapping[str, Platform]
    groups: Mapping[str, tuple[str, ...]]
    notes: tuple[Note, ...]
    title: str
    links_heading: str
    notes_heading: str

    def keys_for(self, category_id: str) -> tuple[str, ...]:
        """The entry keys that can serve a category: its own id, then its groups."""
        groups = (name for name, members in self.groups.items() if category_id in members)
        return (category_id, *groups)

    def _entry_for(self, platform: Platform, category_ids: Sequence[str]) -> Entry | None:
        for category_id in category_ids:
            for key in self.keys_for(category_id):
                entry = platform.entries.get(key)
                if entry is not None:
                    return entry
        return None

    def for_case(
        self,
        platform_id: str | None,
        category_ids: Sequence[str],
        audience: Audience | None = None,
    ) -> Playbook:
        """The most specific playbook for a case, its notes worded for ``audience``.

        The first category (in the given order) with an entry for the platform; else the
        platform's default; else the generic entry for a category; else the generic default.
        """
        categories = tuple(category_ids)
        generic = self.platforms[GENERIC]
        platform = self.platforms.get(platform_id or GENERIC, generic)
        entry = self._entry_for(platform, categories) or platform.entries.get(DEFAULT)
        if entry is None:
            entry = self._entry_for(generic, categories) or generic.entries[DEFAULT]
        chosen = frozenset(categories)
        notes = tuple(note for note in self.notes if note.applies(chosen))
        links = _unique((*entry.links, *(link for note in notes for link in note.links)))
        return Playbook(
            platform_name=platform.name,
            steps=entry.steps,
            links=links,
            notes=tuple(note.text_for(audience) for note in notes),
            verify=entry.verify or any(note.verify for note in notes),
        )

    def render(self, playbook: Playbook) -> str:
        """Plain text for one chat message: numbered steps, then links, then notes."""
        lines = [self.title.replace("{platform}", playbook.platform_name), ""]
        lines += [f"{number}. {step}" for number, step in enumerate(playbook.steps, 1)]
        if playbook.links:
            lines += ["", self.links_heading]
            lines += [f"{link.label}: {link.url}" for link in playbook.links]
        if playbook.notes:
            lines += ["", self.notes_heading]
            lines += [f"- {note}" for note in playbook.notes]
        return "\n".join(lines)

    def all_links(self) -> tuple[Link, ...]:
        """Every link in the data (entries and notes), each URL once."""
        entries = (e for p in self.platforms.values() for e in p.entries.values())
        return _unique(
            (
                *(link for entry in entries for link in entry.links),
                *(link for note in self.notes for link in note.links),
            )
        )


def _unique(links: Iterable[Link]) -> tuple[Link, ...]:
    seen: set[str] = set()
    kept: list[Link] = []
    for link in links:
        if link.url not in seen:
            seen.add(link.url)
            kept.append(link)
    return tuple(kept)


def check_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` is an https address with a dotted host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or "." not in host or any(c.isspace() for c in url):
        raise ValueError(f"playbook link is not a well-formed https URL: {url!r}")


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise ValueError(f"{where} must be a list of non-empty strings")
    return tuple(raw)


def _links(raw: Any, where: str) -> tuple[Link, ...]:
    if not isinstance(raw, list):
        raise ValueError(f"{where}.links must be a list")
    links = []
    for item in raw:
        if not isinstance(item, Mapping) or not item.get("label") or not item.get("url"):
            raise ValueError(f"{where}.links needs a label and a url in each item")
        url = str(item["url"])
        check_url(url)
        links.append(Link(str(item["label"]), url, bool(item.get("verify", False))))
    return tuple(links)


def _entry(raw: Mapping[str, Any], where: str) -> Entry:
    steps = _strings(raw.get("steps"), f"{where}.steps")
    if not steps:
        raise ValueError(f"{where} has no steps")
    links = _links(raw.get("links", []), where)
    return Entry(steps, links, bool(raw.get("verify", False)))


def _platform(platform_id: str, raw: Mapping[str, Any]) -> Platform:
    where = f"platform.{platform_id}"
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where} needs a name")
    entries = {
        key: _entry(value, f"{where}.{key}")
        for key, value in raw.items()
        if isinstance(value, Mapping)
    }
    return Platform(platform_id, name, entries)


def _note(name: str, raw: Any, groups: Mapping[str, tuple[str, ...]]) -> Note:
    def expand(keys: Any, field_name: str) -> frozenset[str]:
        ids: set[str] = set()
        for key in _strings(keys, f"common.{name}.{field_name}"):
            ids.update(groups.get(key, (key,)))
        return frozenset(ids)

    if isinstance(raw, str):
        return Note(name, raw)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("text"), str):
        raise ValueError(f"common.{name} must be a string or a table with text")
    readers = {a.value for a in Audience}
    variants = {
        key.removeprefix("text_"): str(value)
        for key, value in raw.items()
        if key.startswith("text_")
    }
    if unknown := sorted(set(variants) - readers):
        raise ValueError(f"common.{name} has wording for unknown readers: {unknown}")
    return Note(
        name=name,
        text=raw["text"],
        variants=variants,
        only=expand(raw["only"], "only") if "only" in raw else None,
        excluded=expand(raw.get("except", []), "except"),
        links=_links(raw.get("links", []), f"common.{name}"),
        verify=bool(raw.get("verify", False)),
    )


def parse_playbooks(data: Mapping[str, Any]) -> Playbooks:
    """Build and check the playbooks: a generic default exists, every link is https."""
    text = data.get("text", {})
    headings = {key: text.get(key) for key in ("title", "links", "notes")}
    if not all(isinstance(value, str) for value in headings.values()):
        raise ValueError("playbooks need [text] title, links and notes")
    groups = {
        name: _strings(members, f"groups.{name}")
        for name, members in data.get("groups", {}).items()
    }
    notes = tuple(_note(name, raw, groups) for name, raw in data.get("common", {}).items())
    platforms = {pid: _platform(pid, raw) for pid, raw in data.get("platform", {}).items()}
    if GENERIC not in platforms or DEFAULT not in platforms[GENERIC].entries:
        raise ValueError("playbooks need [platform.generic.default]")
    return Playbooks(
        platforms=platforms,
        groups=groups,
        notes=notes,
        title=str(headings["title"]),
        links_heading=str(headings["links"]),
        notes_heading=str(headings["notes"]),
    )


@cache
def default_playbooks() -> Playbooks:
    """The shipped playbooks (read once per process)."""
    return parse_playbooks(load_toml("playbooks.toml"))
