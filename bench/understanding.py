"""How well the understanding layer reads the labelled corpora, and what it costs.

    python -m bench.understanding [--misses MEASURE]

Prints, for each corpus, the rates the tests hold (children recognised, risks recognised,
figures of speech raising a risk, roles / settings / regions / platforms exact, the right
category among those taken) beside the issue's targets. The corpora were written by three
authors: ``understanding.jsonl`` (the lexicons were written against it), ``tuning.jsonl``
and ``heldout.jsonl`` (a second author, added later and tuned on), and ``fresh.jsonl`` (a
third author, last; its roles and categories were never tuned on). The fresh column is the
honest estimate for text nobody has seen.

Then the cost of reading one message, as a ratio to a baseline measured in the same run:
one case-insensitive search of a single regular expression holding every risk word (what
the bot did before), over the same messages.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable, Sequence

import tests.flows.corpus as corpus
from flows.lexicon import plain
from flows.understanding import default_understander

FILES = ("understanding.jsonl", "tuning.jsonl", "heldout.jsonl", "fresh.jsonl")
BASELINE = re.compile(
    r"\b(?:suicid\w*|kill (?:myself|herself|himself)|self[- ]?harm|overdose|in danger|knife|"
    r"missing|ran away|want(?:s)? to die)\b",
    re.I,
)


def _timed(run: Callable[[str], object], texts: Sequence[str], rounds: int = 5) -> float:
    """Median seconds per message over ``rounds`` passes."""
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            run(text)
        per_round.append((time.perf_counter() - start) / len(texts))
    return statistics.median(per_round)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", metavar="MEASURE", help="also list what one measure missed")
    args = parser.parse_args()
    started = time.perf_counter()
    understander = default_understander()
    loaded = time.perf_counter() - started

    def read(text: str) -> dict[str, object]:
        return understander.read(text).to_json(understander.taxonomy)

    columns = {
        name: corpus.score(read, corpus.load(corpus.CORPUS.with_name(name))) for name in FILES
    }
    measures = list(dict.fromkeys(m for rates in columns.values() for m in rates))
    header = ["measure", *(n.removesuffix(".jsonl") for n in FILES), "target"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for measure in measures:
        cells = []
        for rates in columns.values():
            rate = rates.get(measure)
            cells.append(f"{rate.rate:.1%} ({rate.hits}/{rate.total})" if rate else "-")
        target = corpus.TARGETS.get(measure)
        goal = f"{target[0]} {target[1]:.0%}" if target else ""
        print(" | ".join([measure, *cells, goal]))

    texts = [item["text"] for name in FILES for item in corpus.load(corpus.CORPUS.with_name(name))]
    ours = _timed(understander.read, texts)
    baseline = _timed(lambda t: BASELINE.search(plain(t)), texts)
    print()
    print(f"messages read: {len(texts)}; lexicons loaded and checked in {loaded:.2f} s")
    print(
        f"per message: {ours * 1e6:.0f} µs, baseline (one risk-word regex) "
        f"{baseline * 1e6:.0f} µs: {ours / baseline:.1f}× the baseline"
    )
    if args.misses:
        for name, rates in columns.items():
            for text, expected, got in rates.get(args.misses, corpus.Rate()).misses:
                print(f"[{name}] {text[:200]!r}\n    expected {expected} got {got}")


if __name__ == "__main__":
    main()
