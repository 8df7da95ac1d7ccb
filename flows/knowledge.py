"""Everything the conversation knows that is not code: the helpline's editable data.

One :class:`Knowledge` bundles the taxonomy, the signposting directory, the wording, the
self-help playbooks and the lexicons; the flow's callbacks take it (never the flow
itself), so each piece of logic sees exactly the data it reads. It is checked as a whole
when it is built: a category naming a service the directory lacks fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property

from flows.copy import Copy, default_copy
from flows.playbooks import Playbooks, default_playbooks
from flows.remit import Directory, default_directory
from flows.taxonomy import Taxonomy, default_taxonomy
from flows.understanding import Understander, default_understander


@dataclass(frozen=True)
class Knowledge:
    """The data files, loaded and checked against each other."""

    taxonomy: Taxonomy
    directory: Directory
    copy: Copy
    playbooks: Playbooks
    read_lexicons: Callable[[], Understander] = field(repr=False)
    """Builds the understander: see :attr:`understander`."""

    def __post_init__(self) -> None:
        for category in self.taxonomy["category"].terms:
            if unknown := [s for s in category.signposts if s not in self.directory.services]:
                raise ValueError(f"category {category.id!r} names unknown services {unknown}")

    @cached_property
    def understander(self) -> Understander:
        """The lexicons' reader, built on first use: compiling them takes about a second,
        which a command that never reads a message (``helpline cases``, ``report``…) should
        not wait for. The service builds it as it starts, so a bad lexicon stops it there."""
        understander = self.read_lexicons()
        if understander.taxonomy is not self.taxonomy:
            raise ValueError("the lexicons were read against another taxonomy")
        return understander


@cache
def default_knowledge() -> Knowledge:
    """The shipped data files (read and checked once per process)."""
    return Knowledge(
        taxonomy=default_taxonomy(),
        directory=default_directory(),
        copy=default_copy(),
        playbooks=default_playbooks(),
        read_lexicons=default_understander,
    )
