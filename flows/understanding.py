"""What a message says: who is writing, about what, where, and how serious it is.

Every channel's every inbound text goes through :meth:`Understander.read`: a child writing
about themselves, risk to life, the enquirer's role, setting, region, platform, the kind
of concern, links and whether it was already reported. It is pure and data-driven: the
phrases are in ``data/lexicon.toml`` and ``data/places.toml`` (see :mod:`flows.lexicon` for
their notation), the names of every option in ``data/taxonomy.toml``, and typos are caught
by fuzzy matching (rapidfuzz) against those names.

A long message is read strictly (a role counts when the writer says it of themselves:
"I'm the DSL", not "our DSL told me"); a short answer to a question is read for that
question's field leniently (``answering``): "DSL" alone answers "who are you?".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from itertools import pairwise
from typing import Any

from rapidfuzz import fuzz, process

from flows.lexicon import NOTHING, LexiconError, Phrases, blank, phrases, plain
from flows.matching import normalise
from flows.messages import Command
from flows.taxonomy import Taxonomy, Term, default_taxonomy, load_toml
from flows.validate import find_links

Span = tuple[int, int]

READ_LIMIT = 20_000
"""Characters of a message that are read (descriptions are capped below this anyway)."""

FUZZY_CUTOFF = 85
"""rapidfuzz ``ratio`` a typo must reach ("bulying" is 93 from "bullying")."""

FUZZY_MIN = 6
"""Names shorter than this are matched exactly: "snap" and "sc" are too close to words."""

SHORT_ANSWER = 6
"""A message of at most this many words may be a bare answer ("safeguarding lead")."""


class Risk(StrEnum):
    """Kinds of risk that put 999 and the crisis lines first."""

    DANGER = "danger"
    SELF_HARM = "self_harm"


class Field(StrEnum):
    """What a question asks about, so a short answer can be read for that field."""

    ROLE = "role"
    SETTING = "setting"
    REGION = "region"
    PLATFORM_TYPE = "platform_type"
    PLATFORM = "platform"
    CATEGORIES = "categories"


@dataclass(frozen=True, slots=True)
class Understanding:
    """What one message says, as taxonomy ids (``to_json`` gives the labels)."""

    under_18: bool | None = None
    """True: the writer is a child writing about themselves; False: clearly an adult."""
    child_certain: bool = False
    """The child said so plainly (an age, a school year), not only suggested it."""
    enquirer_type: str | None = None
    enquirer_group: str | None = None
    setting: str | None = None
    region: str | None = None
    platform_type: str | None = None
    platform: str | None = None
    categories: tuple[str, ...] = ()
    """Those the message points to, most likely first."""
    category_scores: Mapping[str, int] = field(default_factory=dict)
    """Every category with any cue, for ordering a menu."""
    risks: tuple[Risk, ...] = ()
    links: tuple[str, ...] = ()
    already_reported: bool | None = None
    own_images: bool = False
    """An adult's own intimate images shared or threatened."""
    words: int = 0

    def value(self, field_name: Field) -> str | None:
        """The id understood for a single-valued field, if any."""
        if field_name is Field.ROLE:
            return self.enquirer_type
        if field_name is Field.CATEGORIES:
            return self.categories[0] if self.categories else None
        return getattr(self, field_name.value)  # type: ignore[no-any-return]

    def to_json(self, taxonomy: Taxonomy) -> dict[str, Any]:
        """The shape ``helpline understand --json`` prints: labels as the taxonomy has them."""

        def label(table: str, term_id: str | None) -> str | None:
            term = taxonomy[table].get(term_id) if term_id else None
            return term.label if term else None

        return {
            "under_18": self.under_18,
            "enquirer_type": label("enquirer_type", self.enquirer_type),
            "setting": label("setting", self.setting),
            "region": label("region", self.region),
            "platform_type": label("platform_type", self.platform_type),
            "platform": label("platform", self.platform),
            "categories": [taxonomy["category"][c].label for c in self.categories],
            "risks": [r.value for r in self.risks],
            "links": list(self.links),
        }


# Reading the data files ---------------------------------------------------------------------

_NOTATION = re.compile(r"[()\[\]{}<>|*]")
_QUOTED = re.compile(r"[\"“”«»](.{1,400}?)[\"“”«»]|(?<!\w)['‘’](.{1,400}?)['‘’](?!\w)", re.S)
_SKIPPED_ROLES = frozenset({"child", "unknown", "out_of_remit"})
_SKIPPED_SETTINGS = frozenset({"none"})
_SKIPPED_REGIONS = frozenset({"unknown"})
_SKIPPED_TYPES = frozenset({"out_of_remit"})
_SKIPPED_CATEGORIES = frozenset({"other", "out_of_remit", "prank"})


def _section(data: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    node: Any = data
    for key in path:
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    if not isinstance(node, Mapping):
        raise LexiconError(f"lexicon.toml [{'.'.join(path)}] must be a table")
    return node


def _list(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LexiconError(f"{where} {key} must be a list of phrases")
    return list(value)


def _names(term: Term) -> list[str]:
    """Every name of a taxonomy term, with any notation characters taken out."""
    raw = (term.label, term.text, *term.aliases)
    cleaned = (" ".join(_NOTATION.sub(" ", n).split()) for n in raw)
    return list(dict.fromkeys(n for n in cleaned if plain(n)))


def _unknown(ids: Iterable[str], known: Iterable[str], where: str) -> None:
    missing = sorted(set(ids) - set(known))
    if missing:
        raise LexiconError(f"{where} names unknown ids: {', '.join(missing)}")


@dataclass(frozen=True, slots=True)
class _Options:
    """Phrases for each id of one field: strict (long messages) and lenient (answers)."""

    strict: Mapping[str, Phrases]
    lenient: Mapping[str, Phrases]
    fuzzy: Mapping[str, str]
    """Single names of at least :data:`FUZZY_MIN` letters, to their id (short answers)."""
    strict_fuzzy: Mapping[str, str] = field(default_factory=dict)
    """The same for names that count in a long message."""

    def best(self, text: str, *, lenient: bool, boost: Phrases = NOTHING) -> str | None:
        """The id named most often (a name inside a longer one doesn't count: "Newcastle"
        in "Newcastle-under-Lyme"); one named right after ``boost`` words counts a little
        more ("… screenshots are on Snapchat"). A tie between two named close together
        ("Bangor, County Down") goes to the later, more specific one; otherwise to the first."""
        table = self.lenient if lenient else self.strict
        found = [(term_id, span) for term_id, ph in table.items() for span in ph.spans(text)]
        found = [
            (term_id, (a, b))
            for term_id, (a, b) in found
            if not any(
                c <= a and b <= d and (c, d) != (a, b) and other != term_id
                for other, (c, d) in found
            )
        ]
        if not found:
            return None
        after = {end for _, end in boost.spans(text)}
        score: dict[str, float] = {}
        first: dict[str, int] = {}
        for term_id, (a, _) in found:
            score[term_id] = score.get(term_id, 0) + 1 + 0.5 * (a - 1 in after)
            first.setdefault(term_id, a)
        top = max(score.values())
        tied = sorted((first[t], t) for t in score if score[t] == top)
        if len(tied) > 1 and _words_between(text, tied[0][0], tied[-1][0]) <= 5:
            return tied[-1][1]
        return tied[0][1]

    def guess(self, words: Sequence[str], *, lenient: bool = True) -> str | None:
        """The id whose name one of ``words`` misspells (same first letter, close enough)."""
        names = self.fuzzy if lenient else self.strict_fuzzy
        for word in words:
            if len(word) < FUZZY_MIN - 1 or not names or (not lenient and word in self.fuzzy):
                continue
            hit = process.extractOne(
                word, list(names), scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
            )
            if hit is not None and hit[0][0] == word[0]:
                return names[hit[0]]
        return None


def _fuzzy_names(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, term_id in pairs:
        key = plain(name)
        if " " not in key and len(key) >= FUZZY_MIN and key.isalpha():
            out.setdefault(key, term_id)
    return out


class Understander:
    """Reads messages with the helpline's lexicons; built (and checked) once per process."""

    def __init__(
        self, taxonomy: Taxonomy, lexicon: Mapping[str, Any], places: Mapping[str, Any]
    ) -> None:
        self.taxonomy = taxonomy
        words = _section(lexicon, "words")
        for name, items in words.items():
            if not isinstance(items, list) or not items:
                raise LexiconError(f"lexicon.toml [words] {name} must be a non-empty list")
        self._words: Mapping[str, list[str]] = {k: list(v) for k, v in words.items()}

        child = _section(lexicon, "child")
        self._child_says = self._phrases(child, "says", "[child]")
        self._child_suggests = self._phrases(child, "suggests", "[child]")
        self._child_adult = self._phrases(child, "adult", "[child]")
        self._child_except = self._phrases(child, "except", "[child]")
        self._reported_speech = [plain(w) for w in _list(child, "reported", "[child]")]

        self._risks = {
            risk: self._phrases(_section(lexicon, "risk", risk.value), "says", f"[risk.{risk}]")
            for risk in Risk
        }
        self._figures = self._phrases(_section(lexicon, "risk"), "figures", "[risk]")

        self._build_roles(_section(lexicon, "role"), _section(lexicon, "group"))
        self._build_settings(_section(lexicon, "setting"))
        self._build_regions(places)
        self._build_platforms(_section(lexicon, "platform"), _section(lexicon, "platform_type"))
        self._build_categories(_section(lexicon, "category"))

        reported = _section(lexicon, "reported")
        self._reported_yes = self._phrases(reported, "yes", "[reported]")
        self._reported_no = self._phrases(reported, "no", "[reported]")
        self._skip = self._phrases(_section(lexicon, "skip"), "says", "[skip]")
        self._unsure = self._phrases(_section(lexicon, "unsure"), "says", "[unsure]")
        self._greeting = self._phrases(_section(lexicon, "greeting"), "says", "[greeting]")
        self._own_images = self._phrases(_section(lexicon, "own_images"), "says", "[own_images]")
        copy_request = _section(lexicon, "copy_request")
        self._copy_request = self._phrases(copy_request, "says", "[copy_request]")
        answers = _section(lexicon, "answers")
        self.answers: Mapping[str, tuple[str, ...]] = {
            key: tuple(_list(answers, key, "[answers]")) for key in answers
        }
        """Other names for the flow's own options, by option key (copy.toml [options])."""
        commands = _section(lexicon, "commands")
        _unknown(commands, (c.value for c in Command), "lexicon.toml [commands]")
        self._commands = {
            normalise(word): Command(name)
            for name in commands
            for word in _list(commands, name, "[commands]")
        }

    def _phrases(self, data: Mapping[str, Any], key: str, where: str) -> Phrases:
        return phrases(_list(data, key, where), self._words, where=f"lexicon.toml {where} {key}")

    def _compile(self, items: Iterable[str], where: str) -> Phrases:
        return phrases(items, self._words, where=where)

    # Building ------------------------------------------------------------------------------

    def _build_roles(self, role: Mapping[str, Any], group: Mapping[str, Any]) -> None:
        types = self.taxonomy["enquirer_type"]
        groups = self.taxonomy["enquirer_group"]
        answer_only = {plain(n) for n in _list(role, "answer_only", "[role]")}
        claims = {k: v for k, v in role.items() if isinstance(v, Mapping)}
        _unknown(claims, (t.id for t in types.terms), "lexicon.toml [role.*]")
        prefer = _list(role, "prefer", "[role]")
        _unknown(prefer, (t.id for t in types.terms), "lexicon.toml [role] prefer")
        self._role_rank = {role_id: index for index, role_id in enumerate(prefer)}
        self._role_not = sorted({plain(n) for n in _list(role, "not", "[role]")}, key=len)
        self._signoff = self._phrases(role, "signoff", "[role]")
        strict: dict[str, Phrases] = {}
        lenient: dict[str, Phrases] = {}
        bare: dict[str, Phrases] = {}
        capacity: dict[str, Phrases] = {}
        fuzzy: list[tuple[str, str]] = []
        strict_fuzzy: list[tuple[str, str]] = []
        for term in types.terms:
            if term.id in _SKIPPED_ROLES or not term.offered:
                continue
            names = _names(term)
            loose = [n for n in names if plain(n) not in answer_only]
            own = _list(claims.get(term.id, {}), "claims", f"[role.{term.id}]")
            where = f"lexicon.toml [role.{term.id}]"
            named = "|".join(loose)
            said = [
                f"{{self}} [{{article}}] ({named})",
                f"{{self}} <18-99> and [{{article}}] ({named})",
                f"({named}) here",
                # Opening with the role: "Deputy head, secondary, Swindon."
                f"^ [{{greeting}}] [.] ({named})",
                f"{{self}} [{{article}}] <1-50> (year|years|yr) [{{seasoned}}] ({named})",
            ]
            strict[term.id] = self._compile([*(said if loose else []), *own], where)
            capacity[term.id] = self._compile(
                _list(claims.get(term.id, {}), "capacity", f"[role.{term.id}]"), where
            )
            lenient[term.id] = self._compile([*names, *own], where)
            signed = [c for c in own if "{self}" not in c and not c.startswith("^")]
            bare[term.id] = self._compile([*loose, *signed], where) if loose or signed else NOTHING
            fuzzy += [(n, term.id) for n in names]
            strict_fuzzy += [(n, term.id) for n in loose]
        self._roles = _Options(strict, lenient, _fuzzy_names(fuzzy), _fuzzy_names(strict_fuzzy))
        self._role_bare = bare
        self._role_capacity = {rid: ph for rid, ph in capacity.items() if ph}
        cues = {k: v for k, v in group.items() if isinstance(v, Mapping)}
        _unknown(cues, (g.id for g in groups.terms), "lexicon.toml [group.*]")
        self._groups = {
            gid: self._phrases(raw, "cues", f"[group.{gid}]") for gid, raw in cues.items()
        }
        self._self_said = self._compile(["{self} [{article}]"], "lexicon.toml [words] self")

    def _build_settings(self, setting: Mapping[str, Any]) -> None:
        answer_only = {plain(n) for n in _list(setting, "answer_only", "[setting]")}
        tables = {k: v for k, v in setting.items() if isinstance(v, Mapping)}
        _unknown(tables, (t.id for t in self.taxonomy["setting"].terms), "[setting.*]")
        strict: dict[str, Phrases] = {}
        lenient: dict[str, Phrases] = {}
        fuzzy: list[tuple[str, str]] = []
        strict_fuzzy: list[tuple[str, str]] = []
        for term in self.taxonomy["setting"].terms:
            names = _names(term)
            says = _list(tables.get(term.id, {}), "says", f"[setting.{term.id}]")
            where = f"lexicon.toml [setting.{term.id}]"
            lenient[term.id] = self._compile([*names, *says], where)
            fuzzy += [(n, term.id) for n in names]
            if term.id not in _SKIPPED_SETTINGS:
                loose = [n for n in names if plain(n) not in answer_only]
                strict[term.id] = self._compile([*loose, *says], where)
                strict_fuzzy += [(n, term.id) for n in loose]
        self._settings = _Options(strict, lenient, _fuzzy_names(fuzzy), _fuzzy_names(strict_fuzzy))

    def _build_regions(self, places: Mapping[str, Any]) -> None:
        regions = self.taxonomy["region"]
        context = _section(places, "context")
        needs = {plain(p) for p in _list(context, "needs", "places.toml [context]")}
        after = _list(context, "after", "places.toml [context]")
        if not after:
            raise LexiconError("places.toml [context] after must list the words before a place")
        self._words = {**self._words, "place_context": after}
        listed = {k: v for k, v in _section(places, "region").items()}
        _unknown(listed, (t.id for t in regions.terms), "places.toml [region.*]")
        owner: dict[str, str] = {}
        for region_id, raw in listed.items():
            for place in _list(raw, "places", f"places.toml [region.{region_id}]"):
                key = plain(place)
                if owner.get(key, region_id) != region_id:
                    raise LexiconError(
                        f"places.toml: {place!r} is under both {owner[key]} and {region_id}"
                    )
                owner[key] = region_id
        strict: dict[str, Phrases] = {}
        lenient: dict[str, Phrases] = {}
        fuzzy: list[tuple[str, str]] = []
        strict_fuzzy: list[tuple[str, str]] = []
        for term in regions.terms:
            names = _names(term)
            mine = [p for p, r in owner.items() if r == term.id]
            free = [p for p in mine if p not in needs]
            tied = [p for p in mine if p in needs]
            where = f"places.toml [region.{term.id}]"
            lenient[term.id] = self._compile([*names, *mine], where)
            fuzzy += [(n, term.id) for n in (*names, *mine)]
            if term.id in _SKIPPED_REGIONS:
                continue
            loose = [n for n in names if len(plain(n)) > 3]
            in_context = [f"{{place_context}} [the] ({'|'.join(tied)})"] if tied else []
            strict[term.id] = self._compile([*loose, *free, *in_context], where)
            strict_fuzzy += [(n, term.id) for n in (*loose, *free, *tied)]
        self._regions = _Options(strict, lenient, _fuzzy_names(fuzzy), _fuzzy_names(strict_fuzzy))
        self._context = self._compile(["{place_context}"], "places.toml [context] after")
        self._not_places = self._compile(
            _list(context, "not", "places.toml [context]"), "places.toml [context] not"
        )

    def _build_platforms(self, platform: Mapping[str, Any], kinds: Mapping[str, Any]) -> None:
        answer_only = {plain(n) for n in _list(platform, "answer_only", "[platform]")}
        tables = {k: v for k, v in platform.items() if isinstance(v, Mapping)}
        _unknown(tables, (t.id for t in self.taxonomy["platform"].terms), "[platform.*]")
        strict: dict[str, Phrases] = {}
        lenient: dict[str, Phrases] = {}
        fuzzy: list[tuple[str, str]] = []
        strict_fuzzy: list[tuple[str, str]] = []
        for term in self.taxonomy["platform"].terms:
            names = _names(term)
            says = _list(tables.get(term.id, {}), "says", f"[platform.{term.id}]")
            where = f"lexicon.toml [platform.{term.id}]"
            lenient[term.id] = self._compile([*names, *says], where)
            if term.id == "other":
                continue
            loose = [n for n in names if plain(n) not in answer_only and len(plain(n)) > 3]
            strict[term.id] = self._compile([*loose, *says], where)
            fuzzy += [(n, term.id) for n in names]
            strict_fuzzy += [(n, term.id) for n in loose]
        self._platforms = _Options(strict, lenient, _fuzzy_names(fuzzy), _fuzzy_names(strict_fuzzy))
        tables = {k: v for k, v in kinds.items() if isinstance(v, Mapping)}
        _unknown(tables, (t.id for t in self.taxonomy["platform_type"].terms), "[platform_type.*]")
        strict = {}
        lenient = {}
        for term in self.taxonomy["platform_type"].terms:
            says = _list(tables.get(term.id, {}), "says", f"[platform_type.{term.id}]")
            where = f"lexicon.toml [platform_type.{term.id}]"
            lenient[term.id] = self._compile([*_names(term), *says], where)
            if term.id not in _SKIPPED_TYPES and says:
                strict[term.id] = self._compile(says, where)
        self._kinds = _Options(strict, lenient, {})
        self._on = self._phrases(platform, "where", "[platform]")

    def _build_categories(self, category: Mapping[str, Any]) -> None:
        terms = self.taxonomy["category"].terms
        tables = {k: v for k, v in category.items() if isinstance(v, Mapping)}
        _unknown(tables, (t.id for t in terms), "lexicon.toml [category.*]")
        self._category_order = {t.id: i for i, t in enumerate(terms)}
        self._category_cues: dict[str, tuple[Phrases, Phrases, Phrases, Phrases]] = {}
        fuzzy: list[tuple[str, str]] = []
        for term in terms:
            if not term.offered:
                continue
            raw = tables.get(term.id, {})
            where = f"lexicon.toml [category.{term.id}]"
            says = _list(raw, "says", where)
            names = _names(term)
            self._category_cues[term.id] = (
                self._compile(says, where),
                self._compile(_list(raw, "hints", where), where),
                self._compile(names, f"taxonomy.toml category {term.id}"),
                self._compile(_list(raw, "except", where), where),
            )
            if term.id not in _SKIPPED_CATEGORIES:
                fuzzy += [(n, term.id) for n in (*names, *says)]
        self._category_fuzzy = _Options({}, {}, _fuzzy_names(fuzzy))

    # Reading ---------------------------------------------------------------------------------

    def read(self, text: str, *, answering: Field | None = None) -> Understanding:
        """Everything ``text`` says; ``answering`` names the question a short reply answers."""
        raw = text[:READ_LIMIT]
        said = plain(raw)
        tokens = [w for w in said.split() if w not in (".", "~")]
        short = len(tokens) <= SHORT_ANSWER

        def lenient(field_name: Field) -> bool:
            # A short message is a bare answer: to the question asked, or, with none
            # asked (a first message, `helpline understand`), to any of them.
            return short and answering in (field_name, None)

        risky = blank(said, self._figures.spans(said))
        risks = tuple(risk for risk, ph in self._risks.items() if ph.search(risky))
        role, named = self._role(said, raw, lenient=lenient(Field.ROLE))
        certain, under_18 = self._child(raw, role)
        rest = blank(said, named)  # "social worker" says nothing about social networks
        group = None
        if under_18:
            role, group = "child", "young"
        elif role is not None:
            found = self.taxonomy.group_of(role)
            group = found.id if found else None
        else:
            group = next((gid for gid, ph in self._groups.items() if ph.search(said)), None)
        platform = self._platforms.best(rest, lenient=lenient(Field.PLATFORM), boost=self._on)
        if platform is None:
            platform = self._platforms.guess(
                _candidates(tokens) if lenient(Field.PLATFORM) else tokens,
                lenient=lenient(Field.PLATFORM),
            )
        kind = self.taxonomy["platform"][platform].kind if platform else None
        if kind is None:
            kind = self._kinds.best(rest, lenient=lenient(Field.PLATFORM_TYPE))
        scores = self._category_scores(said, tokens, lenient=lenient(Field.CATEGORIES))
        ranked = sorted(scores, key=lambda c: (-scores[c], self._category_order[c]))
        return Understanding(
            under_18=under_18,
            child_certain=certain,
            enquirer_type=role,
            enquirer_group=group,
            setting=self._pick(self._settings, said, tokens, lenient=lenient(Field.SETTING)),
            region=self._region(said, tokens, lenient(Field.REGION)),
            platform_type=kind,
            platform=platform,
            categories=self._read_categories(ranked, scores),
            category_scores=scores,
            risks=risks,
            links=tuple(find_links(raw)),
            already_reported=self._reported(said),
            own_images=bool(self._own_images.search(said)),
            words=len(tokens),
        )

    def _read_categories(self, ranked: Sequence[str], scores: Mapping[str, int]) -> tuple[str, ...]:
        """The categories a message points to: those cued strongly enough, without the
        ones the data marks ``only_alone`` when a more specific one is there."""
        found = [c for c in ranked if scores[c] >= 2]
        specific = [c for c in found if "only_alone" not in self.taxonomy["category"][c].flags]
        return tuple(c for c in found if c in specific or not specific)

    def command(self, text: str) -> Command | None:
        """The navigation command a whole message is ("go back", "start again"), if any."""
        return self._commands.get(normalise(text[:100]))

    def is_skip(self, text: str) -> bool:
        """The whole message means "skip this" ("no thanks", "rather not")."""
        return _whole(self._skip, text)

    def is_unsure(self, text: str) -> bool:
        """The whole message means "I don't know"."""
        return _whole(self._unsure, text)

    def is_copy_request(self, text: str) -> bool:
        """The whole message asks for a copy of their enquiry ("copy", "send me a copy")."""
        return _whole(self._copy_request, text)

    def is_greeting(self, text: str) -> bool:
        """The whole message only says hello (or asks for help without saying what with)."""
        return _whole(self._greeting, text)

    @staticmethod
    def _pick(options: _Options, said: str, tokens: Sequence[str], *, lenient: bool) -> str | None:
        found = options.best(said, lenient=lenient)
        if found is None:
            found = options.guess(_candidates(tokens) if lenient else tokens, lenient=lenient)
        return found

    def _region(self, said: str, tokens: Sequence[str], lenient: bool) -> str | None:
        said = blank(said, self._not_places.spans(said))  # "London Road", "Prince of Wales"
        found = self._regions.best(said, lenient=lenient)
        if found is not None:
            return found
        if lenient:
            return self._regions.guess(_candidates(tokens))
        after = [said[end:].split()[:2] for _, end in self._context.spans(said)]
        return self._regions.guess([w for pair in after for w in _candidates(pair)], lenient=False)

    def _role(self, said: str, raw: str, *, lenient: bool) -> tuple[str | None, list[Span]]:
        """The writer's own role, and where it was named (so no other field reads it)."""
        for role_id, ph in self._role_capacity.items():
            if spans := ph.spans(said):
                return role_id, spans  # "…but I'm asking as a parent"
        table = self._roles.lenient if lenient else self._roles.strict
        found = self._named(said, table)
        if found:
            role_id = found[0][0]
            return role_id, [span for rid, span in found if rid == role_id]
        if not lenient and (signed := self._signed(raw)):
            return signed, []
        return self._guess_role(said, lenient=lenient), []

    def _named(self, said: str, table: Mapping[str, Phrases]) -> list[tuple[str, Span]]:
        """Roles named in ``said`` (not negated), the preferred first.

        "deputy head" names a deputy, not a head: a name inside a longer one doesn't count.
        """
        found = [
            (role_id, span)
            for role_id, ph in table.items()
            for span in ph.spans(said)
            if not self._negated(said, span[0])
        ]
        found = [
            (role_id, (a, b))
            for role_id, (a, b) in found
            if not any(c <= a and b <= d and (c, d) != (a, b) for _, (c, d) in found)
        ]
        return sorted(found, key=lambda f: (self._role_rank.get(f[0], 99), f[1][0]))

    def _signed(self, raw: str) -> str | None:
        """A role in the sign-off: the few short lines after "Kind regards" and the like,
        or a short last sentence ("… statutory duties. Deputy Head, Riverside Primary")."""
        lines = [line for line in raw[-600:].splitlines() if line.strip()]
        tail = ""
        for index, line in enumerate(lines):
            if self._signoff.search(plain(line)):
                tail = plain(" . ".join(lines[index : index + 5]))
                break
        else:
            last = plain(raw[-200:]).rsplit(" . ", 1)[-1]
            if len(last.split()) <= 8:
                tail = last
        found = self._named(tail, self._role_bare) if tail else []
        return found[0][0] if found else None

    def _guess_role(self, said: str, *, lenient: bool) -> str | None:
        """A misspelt role: the whole short answer, or the words after "I'm a"."""
        if lenient:
            return self._roles.guess(_candidates(said.split()))
        for _, end in self._self_said.spans(said):
            guess = self._roles.guess(_candidates(said[end:].split()[:2]), lenient=False)
            if guess:
                return guess
        return None

    def _negated(self, said: str, start: int) -> bool:
        before = " ".join(said[:start].split()[-4:])
        return any(before == n or before.endswith(" " + n) for n in self._role_not)

    def _child(self, raw: str, role: str | None) -> tuple[bool, bool | None]:
        """(said plainly, under 18?) from the text with quotations taken out."""
        said = plain(_QUOTED.sub(" ~ ", raw))
        said = blank(said, self._child_except.spans(said))
        certain = any(not self._quoting(said, s) for s, _ in self._child_says.spans(said))
        if certain:
            return True, True
        adult = bool(self._child_adult.search(said)) or role is not None
        suggested = any(not self._quoting(said, s) for s, _ in self._child_suggests.spans(said))
        if suggested and not adult:
            return False, True
        return False, (False if adult else None)

    def _quoting(self, said: str, start: int) -> bool:
        """Whether the words just before ``start`` report someone else's speech
        ("she told me im 14"; not "they say they're 19 but im 15")."""
        before = said[:start].split()[-3:]
        if "but" in before:
            before = before[before.index("but") + 1 :]
        near = " ".join(before)
        return any(f" {w} " in f" {near} " for w in self._reported_speech)

    def _reported(self, said: str) -> bool | None:
        """Whether they say it was already reported to the platform."""
        if self._reported_no.search(said):
            return False
        return True if self._reported_yes.search(said) else None

    def _category_scores(
        self, said: str, tokens: Sequence[str], *, lenient: bool
    ) -> dict[str, int]:
        scores: dict[str, int] = {}
        for category_id, (says, hints, names, unlike) in self._category_cues.items():
            if category_id in _SKIPPED_CATEGORIES and not lenient:
                continue
            text = blank(said, unlike.spans(said)) if unlike else said
            score = 2 * bool(says.search(text)) + bool(hints.search(text))
            score += (3 if lenient else 1) * bool(names.search(text))
            if score:
                scores[category_id] = score
        for word in tokens:
            guess = self._category_fuzzy.guess([word]) if len(word) >= FUZZY_MIN else None
            if guess is not None and guess not in scores:
                scores[guess] = 2
        return scores


def _words_between(text: str, start: int, end: int) -> int:
    return len(text[start:end].split())


def _whole(ph: Phrases, text: str) -> bool:
    said = plain(text[:200]).replace(" .", "").strip(" .~")
    return bool(said) and ph.regex is not None and ph.regex.fullmatch(said) is not None


def _candidates(words: Sequence[str]) -> list[str]:
    """Words, and neighbours run together ("snap chat" as "snapchat"), for fuzzy matching."""
    words = [w for w in words if w not in (".", "~")]
    return [*words, *("".join(pair) for pair in pairwise(words))]


def parse_understander(
    taxonomy: Taxonomy, lexicon: Mapping[str, Any], places: Mapping[str, Any]
) -> Understander:
    """Build the reader, checking every phrase against the notation and the taxonomy."""
    return Understander(taxonomy, lexicon, places)


@cache
def default_understander() -> Understander:
    """The shipped lexicons over the shipped taxonomy (read and checked once per process)."""
    return parse_understander(
        default_taxonomy(), load_toml("lexicon.toml"), load_toml("places.toml")
    )
