"""Which account or page a link (or an "@name") points at, so reports of it can be linked.

The same account reaches the helpline written many ways: ``https://www.tiktok.com/@x?lang=en``,
``tiktok.com/@x``, ``m.tiktok.com/@X/video/123``. :func:`link_key` turns each into one key
(``tiktok:@x``); cases that share a key are reports of the same thing, and a practitioner
can escalate it to the platform once, with every case. The platforms' address patterns
live in ``data/accounts.toml`` (checked when it loads); an address no pattern knows is
still compared, by host and path with tracking parameters dropped (``web:example.com/page``).
Pure: no I/O beyond reading the shipped data file once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from flows.taxonomy import Taxonomy, default_taxonomy, load_toml
from flows.validate import find_links

KEY_LIMIT = 300
"""Longest key kept (a key is an address without its scheme, often much shorter)."""
_SUBDOMAINS = ("www.", "m.", "mobile.", "web.")
"""Prefixes of a host that change nothing about what it shows."""
_FIELD = re.compile(r"\{(\w+)\}")
_MENTION = re.compile(r"(?<![\w@./])@([A-Za-z0-9_][A-Za-z0-9._-]{0,99})")
_MIGHT_LINK = re.compile(r"@|/|www\.", re.I)
"""What every address :func:`flows.validate.find_links` finds, and every "@name", contains."""
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


@dataclass(frozen=True, slots=True)
class Rule:
    """One address pattern of a platform and the key it makes."""

    pattern: re.Pattern[str]
    key: str
    fold: bool = False
    host: str | None = None
    """Only for this host (``youtu.be``), when the pattern would mean something else."""


@dataclass(frozen=True, slots=True)
class Platform:
    """A platform's addresses and how its accounts are named."""

    id: str
    prefix: str
    hosts: tuple[str, ...]
    rules: tuple[Rule, ...]
    reserved: frozenset[str] = frozenset()
    mention: str | None = None

    def owns(self, host: str) -> bool:
        """Whether ``host`` (already lower-case) is one of this platform's."""
        return any(host == h or host.endswith("." + h) for h in self.hosts)


@dataclass(frozen=True, slots=True)
class AccountPatterns:
    """Every platform's patterns, and the query parameters that never change a page."""

    platforms: tuple[Platform, ...]
    tracking: frozenset[str]

    def by_id(self, platform_id: str) -> Platform | None:
        """The platform with this taxonomy id, if its addresses are known."""
        return next((p for p in self.platforms if p.id == platform_id), None)


def parse_patterns(data: Mapping[str, Any], taxonomy: Taxonomy | None = None) -> AccountPatterns:
    """The patterns from ``accounts.toml``'s data; ValueError says what is wrong in it.

    With a ``taxonomy``, every platform must be one of its platforms (a case's platform
    label is how an "@name" finds its platform).
    """
    platforms = []
    for raw in data.get("platform", []):
        pid = str(raw.get("id", ""))
        where = f"accounts.toml platform {pid!r}"
        if not pid or not raw.get("prefix") or not raw.get("hosts"):
            raise ValueError(f"{where} needs an id, a prefix and hosts")
        if taxonomy is not None and taxonomy["platform"].get(pid) is None:
            raise ValueError(f"{where} is not a platform of the taxonomy")
        rules = []
        for rule in raw.get("rules", []):
            try:
                pattern = re.compile(str(rule["match"]))
            except (KeyError, re.error) as error:
                raise ValueError(f"{where} has a rule with a bad match: {error}") from None
            key = str(rule.get("key", ""))
            fields = set(_FIELD.findall(key))
            if not key or not fields <= set(pattern.groupindex):
                raise ValueError(f"{where}: key {key!r} names groups its match does not have")
            rules.append(Rule(pattern, key, bool(rule.get("fold", False)), rule.get("host")))
        mention = raw.get("mention")
        if mention is not None and set(_FIELD.findall(str(mention))) != {"name"}:
            raise ValueError(f"{where}: mention must use {{name}} and nothing else")
        platforms.append(
            Platform(
                id=pid,
                prefix=str(raw["prefix"]),
                hosts=tuple(str(h).lower() for h in raw["hosts"]),
                rules=tuple(rules),
                reserved=frozenset(str(r).casefold() for r in raw.get("reserved", [])),
                mention=str(mention) if mention is not None else None,
            )
        )
    prefixes = [p.prefix for p in platforms]
    if len(set(prefixes)) != len(prefixes) or "web" in prefixes:
        raise ValueError("accounts.toml: each platform needs its own prefix (not 'web')")
    return AccountPatterns(tuple(platforms), frozenset(str(t) for t in data.get("tracking", [])))


@cache
def default_patterns() -> AccountPatterns:
    """The shipped patterns (read and checked once per process)."""
    return parse_patterns(load_toml("accounts.toml"), default_taxonomy())


def _host(netloc_host: str) -> str:
    host = netloc_host.lower().rstrip(".")
    for prefix in _SUBDOMAINS:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
    return host


def link_key(url: str, patterns: AccountPatterns | None = None) -> str | None:
    """The key of what ``url`` shows (an account, a group, an invite, a page), or None
    when it is not a web address at all. Two addresses of the same thing get one key."""
    patterns = patterns or default_patterns()
    text = url.strip()
    if not text:
        return None
    if not _SCHEME.match(text):
        text = "https://" + text
    try:
        parts = urlsplit(text)
        hostname = parts.hostname or ""
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "." not in hostname:
        return None
    host = _host(hostname)
    path = re.sub(r"/{2,}", "/", unquote(parts.path) or "/")
    query = parts.query
    for platform in patterns.platforms:
        if platform.owns(host):
            key = _platform_key(platform, host, path, query)
            if key is not None:
                return key[:KEY_LIMIT]
            break
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k not in patterns.tracking]
    shown = path.rstrip("/") + ("?" + urlencode(sorted(kept)) if kept else "")
    return f"web:{host}{shown}"[:KEY_LIMIT]


def _platform_key(platform: Platform, host: str, path: str, query: str) -> str | None:
    target = path + ("?" + query if query else "")
    for rule in platform.rules:
        if rule.host is not None and not (host == rule.host or host.endswith("." + rule.host)):
            continue
        match = rule.pattern.search(target)
        if match is None:
            continue
        first = path.strip("/").split("/", 1)[0].casefold()
        if first in platform.reserved and any(match.start(g) == 1 for g in match.groupdict()):
            continue  # the platform's own page (instagram.com/explore), not an account
        values = {name: value.rstrip(".") for name, value in match.groupdict().items() if value}
        key = rule.key.format(**values)
        return f"{platform.prefix}:{key.casefold() if rule.fold else key}"
    return None


def mention_keys(
    text: str, platform_id: str | None, patterns: AccountPatterns | None = None
) -> list[str]:
    """Keys of the "@names" in ``text`` of a case about ``platform_id`` (none without one).

    An "@name" says nothing on its own: on a TikTok case it is a TikTok account. Email
    addresses and the "@" inside links are not names.
    """
    patterns = patterns or default_patterns()
    platform = patterns.by_id(platform_id) if platform_id else None
    if platform is None or platform.mention is None:
        return []
    found: list[str] = []
    for match in _MENTION.finditer(text):
        name = match.group(1).rstrip("._-")
        key = f"{platform.prefix}:{platform.mention.format(name=name).casefold()}"
        if name and key not in found:
            found.append(key[:KEY_LIMIT])
    return found


def account_names(text: str) -> list[str]:
    """The "@names" in ``text`` as written (each once): an account given by its name when
    they have no link ("it is @hilltop_head_real"). Email addresses and links are not."""
    names = (m.group(1).rstrip("._-") for m in _MENTION.finditer(_without_links(text)))
    return list(dict.fromkeys(f"@{name}" for name in names if name))


def case_keys(
    links: Iterable[str],
    *,
    texts: Sequence[str] = (),
    platform_id: str | None = None,
    patterns: AccountPatterns | None = None,
) -> tuple[str, ...]:
    """Every key a case is known by: its links', and the "@names" in what it says
    (``texts``: the title and the description), each once, sorted."""
    patterns = patterns or default_patterns()
    links = list(links)
    keys = {key for link in links if (key := link_key(link, patterns))}
    named = [link for link in links if link.startswith("@")]  # accounts given by name
    for text in (*texts, *named):
        keys.update(mention_keys(_without_links(text), platform_id, patterns))
    return tuple(sorted(keys))


def text_keys(
    texts: Sequence[str], platform_id: str | None, patterns: AccountPatterns | None = None
) -> tuple[str, ...]:
    """The keys of a case known only by what it says (an imported case: its title and
    description, with no separate links), its links found in the text."""
    if not any(_MIGHT_LINK.search(text) for text in texts):
        return ()  # most imported rows: nothing that could be a link or a name
    links = [link for text in texts for link in find_links(text)]
    return case_keys(links, texts=texts, platform_id=platform_id, patterns=patterns)


def _without_links(text: str) -> str:
    """The text with its web addresses blanked: the "@" in one is not a name."""
    return re.sub(r"\S+\.\S+/\S*", " ", text)
