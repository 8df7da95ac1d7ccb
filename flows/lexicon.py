"""Editable phrase lists, compiled once: the words the bot listens for.

The helpline edits ``data/lexicon.toml`` and ``data/places.toml`` without touching code.
A phrase is plain words with a little notation:

    word*       any word starting with "word" (suicid* matches suicide, suicidal)
    (a|b c)     one of the alternatives (each may be several words)
    [a b]       optional words
    ...         up to four other words in between (never across the end of a sentence)
    {name}      any phrase of the word list ``name`` in ``[words]``
    <12-17>     a whole number in that range, in digits or words (14, fourteen)
    ^           (first) only at the start of the message: "^ 15 f" is "15f, …" but not "… 15 f"
    .           the end of a sentence ("hi . dsl here" is "Hi. DSL here")
    *           (alone) any one word: "* road" is "London Road", "Station Road"…

Matching ignores case, apostrophes ("dont" is "don't", "im" is "I'm") and punctuation
inside a sentence; hyphens are spaces ("self-harm" is "self harm"); letters are split from
digits ("yr9" is "yr 9", "14yo" is "14 yo"). Every phrase is checked when its file loads:
a slip in the notation, an unknown word list or a phrase that would match anything at all
fails at once, naming the file, the list and the phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

GAP_WORDS = 4
"""How many other words ``...`` may skip."""

BLANK = "~"
"""What a blanked span (a figure of speech, a quotation) is replaced by: a word no phrase names."""

_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_TENS = {30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy", 80: "eighty"}

_URL = re.compile(r"(?:https?://|www\.)\S+|\b\S+\.(?:com|co\.uk|org|net|uk)/\S*", re.I)
_APOSTROPHES = re.compile(r"['’‘`´]")
_JOINERS = re.compile(r"[-_/–—]")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_SENTENCE_END = re.compile(r"[.!?;:\n\r]+")
_OTHER = re.compile(r"[^\w .~]+")
_SPACES = re.compile(r"\s+")


def plain(text: str) -> str:
    """Text as phrases are matched against it: words and sentence ends ("."), one space apart.

    Web addresses are taken out first (links are read from the raw text elsewhere): their
    dots and slashes would otherwise read as sentences and words.
    """
    text = _URL.sub(" ", text.casefold())
    text = _APOSTROPHES.sub("", text)
    text = _JOINERS.sub(" ", text)
    text = _LETTER_DIGIT.sub(" ", text)
    text = _SENTENCE_END.sub(" . ", text)
    text = _OTHER.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


class LexiconError(ValueError):
    """A phrase or list in a lexicon file that cannot be used, with where it is."""


# The notation, parsed into a regular expression --------------------------------------------

_TOKEN = re.compile(r"\.\.\.|[()\[\]|{}<>^]|[^\s()\[\]|{}<>^]+")


@dataclass(frozen=True, slots=True)
class _Piece:
    regex: str
    optional: bool = False
    gap: bool = False


class _Parser:
    """Recursive descent over one phrase; word lists resolve through ``lists``."""

    def __init__(self, phrase: str, lists: Mapping[str, Sequence[str]], seen: tuple[str, ...]):
        self.tokens: list[str] = _TOKEN.findall(phrase)
        self.at = 0
        self.lists = lists
        self.seen = seen

    def parse(self) -> str:
        anchored = self._peek() == "^"
        if anchored:
            self._take()
        regex = self._alternatives(end=None)
        if anchored:
            regex = "^" + regex
        if self.at != len(self.tokens):
            raise LexiconError(f"unexpected {self.tokens[self.at]!r}")
        return regex

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _alternatives(self, end: str | None) -> str:
        options = [self._sequence(end)]
        while self._peek() == "|":
            self._take()
            options.append(self._sequence(end))
        if any(not option for option in options):
            raise LexiconError("an empty alternative (use [ ] for optional words)")
        return options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"

    def _sequence(self, end: str | None) -> str:
        pieces: list[_Piece] = []
        while (token := self._peek()) is not None and token not in ("|", end):
            pieces.extend(self._item())
        return _join(pieces)

    def _item(self) -> list[_Piece]:
        token = self._take()
        if token == "...":
            return [_Piece(rf"(?: [^ .]+){{0,{GAP_WORDS}}}", gap=True)]
        if token in ("(", "["):
            close = ")" if token == "(" else "]"
            inner = self._alternatives(end=close)
            if self._peek() != close:
                raise LexiconError(f"{token!r} is never closed with {close!r}")
            self._take()
            return [_Piece(inner, optional=token == "[")]
        if token == "{":
            name = self._take() if self._peek() not in (None, "}") else ""
            if self._peek() != "}":
                raise LexiconError("'{' is never closed with '}'")
            self._take()
            return [_Piece(self._word_list(name))]
        if token == "<":
            return [_Piece(self._number_range())]
        if token in (")", "]", "}", ">"):
            raise LexiconError(f"{token!r} without its opening bracket")
        if token == "^":
            raise LexiconError("^ can only start a phrase")
        return [_Piece(_word(word)) for word in _words_of(token)]

    def _word_list(self, name: str) -> str:
        if name not in self.lists:
            raise LexiconError(f"unknown word list {{{name}}}")
        if name in self.seen:
            raise LexiconError(f"word list {{{name}}} names itself")
        phrases = self.lists[name]
        return (
            "(?:"
            + "|".join(compile_phrase(p, self.lists, (*self.seen, name)) for p in phrases)
            + ")"
        )

    def _number_range(self) -> str:
        spec = ""
        while (token := self._peek()) is not None and token != ">":
            spec += self._take()
        if self._peek() != ">":
            raise LexiconError("'<' is never closed with '>'")
        self._take()
        match = re.fullmatch(r"(\d{1,3})-(\d{1,3})", spec)
        if not match or int(match[1]) > int(match[2]):
            raise LexiconError(f"<{spec}> is not a range such as <12-17>")
        low, high = int(match[1]), int(match[2])
        names = [str(n) for n in range(low, high + 1)]
        names += [_NUMBER_WORDS[n] for n in range(low, min(high, 20) + 1)]
        names += [word for n, word in _TENS.items() if low <= n <= high]
        return "(?:" + "|".join(sorted(names, key=len, reverse=True)) + ")"


def _words_of(token: str) -> list[str]:
    """A notation word as the matcher sees it; ``word*`` keeps its star on the last part."""
    if token == ".":
        return ["."]  # the end of a sentence
    if token == "*":
        return ["*"]  # any one word
    star = token.endswith("*")
    parts = [p for p in plain(token.rstrip("*")).split() if p != "."]
    if not parts:
        raise LexiconError(f"{token!r} has no letters or digits (for optional words use [ ])")
    if star:
        parts[-1] += "*"
    return parts


def _word(word: str) -> str:
    if word == "*":
        return r"[^ .~]+"
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"\w*"
    return re.escape(word)


def _join(pieces: Sequence[_Piece]) -> str:
    """Words one space apart; an optional piece brings (or drops) its own space."""
    if pieces and (pieces[0].gap or pieces[-1].gap):
        raise LexiconError("a phrase cannot start or end with ...")
    out = ""
    spaced = False  # whether the next piece needs a space before it
    for piece in pieces:
        if piece.gap:
            out += piece.regex
        elif piece.optional:
            out += f"(?: {piece.regex})?" if spaced else f"(?:{piece.regex} )?"
        else:
            out += (" " if spaced else "") + piece.regex
            spaced = True
    return out


def compile_phrase(
    phrase: str, lists: Mapping[str, Sequence[str]] = {}, seen: tuple[str, ...] = ()
) -> str:
    """The regular expression (without word boundaries) for one phrase of the notation."""
    return _Parser(phrase, lists, seen).parse()


# Compiled phrase sets ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phrases:
    """Any of several phrases, matched as whole words in :func:`plain` text."""

    regex: re.Pattern[str] | None
    phrases: tuple[str, ...] = ()

    def search(self, text: str) -> re.Match[str] | None:
        """The first of the phrases in ``text``, if any (no match when there are no phrases)."""
        return self.regex.search(text) if self.regex else None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where each of the phrases occurs in ``text``, as ``(start, end)`` pairs."""
        return [m.span() for m in self.regex.finditer(text)] if self.regex else []

    def __bool__(self) -> bool:
        return self.regex is not None


NOTHING = Phrases(None)


def phrases(
    items: Iterable[str], lists: Mapping[str, Sequence[str]] = {}, *, where: str
) -> Phrases:
    """Compile a list of phrases, checking each; ``where`` names it in errors."""
    parts: list[str] = []
    kept: list[str] = []
    for index, phrase in enumerate(items, 1):
        if not isinstance(phrase, str) or not phrase.strip():
            raise LexiconError(f"{where}, phrase {index}: must be non-empty text")
        try:
            regex = compile_phrase(phrase, lists)
            if re.fullmatch(regex, ""):
                raise LexiconError("it would match without any words")
        except (LexiconError, re.error) as error:
            raise LexiconError(f"{where}, phrase {index} {phrase!r}: {error}") from None
        parts.append(regex)
        kept.append(phrase)
    if not parts:
        return NOTHING
    # Longest alternatives first, so "sixth form college" beats "sixth form".
    ordered = sorted(parts, key=len, reverse=True)
    return Phrases(re.compile(r"(?<!\S)(?:" + "|".join(ordered) + r")(?!\S)"), tuple(kept))


def blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each span replaced by :data:`BLANK`, so no phrase can match across it."""
    out: list[str] = []
    last = 0
    for start, end in sorted(spans):
        if start < last:
            continue
        out += [text[last:start], BLANK]
        last = end
    out.append(text[last:])
    return "".join(out)
