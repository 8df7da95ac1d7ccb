"""The labelled corpus of what enquirers write, and how well the understanding layer reads it.

``understanding.jsonl`` holds utterances written for this (UK English, text-speak, typos,
children and adults writing about children, risks, figures of speech), each labelled with
what a careful practitioner reads in it. :func:`score` runs an understander over them and
returns the rates the tests hold and ``bench/understanding.py`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).with_name("understanding.jsonl")
"""The main corpus; ``tuning.jsonl`` and ``heldout.jsonl`` were written by a second author,
``fresh.jsonl`` by a third, after the lexicons were written (see ``bench/understanding.py``)."""
FIELDS = ("enquirer_type", "setting", "region", "platform_type", "platform")
MISTAKES = frozenset(
    {
        "others taken for children",
        "figures of speech raising a risk",
        "other messages raising a risk",
    }
)
"""Measures that count mistakes (lower is better)."""


def load(path: Path = CORPUS) -> list[dict[str, Any]]:
    """Every labelled utterance of one corpus file."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Rate:
    """How often something happened, and the items that went wrong (for reading them).

    For most measures what happened is right ("children recognised"); for a few it is
    wrong ("figures of speech raising a risk"), and those items are the ones kept.
    """

    hits: int = 0
    total: int = 0
    misses: list[tuple[str, object, object]] = field(default_factory=list)
    counts_mistakes: bool = False

    def add(self, happened: bool, text: str, expected: object, got: object) -> None:
        self.total += 1
        self.hits += happened
        if happened is self.counts_mistakes:
            self.misses.append((text, expected, got))

    @property
    def rate(self) -> float:
        return self.hits / self.total if self.total else 1.0


def score(
    read: Callable[[str], Mapping[str, Any]], items: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Rate]:
    """Run ``read`` (text to the ``helpline understand --json`` shape) over labelled items."""
    rates: dict[str, Rate] = {}

    def add(name: str, happened: bool, text: str, expected: object, got: object) -> None:
        rate = rates.setdefault(name, Rate(counts_mistakes=name in MISTAKES))
        rate.add(happened, text, expected, got)

    for item in load() if items is None else items:
        text = item["text"]
        got = read(text)
        expected_risks = set(item.get("risks", []))
        got_risks = set(got["risks"])
        if item.get("under_18") is True:
            add("children recognised", got["under_18"] is True, text, True, got["under_18"])
        else:
            add("others taken for children", got["under_18"] is True, text, False, got["under_18"])
        if expected_risks:
            add("risks recognised", expected_risks <= got_risks, text, expected_risks, got_risks)
        elif item.get("figure_of_speech"):
            add("figures of speech raising a risk", bool(got_risks), text, set(), got_risks)
        else:
            add("other messages raising a risk", bool(got_risks), text, set(), got_risks)
        for name in FIELDS:
            if name in item:
                add(f"{name} exact", got[name] == item[name], text, item[name], got[name])
        if item.get("categories"):
            wanted = item["categories"]
            ok = any(c in got["categories"] for c in wanted)
            add("right category among those taken", ok, text, wanted, got["categories"])
    return rates


TARGETS: Mapping[str, tuple[str, float]] = {
    "children recognised": (">=", 1.0),
    "risks recognised": (">=", 1.0),
    "figures of speech raising a risk": ("<=", 0.05),
    "enquirer_type exact": (">=", 0.90),
    "setting exact": (">=", 0.90),
    "region exact": (">=", 0.90),
    "platform_type exact": (">=", 0.90),
    "platform exact": (">=", 0.90),
    "right category among those taken": (">=", 0.85),
}
"""The issue's targets: each rate against its bound."""


def meets(name: str, rate: float) -> bool:
    op, bound = TARGETS[name]
    return rate >= bound if op == ">=" else rate <= bound


def rows(rates: Mapping[str, Rate]) -> Iterator[tuple[str, str, str, str]]:
    """(measure, rate, target, met) for printing."""
    for name, rate in rates.items():
        target = TARGETS.get(name)
        goal = f"{target[0]} {target[1]:.0%}" if target else ""
        met = ("yes" if meets(name, rate.rate) else "NO") if target else ""
        yield name, f"{rate.hits}/{rate.total} = {rate.rate:.1%}", goal, met
