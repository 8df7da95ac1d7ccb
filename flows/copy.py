"""The bot's wording, loaded from ``data/copy.toml``: one editable place for every sentence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from flows.taxonomy import load_toml

if TYPE_CHECKING:
    from flows.remit import Audience


@dataclass(frozen=True, slots=True)
class Copy:
    """Looks sentences up by dotted key (``"questions.subject"``) and fills placeholders."""

    entries: Mapping[str, str]

    def __call__(self, key: str, **values: object) -> str:
        """The wording for ``key``, with ``values`` filled in; an unknown key is named."""
        try:
            template = self.entries[key]
        except KeyError:
            raise KeyError(f"copy.toml has no entry {key!r}") from None
        return template.format(**values) if values else template

    def worded(self, key: str, audience: Audience | None, **values: object) -> str:
        """The sentence as worded for this reader (``key.dsl``, ``key.professional``…), or
        the plain one when there is no wording of their own."""
        for variant in audience.chain if audience else ():
            if f"{key}.{variant}" in self.entries:
                return self(f"{key}.{variant}", **values)
        return self(key, **values)


def _flatten(prefix: str, data: Mapping[str, Any], into: dict[str, str]) -> None:
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            # A table with only "text" may be addressed by its own name too.
            if "text" in value:
                into[dotted] = str(value["text"])
            _flatten(dotted, value, into)
        else:
            into[dotted] = str(value)


def parse_copy(data: Mapping[str, Any]) -> Copy:
    """The wording from ``copy.toml``'s nested tables, as flat dotted keys."""
    entries: dict[str, str] = {}
    _flatten("", data, entries)
    return Copy(entries)


@cache
def default_copy() -> Copy:
    """The shipped wording (read once per process)."""
    return parse_copy(load_toml("copy.toml"))
