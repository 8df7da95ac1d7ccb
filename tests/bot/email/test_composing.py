"""What we write back: the acknowledgement's content (flows.mail) and the email it becomes."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from bot.email.composing import as_html, compose, message_id
from flows.conversation import CaseStatus
from flows.intake import IntakeFlow
from flows.mail import EmailEnquiry, clean_subject, read_email, reference_in
from flows.turn import Context

FLOW = IntakeFlow()
NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
CONTEXT = Context(now=NOW, reference="HL-ABCDEF", reply_note="A practitioner will reply by 14:00.")


def read(body: str, subject: str = "Help", attachments: int = 0):  # type: ignore[no-untyped-def]
    enquiry = EmailEnquiry(
        subject=subject, body=body, sender="them@example.org", attachments=attachments
    )
    return read_email(FLOW, enquiry, CONTEXT)


def test_email_from_a_dsl_at_a_primary_is_understood_from_its_signature() -> None:
    reading = read(
        "A pupil made a fake TikTok account pretending to be one of our teachers.\n\n"
        "Kind regards\nJane\nDesignated Safeguarding Lead, Hilltop Primary",
        subject="Fake account",
    )
    draft = reading.draft
    assert draft.status is CaseStatus.NEW and not reading.signposted
    assert (draft.enquirer_type, draft.setting, draft.platform) == ("DSL", "Primary", "TikTok")
    assert draft.subject == "Fake account" and draft.contact_email == "them@example.org"
    assert reading.subject == "Re: [HL-ABCDEF] Fake account"
    assert "HL-ABCDEF" in reading.text and "A practitioner will reply by 14:00." in reading.text
    assert "You are: DSL" in reading.text, "what we understood, for them to correct"
    assert "TikTok" in reading.text.split("reply by 14:00.")[1], "self-help for their platform"


def test_a_child_writing_gets_childline_and_report_remove_and_nothing_is_kept() -> None:
    reading = read("im 13 and someone shared a nude pic of me on snapchat", subject="pls help")
    assert reading.signposted and reading.draft.status is CaseStatus.SIGNPOSTED
    assert "0800 1111" in reading.text and "childline.org.uk/remove" in reading.text
    draft = reading.draft
    assert draft.description is None and draft.contact_email is None and draft.subject is None
    assert "Childline" in draft.signposted_to


def test_an_adult_whose_intimate_images_were_shared_gets_the_revenge_porn_helpline() -> None:
    reading = read("My ex has shared my nudes online. I'm 24, what can I do?")
    assert reading.signposted
    assert "0345 6000 459" in reading.text


def test_a_parent_writing_gets_the_nspcc_and_the_case_is_still_recorded() -> None:
    reading = read(
        "I am a parent. My daughter (14) is being bullied on Instagram by girls in her class.",
        subject="bullying",
    )
    assert not reading.signposted and reading.draft.enquirer_type == "Parent"
    assert "NSPCC Helpline: 0808 800 5000" in reading.text
    assert "Your child can call 0800 1111" in reading.text, "Childline worded for a parent"
    assert "NSPCC Helpline" in reading.draft.signposted_to


def test_a_member_of_the_public_writing_is_not_told_about_a_child() -> None:
    reading = read("I'm a member of the public. A fake Facebook page is using my company's name.")
    assert "NSPCC" not in reading.text and "the child" not in reading.text
    assert "Report Harmful Content" in reading.text


def test_a_parents_own_images_by_email_go_to_the_revenge_porn_helpline() -> None:
    reading = read("I'm a mum and someone is blackmailing me with my nudes, I'm 35")
    assert reading.signposted and "0345 6000 459" in reading.text
    assert "NSPCC" not in reading.text


def test_a_professional_writing_is_not_pointed_to_the_nspcc() -> None:
    reading = read("I'm a teacher: pupils are bullying a classmate on Instagram.")
    assert reading.draft.enquirer_type == "Teacher" and "NSPCC" not in reading.text


def test_own_nudes_with_no_age_get_the_services_for_a_child_too() -> None:
    reading = read("someone has shared my nudes online, what can I do", subject="help")
    assert reading.signposted and "0345 6000 459" in reading.text
    assert reading.text.index("If you are under 18") < reading.text.index("childline.org.uk")
    assert "Report Remove" in reading.text


def test_a_very_long_email_is_kept_to_a_description_and_says_so() -> None:
    reading = read("I'm a teacher: pupils are bullying a classmate on Instagram. " * 500)
    assert len(reading.draft.description or "") == 10_000
    assert "we kept its first 10,000 characters" in reading.text


def test_risk_puts_999_first_and_makes_the_case_urgent() -> None:
    reading = read(
        "I am a teacher. A pupil told me he wants to kill himself tonight after abuse on Instagram."
    )
    assert reading.draft.urgent
    assert reading.sections[0].startswith("If a child is in immediate danger, call 999")
    assert "116 123" in reading.text


def test_attachments_are_explained_and_links_asked_for() -> None:
    reading = read("I'm a teacher; screenshots attached of bullying on WhatsApp.", attachments=2)
    assert "2 attachment(s)" in reading.text and "links" in reading.text


def test_subject_prefixes_and_references() -> None:
    assert clean_subject("RE: Fwd: [HL-ABCDEF]  Fake   account") == "Fake account"
    assert reference_in("Re: [hl-abcdef] x") == "HL-ABCDEF"
    assert reference_in("Re: HL-ABCDE1 x") is None, "1 is not in the reference alphabet"


def test_composed_email_threads_says_it_is_automatic_and_escapes_html() -> None:
    ours = message_id("HL-ABCDEF-ack-1", "helpline.test")
    message = compose(
        sender="helpline@helpline.test",
        sender_name="Helpline",
        to="them@example.org",
        subject="Re: [HL-ABCDEF] <b>hi</b>",
        text="You wrote <script>x()</script> & https://x.test/a?b=1&c=2",
        msg_id=ours,
        at=NOW,
        in_reply_to="<theirs@example.org>",
        references=["<first@example.org>"],
        automatic=True,
    )
    again = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert again["Message-ID"] == ours == "<hl-HL-ABCDEF-ack-1@helpline.test>"
    assert again["In-Reply-To"] == "<theirs@example.org>"
    assert again["References"] == "<first@example.org> <theirs@example.org>"
    assert again["Auto-Submitted"] == "auto-replied"
    html = again.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://x.test/a?b=1&amp;c=2">' in html


def test_html_of_text_escapes_everything() -> None:
    assert "&lt;img src=x onerror=alert(1)&gt;" in as_html("<img src=x onerror=alert(1)>")


def test_services_for_the_category_are_shown_as_in_the_chat() -> None:
    reading = read(
        "I'm a teacher. An adult has been grooming a Year 8 pupil on Snapchat, "
        "asking her to meet him and send photos."
    )
    assert "Online Grooming" in reading.draft.categories or "Grooming" in reading.draft.categories
    assert "ceop.police.uk" in reading.text.lower()
