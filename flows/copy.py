"""The bot's wording, loaded from ``data/copy.toml``: one editable place for every sentence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from flows.taxonomy import load_toml


@dataclass(frozen=True, slots=True)
class Copy:
    """Looks sentences up by dotted key (``"questions.subject"``) and fills placeholders."""

    entries: Mapping[str, str]

    def __call__(self, key: str, **values: object) -> str:
        try:
            template = self.entries[key]
        except KeyError:
            raise KeyError(f"copy.toml has no entry {key!r}") from None
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        return key in self.entries


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
    entries: dict[str, str] = {}
    _flatten("", data, entries)
    return Copy(entries)


@cache
def default_copy() -> Copy:
    """The shipped wording (read once per process)."""
    return parse_copy(load_toml("copy.toml"))
