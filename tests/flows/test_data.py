"""The shipped data files: the report's taxonomy, the directory's contacts, the wording."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.copy import default_copy
from flows.knowledge import Knowledge
from flows.playbooks import default_playbooks
from flows.remit import Directory, Route, default_directory
from flows.taxonomy import default_taxonomy, load_toml, parse_taxonomy
from flows.understanding import Risk, Understander, default_understander, parse_understander

# The labels exactly as the 2022-23 report prints them (Tables 1, 2, 3, 4 and 6).
REPORT = {
    "enquirer_type": """Teacher|Other School Staff|General Public|DSL|ICT school support|
        Head Teacher|Assistant/Deputy headteacher|MAT employee|Other|Parent|Local Authority|Charity/NGO|Police|
        Unknown|Social Worker|Child (12-18)|Medical Staff|Social Care|Out of Remit|Foster Carer""",
    "setting": "Secondary|Primary|Further Education/College|Early Years",
    "platform_type": """Social Networks|Websites|Out of Remit|Emails|Apps|Unknown|Mobile Device|
        Online Games|Peer-to-Peer|Chatrooms|Online Community/Forum""",
    "platform": "TikTok|Instagram|Snapchat|Facebook|Twitter",
    "category": """Child Sexual Exploitation|Cyberbullying|Data Privacy|e-Crime|Excessive Use|
        Gaming|General Enquiry|Grooming|Hate Speech|Love/Relationships/Sexuality|Media Enquiry|
        Media Literacy/Education|Online Reputation|Other|Out of Remit|Policy Enquiry|
        Potentially Harmful Content|Prank Calls|Sexting|Sextortion|Sexual Harassment|
        Technical Settings""",
}


@pytest.mark.parametrize("table", sorted(REPORT))
def test_taxonomy_holds_every_label_of_the_report(table: str) -> None:
    expected = {label.strip() for label in REPORT[table].split("|")}
    assert expected <= set(default_taxonomy()[table].labels)


def test_taxonomy_category_table_is_exactly_the_reports_table_6() -> None:
    expected = {label.strip() for label in REPORT["category"].split("|")}
    assert set(default_taxonomy()["category"].labels) == expected


def test_taxonomy_offered_categories_each_have_a_help_line() -> None:
    for term in default_taxonomy()["category"].offered:
        assert 10 < len(term.help) <= 60, term.id


def test_taxonomy_ids_fit_in_telegram_callback_data() -> None:
    for table in default_taxonomy().tables.values():
        for term in table.terms:
            assert re.fullmatch(r"[a-z0-9_]{1,20}", term.id), term.id


def test_taxonomy_regions_cover_the_uk_nations_and_english_regions() -> None:
    labels = set(default_taxonomy()["region"].labels)
    assert {"Scotland", "Wales", "Northern Ireland", "London", "South East", "North East"} <= labels
    assert len(labels) >= 12


def test_taxonomy_rejects_a_group_naming_an_unknown_role() -> None:
    data: dict[str, list[dict[str, object]]] = {
        name: []
        for name in ("setting", "region", "platform_type", "platform", "category", "outcome")
    }
    data["enquirer_type"] = [{"id": "teacher", "label": "Teacher"}]
    data["enquirer_group"] = [{"id": "g", "text": "G", "members": ["nobody"]}]
    with pytest.raises(ValueError, match="bad members"):
        parse_taxonomy(data)


def _knowledge(read_lexicons: object) -> Knowledge:
    return Knowledge(
        taxonomy=default_taxonomy(),
        directory=default_directory(),
        copy=default_copy(),
        playbooks=default_playbooks(),
        read_lexicons=read_lexicons,  # type: ignore[arg-type]
    )


def test_knowledge_reads_the_lexicons_only_when_a_message_needs_them() -> None:
    built: list[Understander] = []

    def read_lexicons() -> Understander:
        built.append(default_understander())
        return built[-1]

    knowledge = _knowledge(read_lexicons)
    assert built == []
    assert knowledge.understander is knowledge.understander is built[0]
    assert len(built) == 1


def test_knowledge_refuses_lexicons_read_against_another_taxonomy() -> None:
    other = parse_taxonomy(load_toml("taxonomy.toml"))
    knowledge = _knowledge(
        lambda: parse_understander(other, load_toml("lexicon.toml"), load_toml("places.toml"))
    )
    with pytest.raises(ValueError, match="another taxonomy"):
        _ = knowledge.understander


def test_knowledge_refuses_a_category_signposting_an_unknown_service() -> None:
    directory = default_directory()
    services = {k: v for k, v in directory.services.items() if k != "iwf"}
    with pytest.raises(ValueError, match="unknown services"):
        Knowledge(
            taxonomy=default_taxonomy(),
            directory=Directory(services, directory.routes),
            copy=default_copy(),
            playbooks=default_playbooks(),
            read_lexicons=default_understander,
        )


def test_directory_routes_name_known_services_with_the_domain_facts() -> None:
    directory = default_directory()
    contacts = " ".join(s.contact for s in directory.services.values())
    for fact in (
        "0800 1111",
        "0345 6000 459",
        "0808 800 5000",
        "116 123",
        "85258",
        "0800 068 4141",
        "0808 1000 900",
        "iwf.org.uk",
        "ceop.police.uk",
        "999",
    ):
        assert fact in contacts
    assert directory.ends(Route.CHILD) and not directory.ends(Route.DANGER)


@pytest.mark.parametrize(
    ("text", "risks"),
    [
        ("he said he will kill himself tonight", (Risk.DANGER, Risk.SELF_HARM)),
        ("she wants to kill herself", (Risk.SELF_HARM,)),
        ("a child is in immediate danger", (Risk.DANGER,)),
        ("the account is killing our reputation", ()),
        ("skills and dangerous challenges", ()),
    ],
)
def test_understanding_spots_risk_words_without_crying_wolf(
    text: str, risks: tuple[Risk, ...]
) -> None:
    assert default_understander().read(text).risks == risks


def test_copy_has_every_key_the_flow_uses() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in Path("flows").glob("*.py"))
    keys = set(
        re.findall(
            r'"((?:questions|reasks|signpost|outcome|options|review|fields|attachment|confirm|welcome|title_examples|describe)\.[a-z_]+)"',
            source,
        )
    )
    copy = default_copy()
    assert keys, "the scan found no keys"
    assert [k for k in keys if k not in copy.entries] == []


def test_copy_has_the_wording_built_from_data() -> None:
    """Keys the flow builds from ids: a reminder per risk, a title example per category."""
    from flows.understanding import Risk

    copy = default_copy()
    keys = [f"signpost.reminder_{risk.value}" for risk in Risk]
    keys += [f"signpost.intro_{route.value}" for route in Route]
    keys += [f"title_examples.{t.id}" for t in default_taxonomy()["category"].offered]
    keys += ["title_examples.default", "describe.default", "welcome.short"]
    assert [k for k in keys if k not in copy.entries] == []
