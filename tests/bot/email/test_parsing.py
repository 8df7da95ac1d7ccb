"""Reading real-shaped mail: every email in the corpus is parsed, classified and read right."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.email.classify import MailKind, classify
from bot.email.parsing import html_to_text, parse_email

CORPUS = Path(__file__).parent / "corpus"
OWN = frozenset({"helpline@helpline.test"})


def mail(name: str):  # type: ignore[no-untyped-def]
    return parse_email((CORPUS / name).read_bytes())


# name -> (kind, attachments, words the text must have, words it must not)
EXPECTED: dict[str, tuple[MailKind, int, tuple[str, ...], tuple[str, ...]]] = {
    "outlook_new_dsl.eml": (
        MailKind.PERSON,
        0,
        ("fake TikTok account", "https://www.tiktok.com/@mrs_fake_teacher"),
        ("Kind regards", "confidential"),
    ),
    "gmail_reply.eml": (
        MailKind.PERSON,
        0,
        ("https://www.tiktok.com/@mrs_fake_two",),
        ("wrote:", "opened case", "older quoted"),
    ),
    "outlook_reply.eml": (MailKind.PERSON, 0, ("We’ll keep an eye out",), ("Sent:", "opened case")),
    "forwarded_chain.eml": (
        MailKind.PERSON,
        0,
        ("head teacher", "My daughter is getting messages"),
        (),
    ),
    "html_only.eml": (
        MailKind.PERSON,
        0,
        ("racist abuse", "(https://www.youtube.com/watch?v=abc123)"),
        ("alert(", "color: red", "tracker.example.com", "<p>"),
    ),
    "multipart_images_pdf.eml": (MailKind.PERSON, 2, ("WhatsApp group",), ("PNG", "PDF-1.4")),
    "inline_image.eml": (
        MailKind.PERSON,
        1,
        ("https://www.instagram.com/fake_greenfields",),
        ("cid:",),
    ),
    "base64_body.eml": (MailKind.PERSON, 0, ("blackmailed on Instagram",), ()),
    "windows1252.eml": (
        MailKind.PERSON,
        0,
        ("I’m the deputy head at St Mary’s Primary", "café", "comments – what"),
        (),
    ),
    "unknown_charset.eml": (MailKind.PERSON, 0, ("strangers in a Roblox game",), ()),
    "no_message_id.eml": (MailKind.PERSON, 0, ("WhatsApp group",), ()),
    "child.eml": (MailKind.PERSON, 0, ("im 13",), ()),
    "risk.eml": (MailKind.PERSON, 0, ("kill himself",), ()),
    "intimate_adult.eml": (MailKind.PERSON, 0, ("shared my nudes",), ()),
    "out_of_office.eml": (MailKind.AUTO_REPLY, 0, (), ()),
    "ooo_x_autoreply.eml": (MailKind.AUTO_REPLY, 0, (), ()),
    "bounce_dsn.eml": (MailKind.BOUNCE, 0, (), ()),
    "mailing_list.eml": (MailKind.LIST, 0, (), ()),
    "bulk_newsletter.eml": (MailKind.LIST, 0, (), ()),
    "own_mail.eml": (MailKind.OWN, 0, (), ()),
    "malformed_headers.eml": (MailKind.NO_SENDER, 0, (), ()),
}


def test_corpus_is_all_covered() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_email_is_read_and_classified(name: str) -> None:
    kind, attachments, has, lacks = EXPECTED[name]
    parsed = mail(name)
    assert classify(parsed, OWN) is kind
    assert parsed.attachments == attachments
    for words in has:
        assert words in parsed.text, f"{words!r} missing from {parsed.text!r}"
    for words in lacks:
        assert words not in parsed.text, f"{words!r} left in {parsed.text!r}"


def test_rfc2047_subjects_in_any_charset_are_decoded() -> None:
    assert mail("base64_body.eml").subject == "Sextortion – urgent advice"
    assert mail("windows1252.eml").subject == "Pupil’s photo shared on Facebook – café group"
    assert mail("windows1252.eml").sender_name == "Renée O'Brien"


def test_signature_is_kept_apart_without_disclaimers() -> None:
    parsed = mail("outlook_new_dsl.eml")
    assert "Designated Safeguarding Lead, Hilltop Primary" in parsed.signature
    assert "confidential" not in parsed.signature


def test_threading_headers_and_bounced_ids_are_read() -> None:
    reply = mail("gmail_reply.eml")
    assert reply.in_reply_to == ("<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>",)
    assert reply.thread_ids[0] == "<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>"
    assert "<DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.outlook.com>" in reply.thread_ids
    assert "<hl-HL-ABCDEF-ack-1a2b3c@helpline.test>" in mail("bounce_dsn.eml").returned_ids


def test_missing_message_id_and_broken_headers_do_not_raise() -> None:
    assert mail("no_message_id.eml").message_id is None
    broken = mail("malformed_headers.eml")
    assert broken.sender == "" and broken.message_id is None


def test_html_is_text_without_scripts_and_with_link_addresses() -> None:
    text = html_to_text(
        '<p>See <a href="https://x.test/a">this</a></p><script>evil()</script>'
        '<img src="http://tracker.test/p.gif">'
    )
    assert text == "See this (https://x.test/a)"


def test_a_huge_body_is_read_only_as_far_as_needed() -> None:
    raw = b"From: a@b.test\r\nSubject: big\r\n\r\n" + b"word " * 4_000_000
    parsed = parse_email(raw)
    assert 0 < len(parsed.text) <= 60_000


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_parse_without_raising(raw: bytes) -> None:
    parsed = parse_email(raw)
    classify(parsed, OWN)


def test_a_content_type_the_standard_parser_trips_on_still_parses() -> None:
    raw = b"From: a@b.example\r\nSubject: hi\r\nContent-Type: 0;0*\r\n\r\nHello there"
    parsed = parse_email(raw)
    assert parsed.sender == "a@b.example" and parsed.subject == "hi"
    assert parsed.text == "Hello there"


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=500), st.text(max_size=200))
def test_any_headers_and_body_parse_without_raising(body: str, subject: str) -> None:
    raw = f"From: {subject}\r\nSubject: {subject}\r\nContent-Type: {subject}\r\n\r\n{body}"
    parse_email(raw.encode("utf-8", "surrogatepass"))
