"""The understanding layer reads people's own words: children, risk, roles, places, concerns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tests.flows.corpus as corpus
from flows.lexicon import LexiconError, phrases, plain
from flows.taxonomy import default_taxonomy, load_toml
from flows.understanding import Field, Risk, default_understander, parse_understander

U = default_understander()
TUNED = ("understanding.jsonl", "tuning.jsonl", "heldout.jsonl")
"""The corpora the lexicons were written against (fresh.jsonl is reported by the bench)."""


def read(text: str, answering: Field | None = None) -> dict[str, Any]:
    return U.read(text, answering=answering).to_json(U.taxonomy)


# The labelled corpus ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rates() -> dict[str, corpus.Rate]:
    items = [item for name in TUNED for item in corpus.load(corpus.CORPUS.with_name(name))]
    assert len(items) >= 400, "the corpus must hold at least 400 utterances"
    return corpus.score(lambda text: read(text), items)


@pytest.mark.parametrize("measure", sorted(corpus.TARGETS))
def test_understanding_corpus_meets_its_target(rates: dict[str, corpus.Rate], measure: str) -> None:
    rate = rates[measure]
    misses = "\n".join(f"  {t!r}: expected {e}, got {g}" for t, e, g in rate.misses[:15])
    assert corpus.meets(measure, rate.rate), f"{measure}: {rate.rate:.1%}\n{misses}"


def test_understanding_corpus_has_the_groups_the_issue_asks_for() -> None:
    items = [item for name in TUNED for item in corpus.load(corpus.CORPUS.with_name(name))]
    children = [i for i in items if i.get("under_18") is True]
    adults_about_children = [i for i in items if i.get("under_18") is False]
    figures = [i for i in items if i.get("figure_of_speech")]
    risky = [i for i in items if i.get("risks")]
    assert len(children) >= 60 and len(adults_about_children) >= 60
    assert len(figures) >= 50 and len(risky) >= 60


# Children in their own words ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "hi im 14 and someone at school is sharing a pic of me",
        "im not a teacher im a student",
        "I'm 15 and need help",
        "I am 16",
        "im in year 9 and people keep posting about me",
        "I'm a teenager and my mum doesn't know",
        "pls dont tell my parents but a boy is asking for pics",
    ],
)
def test_understanding_recognises_a_child_writing_about_themselves(text: str) -> None:
    assert read(text)["under_18"] is True
    assert read(text)["enquirer_type"] == "Child (12-18)"


@pytest.mark.parametrize(
    "text",
    [
        "I teach year 9 and a pupil has been targeted",
        "my pupil is 15 and her photo is being shared",
        "my daughter is 13 and someone is messaging her",
        "She said 'I'm 14' when she messaged the account",
        "I'm 15 minutes away from a meeting with the parents",
        "Head of Year 11 here, a boy's nudes are going round",
    ],
)
def test_understanding_does_not_take_an_adult_writing_about_a_child_for_one(text: str) -> None:
    assert read(text)["under_18"] is not True


# Risk beyond fixed phrases --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "risk"),
    [
        ("she wants to take her own life", Risk.SELF_HARM),
        ("he will end it all", Risk.SELF_HARM),
        ("she self harms", Risk.SELF_HARM),
        ("he took an overdose last night", Risk.SELF_HARM),
        ("a man is going to meet her tonight at the park", Risk.DANGER),
        ("she is with him now", Risk.DANGER),
        ("he threatened to stab a teacher tomorrow", Risk.DANGER),
        ("she has run away and is missing", Risk.DANGER),
    ],
)
def test_understanding_raises_risk_in_its_paraphrases(text: str, risk: Risk) -> None:
    assert risk.value in read(text)["risks"]


@pytest.mark.parametrize(
    "text",
    [
        "this account is killing our reputation",
        "I'm dying to know who made it",
        "we want to shoot a video for the assembly",
        "my mum will kill me if she finds out",
        "she is missing lessons all week",
        "Sorry if I'm missing the point here",
    ],
)
def test_understanding_does_not_raise_risk_on_a_figure_of_speech(text: str) -> None:
    assert read(text)["risks"] == []


# What a first message says ---------------------------------------------------------------


def test_understanding_reads_a_whole_first_message() -> None:
    said = read(
        "Hi, I'm the DSL at a secondary in York, a fake Snapchat account is posting our "
        "staff's photos with vile captions, we reported it and nothing happened "
        "https://www.snapchat.com/add/fake_staff"
    )
    assert said["categories"][0] == "Online Reputation"
    assert {k: v for k, v in said.items() if k != "categories"} == {
        "under_18": False,
        "enquirer_type": "DSL",
        "setting": "Secondary",
        "region": "Yorkshire and the Humber",
        "platform_type": "Social Networks",
        "platform": "Snapchat",
        "risks": [],
        "links": ["https://www.snapchat.com/add/fake_staff"],
    }
    assert U.read("we reported it and nothing happened").already_reported is True


def test_understanding_reads_a_role_from_an_email_sign_off() -> None:
    said = read(
        "Could you help with a TikTok account posting about our staff?\n\nKind regards\n"
        "Jo Smith\nDesignated Safeguarding Lead, Hilltop Primary"
    )
    assert (said["enquirer_type"], said["setting"]) == ("DSL", "Primary")


def test_understanding_does_not_take_someone_else_for_the_writer() -> None:
    assert read("our DSL told me to contact you about it")["enquirer_type"] is None
    assert read("A teacher at our school is being targeted on TikTok")["enquirer_type"] is None


@pytest.mark.parametrize(
    ("text", "field", "key", "label"),
    [
        ("DSL", Field.ROLE, "enquirer_type", "DSL"),
        ("I'm a DSL", Field.ROLE, "enquirer_type", "DSL"),
        ("social worker", Field.ROLE, "enquirer_type", "Social Worker"),
        ("deputy head", Field.ROLE, "enquirer_type", "Assistant/Deputy headteacher"),
        ("safeguarding lead", Field.ROLE, "enquirer_type", "DSL"),
        ("im a techer", Field.ROLE, "enquirer_type", "Teacher"),
        ("foster carer", Field.ROLE, "enquirer_type", "Foster Carer"),
        ("secondry", Field.SETTING, "setting", "Secondary"),
        ("insta", Field.PLATFORM, "platform", "Instagram"),
        ("snap chat", Field.PLATFORM, "platform", "Snapchat"),
        ("Facebok", Field.PLATFORM, "platform", "Facebook"),
        ("Manchster", Field.REGION, "region", "North West"),
        ("nr Bristol", Field.REGION, "region", "South West"),
        ("Reading", Field.REGION, "region", "South East"),
    ],
)
def test_understanding_takes_short_answers_typos_and_towns(
    text: str, field: Field, key: str, label: str
) -> None:
    assert read(text, field)[key] == label


def test_understanding_reads_typos_of_a_concern() -> None:
    assert read("bulying", Field.CATEGORIES)["categories"][0] == "Cyberbullying"


def test_understanding_keeps_a_place_word_to_its_place() -> None:
    assert read("I was reading the comments last night")["region"] is None
    assert read("a school in Reading")["region"] == "South East"
    assert read("Our school is on London Road in Leicester")["region"] == "East Midlands"
    assert read("Newcastle-under-Lyme")["region"] == "West Midlands"


def test_understanding_ranks_categories_most_likely_first() -> None:
    said = read("Pupils are being bullied in a fake account that impersonates our head")
    assert said["categories"][:2] == ["Online Reputation", "Cyberbullying"]


# The lexicon notation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "text", "matches"),
    [
        ("suicid*", "she is suicidal", True),
        ("(kill|hurt) herself", "wants to hurt herself", True),
        ("took [an] overdose", "took overdose", True),
        ("meet ... tonight", "meet him at the park tonight", True),
        ("meet ... tonight", "meet him. tonight", False),
        ("im <12-17>", "I'm fourteen", True),
        ("im <12-17>", "im 18", False),
        ("^ <12-17> f", "15f. help", True),
        ("^ <12-17> f", "hi 15f", False),
        ("* road", "on London Road", True),
        ("self harm", "self-harm", True),
        ("dont tell", "don't tell", True),
        ("year 9", "yr9 here", False),
        ("yr 9", "yr9 here", True),
    ],
)
def test_lexicon_notation_matches_as_documented(phrase: str, text: str, matches: bool) -> None:
    assert bool(phrases([phrase], where="test").search(plain(text))) is matches


def test_lexicon_word_lists_are_expanded() -> None:
    found = phrases(["kill {who}"], {"who": ["herself", "him self"]}, where="test")
    assert found.search(plain("kill him self")) and not found.search(plain("kill time"))


@pytest.mark.parametrize(
    ("phrase", "complaint"),
    [
        ("(kill|hurt herself", "never closed"),
        ("kill {nobody}", "unknown word list"),
        ("(kill|)", "empty alternative"),
        ("[maybe]", "without any words"),
        ("(his|her)? life", "for optional words use"),
        ("im <17-12>", "not a range"),
        ("... tonight", "cannot start or end"),
        ("a ^ b", "can only start"),
    ],
)
def test_lexicon_refuses_a_broken_phrase_and_says_where(phrase: str, complaint: str) -> None:
    with pytest.raises(LexiconError, match=complaint) as error:
        phrases([phrase], where="lexicon.toml [risk.danger] says")
    assert "lexicon.toml [risk.danger] says, phrase 1" in str(error.value)


def _shipped() -> tuple[dict[str, Any], dict[str, Any]]:
    return load_toml("lexicon.toml"), load_toml("places.toml")


def test_lexicon_refuses_a_role_the_taxonomy_does_not_have() -> None:
    lexicon, places = _shipped()
    lexicon["role"]["astronaut"] = {"claims": ["im an astronaut"]}
    with pytest.raises(LexiconError, match="astronaut"):
        parse_understander(default_taxonomy(), lexicon, places)


def test_lexicon_refuses_a_town_under_two_regions() -> None:
    lexicon, places = _shipped()
    places["region"]["sct"]["places"].append("york")
    with pytest.raises(LexiconError, match="'york' is under both"):
        parse_understander(default_taxonomy(), lexicon, places)


def test_lexicon_refuses_a_broken_phrase_in_the_shipped_file_with_its_place() -> None:
    lexicon, places = _shipped()
    lexicon["risk"]["self_harm"]["says"].append("(end|stop it")
    with pytest.raises(LexiconError, match=r"\[risk\.self_harm\] says, phrase \d+"):
        parse_understander(default_taxonomy(), lexicon, places)


def test_shipped_corpora_parse_with_known_labels() -> None:
    tax = default_taxonomy()
    labels = {
        "enquirer_type": set(tax["enquirer_type"].labels),
        "setting": set(tax["setting"].labels),
        "region": set(tax["region"].labels),
        "platform_type": set(tax["platform_type"].labels),
        "platform": set(tax["platform"].labels),
    }
    for path in sorted(Path(corpus.CORPUS).parent.glob("*.jsonl")):
        for item in corpus.load(path):
            for key, known in labels.items():
                assert item.get(key) in known | {None}, (path.name, item)
            for category in item.get("categories") or []:
                assert category in set(tax["category"].labels), (path.name, item)


def test_understanding_reads_a_general_question_only_when_nothing_specific_is_said() -> None:
    fake = U.read("A fake TikTok account is posting about our head teacher. What can we do?")
    assert "general" not in fake.categories and "reputation" in fake.categories
    asking = U.read("We are looking for advice: what can we do to keep pupils safe online?")
    assert asking.categories == ("general",)
