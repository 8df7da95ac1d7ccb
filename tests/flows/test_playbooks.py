"""The 'while you wait' playbooks: every platform and category resolves, links are sound,
messages fit in one chat message, and image categories never advise keeping images."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from flows.playbooks import (
    DEFAULT,
    GENERIC,
    MAX_RENDERED,
    Playbook,
    default_playbooks,
    parse_playbooks,
)
from flows.taxonomy import default_taxonomy

TAXONOMY = default_taxonomy()
PLATFORM_IDS = [t.id for t in TAXONOMY["platform"].terms]
CATEGORY_IDS = [t.id for t in TAXONOMY["category"].terms]
IMAGE_CATEGORIES = ("sexting", "sextortion", "cse", "grooming")
PLATFORM_CHOICES: list[str | None] = [*PLATFORM_IDS, None, "no-such-platform"]

# "screenshot", "save", "download", "forward" or "keep a copy" as advice is never allowed
# for image categories: each sentence that mentions one must also say not to.
KEEPING = re.compile(r"screenshot|\bsav(e|ing)\b|download|forward|keep (a )?cop(y|ies)", re.I)
NEGATED = re.compile(r"\b(don['’]t|do not|never|not|no need)\b", re.I)
SENTENCE = re.compile(r"(?<=[.!?:])\s+|\n")


def _text(playbook: Playbook) -> str:
    return "\n".join((*playbook.steps, *playbook.notes))


def _well_formed(url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts.scheme == "https" and "." in host and not re.search(r"\s", url)


@pytest.mark.parametrize("platform_id", PLATFORM_CHOICES)
@pytest.mark.parametrize("category_id", CATEGORY_IDS)
def test_every_combination_resolves_and_fits(platform_id: str | None, category_id: str) -> None:
    playbooks = default_playbooks()
    playbook = playbooks.for_case(platform_id, [category_id])
    assert playbook.steps and all(step.strip() for step in playbook.steps)
    assert playbook.platform_name
    for link in playbook.links:
        assert link.label.strip()
        assert _well_formed(link.url), link.url
    rendered = playbooks.render(playbook)
    assert len(rendered) < MAX_RENDERED, (platform_id, category_id, len(rendered))
    assert rendered.splitlines()[2].startswith("1. ")


def test_every_link_in_the_data_is_well_formed() -> None:
    links = default_playbooks().all_links()
    assert links
    for link in links:
        assert _well_formed(link.url), link.url


def test_taxonomy_platforms_are_covered_explicitly_except_other() -> None:
    platforms = default_playbooks().platforms
    for platform_id in PLATFORM_IDS:
        if platform_id == "other":
            assert "other" not in platforms
            continue
        assert platform_id in platforms, platform_id
        assert DEFAULT in platforms[platform_id].entries, platform_id
    assert default_playbooks().for_case("other", ["bullying"]).platform_name == (
        platforms[GENERIC].name
    )


@pytest.mark.parametrize("platform_id", [*PLATFORM_IDS, GENERIC])
def test_main_issues_have_their_own_entry(platform_id: str) -> None:
    if platform_id == "other":
        return
    playbooks = default_playbooks()
    entries = playbooks.platforms[platform_id].entries
    for category_id in (
        "reputation",
        "bullying",
        "harassment",
        "hate",
        "harmful",
        *IMAGE_CATEGORIES,
    ):
        keys = playbooks.keys_for(category_id)
        assert any(key in entries for key in keys), (platform_id, category_id)


def test_entry_keys_are_categories_or_groups() -> None:
    playbooks = default_playbooks()
    known = {*CATEGORY_IDS, *playbooks.groups, DEFAULT}
    for platform in playbooks.platforms.values():
        assert set(platform.entries) <= known, platform.id
    for members in playbooks.groups.values():
        assert set(members) <= set(CATEGORY_IDS)


@pytest.mark.parametrize("platform_id", PLATFORM_CHOICES)
@pytest.mark.parametrize("category_id", IMAGE_CATEGORIES)
def test_image_categories_never_advise_keeping_images(
    platform_id: str | None, category_id: str
) -> None:
    playbook = default_playbooks().for_case(platform_id, [category_id])
    text = _text(playbook)
    assert re.search(r"don['’]t screenshot", text, re.I), "must say not to screenshot"
    for sentence in SENTENCE.split(text):
        if KEEPING.search(sentence):
            assert NEGATED.search(sentence), sentence
    urls = {link.url for link in playbook.links}
    assert any("iwf.org.uk" in url for url in urls)
    assert any("ceop.police.uk" in url for url in urls)
    assert any("childline.org.uk" in url for url in urls)


@pytest.mark.parametrize("platform_id", PLATFORM_CHOICES)
@pytest.mark.parametrize("category_id", CATEGORY_IDS)
def test_no_playbook_advises_screenshots(platform_id: str | None, category_id: str) -> None:
    text = _text(default_playbooks().for_case(platform_id, [category_id]))
    for sentence in SENTENCE.split(text):
        if re.search("screenshot", sentence, re.I):
            assert NEGATED.search(sentence), sentence


def test_common_notes() -> None:
    playbooks = default_playbooks()
    impersonation = next(n.text for n in playbooks.notes if n.name == "impersonation")
    evidence = next(n.text for n in playbooks.notes if n.name == "evidence")
    wait = next(n.text for n in playbooks.notes if n.name == "wait")
    assert "48 hours" in wait
    for category_id in CATEGORY_IDS:
        notes = playbooks.for_case("tiktok", [category_id]).notes
        assert evidence in notes
        assert (impersonation in notes) == (category_id == "reputation")
        assert (wait in notes) == (category_id not in IMAGE_CATEGORIES)
    both = playbooks.for_case("instagram", ["bullying", "reputation"]).notes
    assert impersonation in both


def test_most_specific_entry_wins() -> None:
    playbooks = default_playbooks()
    tiktok = playbooks.platforms["tiktok"].entries
    generic = playbooks.platforms[GENERIC].entries
    assert playbooks.for_case("tiktok", ["reputation"]).steps == tiktok["reputation"].steps
    assert playbooks.for_case("tiktok", ["edu", "hate"]).steps == tiktok["abuse"].steps
    assert playbooks.for_case("tiktok", ["hate", "reputation"]).steps == tiktok["abuse"].steps
    assert playbooks.for_case("tiktok", ["edu"]).steps == tiktok[DEFAULT].steps
    assert playbooks.for_case("tiktok", []).steps == tiktok[DEFAULT].steps
    assert playbooks.for_case(None, ["cse"]).steps == generic["images"].steps
    assert playbooks.for_case("myspace", ["edu"]).steps == generic[DEFAULT].steps
    assert playbooks.for_case("youtube", ["grooming"]).platform_name == "YouTube"


def test_fallback_to_generic_when_a_platform_has_no_default() -> None:
    data = {
        "text": {"title": "Wait: {platform}", "links": "Links:", "notes": "Notes:"},
        "groups": {"images": ["cse"]},
        "common": {"always": "Always.", "img": {"text": "Images.", "only": ["images"]}},
        "platform": {
            "generic": {
                "name": "the app",
                "default": {"steps": ["Generic."]},
                "images": {"steps": ["Generic images."]},
            },
            "x": {"name": "X", "reputation": {"steps": ["X rep."]}},
        },
    }
    playbooks = parse_playbooks(data)
    cse = playbooks.for_case("x", ["cse"])
    assert cse.steps == ("Generic images.",)
    assert cse.notes == ("Always.", "Images.")
    assert cse.platform_name == "X"
    assert playbooks.for_case("x", ["edu"]).steps == ("Generic.",)
    rendered = playbooks.render(cse)
    assert rendered == "Wait: X\n\n1. Generic images.\n\nNotes:\n- Always.\n- Images."


@pytest.mark.parametrize(
    "url",
    ["http://example.com/", "https://localhost/", "https://exa mple.com/", "ftp://x.org/"],
)
def test_bad_links_are_rejected(url: str) -> None:
    data = {
        "text": {"title": "{platform}", "links": "L", "notes": "N"},
        "platform": {
            "generic": {
                "name": "g",
                "default": {"steps": ["s"], "links": [{"label": "l", "url": url}]},
            }
        },
    }
    with pytest.raises(ValueError):
        parse_playbooks(data)


def test_missing_generic_default_is_rejected() -> None:
    data = {
        "text": {"title": "{platform}", "links": "L", "notes": "N"},
        "platform": {"generic": {"name": "g"}},
    }
    with pytest.raises(ValueError):
        parse_playbooks(data)


def test_render_lists_steps_links_and_notes() -> None:
    playbooks = default_playbooks()
    playbook = playbooks.for_case("instagram", ["reputation"])
    rendered = playbooks.render(playbook)
    assert rendered.startswith(playbooks.title.replace("{platform}", "Instagram"))
    for number, step in enumerate(playbook.steps, 1):
        assert f"{number}. {step}" in rendered
    for link in playbook.links:
        assert f"{link.label}: {link.url}" in rendered
    assert rendered.index(playbook.steps[-1]) < rendered.index(playbooks.links_heading)
    assert rendered.index(playbooks.links_heading) < rendered.index(playbooks.notes_heading)
    assert "help.instagram.com/contact/636276399721841" in rendered
