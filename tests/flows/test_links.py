"""Linked reports: every way of writing one account gives one key, and different ones differ."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.links import KEY_LIMIT, case_keys, default_patterns, link_key, parse_patterns
from flows.taxonomy import default_taxonomy

SAME = [
    ("https://www.tiktok.com/@x?lang=en", "tiktok.com/@x"),
    ("https://m.tiktok.com/@X/video/7261234567890", "tiktok.com/@x"),
    ("https://www.instagram.com/Some.User/?igsh=abc123", "instagram.com/some.user"),
    ("https://instagram.com/stories/some.user/3141592653/", "instagram.com/some.user"),
    ("https://www.facebook.com/groups/123456789/posts/987", "fb.com/groups/123456789"),
    (
        "https://m.facebook.com/profile.php?id=100012345&ref=bookmarks",
        "facebook.com/profile.php?id=100012345",
    ),
    ("https://www.facebook.com/OurTownPage/", "facebook.com/ourtownpage"),
    ("https://twitter.com/Bad_Guy/status/17001", "x.com/bad_guy"),
    ("https://mobile.twitter.com/bad_guy?s=20", "https://x.com/Bad_Guy"),
    ("https://www.youtube.com/@SomeChannel/videos", "youtube.com/@somechannel"),
    ("https://youtu.be/dQw4w9WgXcQ?si=abc", "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s"),
    ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "m.youtube.com/watch?v=dQw4w9WgXcQ"),
    ("snapchat.com/add/Jo.Bloggs", "https://www.snapchat.com/@jo.bloggs"),
    ("https://discord.gg/AbCdEf", "https://discord.com/invite/AbCdEf"),
    ("https://www.roblox.com/users/123456/profile", "roblox.com/users/123456"),
    ("https://example.org/a/b/?utm_source=x&page=2", "example.org/a/b?page=2"),
    ("https://www.example.org/", "example.org"),
]
DIFFERENT = [
    ("tiktok.com/@x", "tiktok.com/@y"),
    ("discord.gg/AbCdEf", "discord.gg/abcdef"),  # invite codes are case-sensitive
    (
        "youtube.com/channel/UCabcdefghijklmnopqrstuv",
        "youtube.com/channel/UCABCDEFGHIJKLMNOPQRSTUV",
    ),
    ("facebook.com/groups/1", "facebook.com/groups/2"),
    ("instagram.com/explore", "instagram.com/explorer"),
    ("example.org/page?id=1", "example.org/page?id=2"),
    ("x.com/someone", "instagram.com/someone"),
]


@pytest.mark.parametrize(("one", "other"), SAME)
def test_link_key_same_account_written_differently_is_one_key(one: str, other: str) -> None:
    assert link_key(one) == link_key(other) is not None


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_link_key_different_things_stay_apart(one: str, other: str) -> None:
    assert link_key(one) != link_key(other)


def test_link_key_names_what_it_found() -> None:
    assert link_key("https://www.tiktok.com/@x?lang=en") == "tiktok:@x"
    assert link_key("https://www.facebook.com/groups/123/") == "facebook:group/123"
    assert link_key("https://discord.gg/AbCd") == "discord:invite/AbCd"
    assert link_key("https://www.roblox.com/users/99/profile") == "roblox:user/99"
    assert link_key("https://www.instagram.com/explore/") == "web:instagram.com/explore"
    assert link_key("not a link") is None and link_key("ftp://example.org/x") is None


def test_case_keys_read_at_names_on_the_case_platform_and_not_emails() -> None:
    keys = case_keys(
        ["https://tiktok.com/@fake_school"],
        texts=["They post as @Fake_School and @second.one. Write to me@school.org.uk"],
        platform_id="tiktok",
    )
    assert keys == ("tiktok:@fake_school", "tiktok:@second.one")
    assert case_keys([], texts=["@someone"], platform_id=None) == ()
    assert case_keys([], texts=["@someone"], platform_id="discord") == ()


def test_case_keys_count_an_account_given_by_name_as_its_link() -> None:
    keys = case_keys(["@Mrs_Fake"], platform_id="tiktok")
    assert keys == case_keys(["https://www.tiktok.com/@mrs_fake?lang=en"])


def test_accounts_data_platforms_are_the_taxonomys() -> None:
    patterns = default_patterns()
    ids = {p.id for p in patterns.platforms}
    assert {
        "tiktok",
        "instagram",
        "facebook",
        "twitter",
        "youtube",
        "snapchat",
        "discord",
        "roblox",
    } <= ids
    assert all(default_taxonomy()["platform"].get(p) for p in ids)


@pytest.mark.parametrize(
    "bad",
    [
        {
            "platform": [
                {
                    "id": "tiktok",
                    "prefix": "t",
                    "hosts": ["t.com"],
                    "rules": [{"match": "(", "key": "x"}],
                }
            ]
        },
        {
            "platform": [
                {
                    "id": "tiktok",
                    "prefix": "t",
                    "hosts": ["t.com"],
                    "rules": [{"match": "^/(?P<a>x)", "key": "{b}"}],
                }
            ]
        },
        {"platform": [{"id": "nosuch", "prefix": "n", "hosts": ["n.com"]}]},
        {"platform": [{"id": "tiktok", "prefix": "web", "hosts": ["t.com"]}]},
        {"platform": [{"id": "tiktok", "prefix": "t", "hosts": ["t.com"], "mention": "{user}"}]},
    ],
)
def test_accounts_data_mistakes_are_refused_when_loaded(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_patterns(bad, default_taxonomy())


NAMES = st.from_regex(r"[a-z][a-z0-9_]{1,14}", fullmatch=True)
PREFIXES = st.sampled_from(["", "http://", "https://", "https://www.", "https://m.", "www."])
CASES = st.sampled_from([str.lower, str.upper, str.title])
TAILS = st.sampled_from(["", "/", "?lang=en", "?utm_source=share&utm_medium=copy", "/?igsh=Zx1"])
ACCOUNT_FORMS = {
    "tiktok:@{}": ["tiktok.com/@{}", "tiktok.com/@{}/video/7261234567890"],
    "instagram:@{}": ["instagram.com/{}", "instagram.com/stories/{}/31415"],
    "x:@{}": ["x.com/{}", "twitter.com/{}", "twitter.com/{}/status/1700"],
    "youtube:@{}": ["youtube.com/@{}", "youtube.com/@{}/shorts"],
    "snapchat:@{}": ["snapchat.com/add/{}", "snapchat.com/@{}"],
}
RESERVED = {"p", "reel", "reels", "tv", "explore", "accounts", "direct", "about", "legal"}
RESERVED |= {"developer", "stories", "home", "i", "search", "hashtag", "intent", "share"}
RESERVED |= {"settings", "messages", "notifications", "login", "signup", "tos", "privacy"}
RESERVED |= {"compose"}


@given(
    name=NAMES,
    account=st.sampled_from(sorted(ACCOUNT_FORMS)),
    form=st.integers(0, 2),
    prefix=PREFIXES,
    case=CASES,
    tail=TAILS,
)
def test_link_key_every_form_of_an_account_is_its_key(
    name: str, account: str, form: int, prefix: str, case: object, tail: str
) -> None:
    if name in RESERVED:
        return
    forms = ACCOUNT_FORMS[account]
    written = prefix + forms[form % len(forms)].format(case(name)) + tail  # type: ignore[operator]
    assert link_key(written) == account.format(name)


@given(one=NAMES, other=NAMES, account=st.sampled_from(sorted(ACCOUNT_FORMS)))
def test_link_key_two_names_are_two_keys(one: str, other: str, account: str) -> None:
    if one in RESERVED or other in RESERVED:
        return
    url = "https://" + ACCOUNT_FORMS[account][0]
    assert (link_key(url.format(one)) == link_key(url.format(other))) == (one == other)


@given(st.text(max_size=400))
def test_link_key_any_text_gives_none_or_a_bounded_key(text: str) -> None:
    key = link_key(text)
    assert key is None or (0 < len(key) <= KEY_LIMIT and ":" in key)


@given(st.text(max_size=400), st.sampled_from([None, "tiktok", "instagram", "twitter", "other"]))
def test_case_keys_any_text_never_raises_and_keys_are_unique(
    text: str, platform: str | None
) -> None:
    keys = case_keys([text], texts=[text], platform_id=platform)
    assert list(keys) == sorted(set(keys))


@given(path=st.from_regex(r"(/[a-zA-Z0-9_-]{1,10}){0,4}/?", fullmatch=True), tail=TAILS)
def test_link_key_web_addresses_compare_by_host_and_path(path: str, tail: str) -> None:
    once = link_key("https://www.example.org" + path + tail)
    assert once is not None and once.startswith("web:example.org")
    assert link_key("example.org" + path.rstrip("/")) == once
