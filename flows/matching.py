"""Free text to option by its names: "secondary school", "I'm a DSL" or "2" picks an option.

Busy people type rather than tap. Text is accepted as an option when it names exactly
one of them (by number, label, id or alias); anything ambiguous is left to the
understanding layer (``flows/understanding.py``), which knows typos, towns and roles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_FILLER = re.compile(
    r"^(?:(?:i\s*['’]?\s*m|i am|we\s*['’]?\s*re|we are|it\s*['’]?\s*s|it is|its"
    r"|i work (?:in|at|for)|we work (?:in|at|for)|on|in|at|a|an|the|my|our|as|from|about)\s+)+"
)
_NON_WORD = re.compile(r"[^\w'’+/-]+")
_SPLIT = re.compile(r"\s*(?:,|;|&|\band\b|\bplus\b)\s*")


def normalise(text: str) -> str:
    """Lower-case, punctuation to spaces, leading filler ("I'm a", "it's on") removed."""
    words = _NON_WORD.sub(" ", text.casefold()).strip()
    words = re.sub(r"\s+", " ", words)
    return _FILLER.sub("", words).strip(" -/'’")


@dataclass(frozen=True, slots=True)
class Choice:
    """An option with every way of naming it."""

    id: str
    names: tuple[str, ...]


def _exact(text: str, choices: Sequence[Choice]) -> str | None:
    if re.fullmatch(r"[0-9]{1,3}", text):
        index = int(text) - 1
        return choices[index].id if 0 <= index < len(choices) else None
    hits = [c.id for c in choices if text in c.names]
    return hits[0] if len(set(hits)) == 1 else None


def _contained(text: str, choices: Sequence[Choice]) -> str | None:
    """The one option whose longest name appears as whole words in ``text``."""
    best: dict[str, int] = {}
    padded = f" {text} "
    for choice in choices:
        for name in choice.names:
            if len(name) >= 2 and f" {name} " in padded:
                best[choice.id] = max(best.get(choice.id, 0), len(name))
    if not best:
        return None
    longest = max(best.values())
    winners = [cid for cid, size in best.items() if size == longest]
    return winners[0] if len(winners) == 1 else None


def match_one(text: str, choices: Sequence[Choice]) -> str | None:
    """The id of the single option ``text`` names, or None."""
    cleaned = normalise(text)
    if not cleaned:
        return None
    return _exact(cleaned, choices) or _contained(cleaned, choices)


def match_exact(text: str, choices: Sequence[Choice]) -> str | None:
    """The id of the option ``text`` is (its number, or one of its names whole), or None:
    for a menu under free text, where words that merely contain a name are a message."""
    cleaned = normalise(text)
    return _exact(cleaned, choices) if cleaned else None


def split_parts(text: str) -> list[str]:
    """The parts of "1, 3" or "bullying and hate speech", for a multiple choice."""
    return [p for p in _SPLIT.split(text) if p.strip()]


def choices_for(options: Sequence[tuple[str, Sequence[str]]]) -> tuple[Choice, ...]:
    """Build matchable choices from (id, names) pairs, normalising every name."""
    return tuple(
        Choice(oid, tuple(dict.fromkeys(n for n in (normalise(x) for x in names) if n)))
        for oid, names in options
    )
