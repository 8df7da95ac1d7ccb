"""After submitting, "Send me a copy" shows the enquirer what they sent, and emails it to
the address they gave (once) when the helpline can send email."""

from __future__ import annotations

import pytest

from flows.conversation import Step
from flows.intake import IntakeFlow
from flows.messages import Inbound
from flows.turn import CopyEmailed, CopyShown, FollowUp
from flows.validate import mask_email
from tests.support.conversations import PROFESSIONAL_TO_REVIEW, Enquirer

MASKED = "d…@school.example.org.uk"


def emailed(enquirer: Enquirer) -> list[CopyEmailed]:
    return [e for e in enquirer.effects if isinstance(e, CopyEmailed)]


def test_send_me_a_copy_shows_what_was_sent_and_offers_it_again(at_review: Enquirer) -> None:
    sent = at_review.say("send")
    offered = [o.id for r in sent.replies for o in r.options]
    assert "copy" in offered and "new" in offered
    copy = at_review.send(Inbound.chose("copy"))
    text = copy.replies[-1].text
    assert "Here is a copy of what you sent us for enquiry" in text
    assert "Fake TikTok account using our school logo" in text
    assert "dsl@school.example.org.uk" in text
    assert [o.id for o in copy.replies[-1].options] == ["copy", "new"]
    assert at_review.step is Step.SUBMITTED
    assert copy.effects == (CopyShown("HL-TEST01"),), "only the disclosure, for the audit"


def test_without_email_the_chat_says_so_kindly_and_nothing_is_queued(at_review: Enquirer) -> None:
    at_review.say("send")
    copy = at_review.send(Inbound.chose("copy"))
    assert "can't send email from here" in copy.replies[-1].text
    assert not emailed(at_review)


def test_with_email_the_copy_goes_to_the_address_given_once(at_review: Enquirer) -> None:
    at_review.email_copies = True
    at_review.say("send")
    first = at_review.send(Inbound.chose("copy"))
    assert f"I'm emailing it to {MASKED} too." in first.replies[-1].text
    assert "Fake TikTok account using our school logo" in first.replies[-1].text, "and in chat"
    (email,) = emailed(at_review)
    assert email.reference == "HL-TEST01" and email.to == "dsl@school.example.org.uk"
    assert email.subject == "[HL-TEST01] A copy of your enquiry"
    assert email.text.startswith("Hello Sam Jones, Example High,")
    assert "Here is a copy of what you sent us for enquiry HL-TEST01" in email.text
    assert "edited photos of staff with insulting captions" in email.text
    assert "reply to this email" in email.text
    again = at_review.send(Inbound.chose("copy"))
    assert f"It was emailed to {MASKED} already." in again.replies[-1].text
    assert len(emailed(at_review)) == 1, "one email a case, however often they ask"
    assert again.effects == (CopyShown("HL-TEST01"),)


def test_the_email_holds_the_whole_description_the_chat_a_shortened_one(
    enquirer: Enquirer,
) -> None:
    long = "They keep posting about our staff every evening. " * 20
    script = list(PROFESSIONAL_TO_REVIEW)
    script[8] = long
    enquirer.email_copies = True
    enquirer.say(*script, "send")
    copy = enquirer.send(Inbound.chose("copy"))
    (email,) = emailed(enquirer)
    assert long.strip() in email.text
    assert long.strip() not in copy.replies[-1].text and "…" in copy.replies[-1].text


def test_without_an_address_only_the_chat_copy_is_given(enquirer: Enquirer) -> None:
    script = [*PROFESSIONAL_TO_REVIEW[:-3], "this chat", "Sam"]
    enquirer.email_copies = True
    enquirer.say(*script)
    assert enquirer.step is Step.REVIEW, enquirer.text
    enquirer.say("send")
    copy = enquirer.send(Inbound.chose("copy"))
    text = copy.replies[-1].text
    assert "Here is a copy" in text and "email" not in text.split("\n\n")[0]
    assert not emailed(enquirer)


def test_typing_send_me_a_copy_after_sending_is_the_button(at_review: Enquirer) -> None:
    at_review.email_copies = True
    at_review.say("send")
    typed = at_review.send("Please send me a copy")
    assert "Here is a copy" in typed.replies[-1].text and len(emailed(at_review)) == 1
    other = at_review.send("A copy of the screenshot is with the DSL now")
    assert "Here is a copy" not in other.replies[-1].text
    assert any(isinstance(e, FollowUp) for e in other.effects), "that is a follow-up"


def test_a_copy_is_not_offered_once_a_new_enquiry_begins(at_review: Enquirer) -> None:
    at_review.email_copies = True
    at_review.say("send")
    at_review.send(Inbound.chose("new"))
    stale = at_review.send(Inbound.chose("copy"))
    assert "Here is a copy" not in " ".join(r.text for r in stale.replies)
    assert not emailed(at_review)


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("copy", True),
        ("COPY", True),
        ("Copy please", True),
        ("Please send me a copy.", True),
        ("Could you email me a copy of my enquiry please?", True),
        ("can I have a copy", True),
        ("I'd like a copy", True),
        ("copy of the screenshot attached", False),
        ("they made a copy of my account", False),
        ("copy that", False),
    ],
)
def test_what_counts_as_asking_for_a_copy(flow: IntakeFlow, text: str, asks: bool) -> None:
    assert flow.knowledge.understander.is_copy_request(text) is asks


def test_the_address_is_masked_when_the_chat_names_it() -> None:
    assert mask_email("jane.smith@hilltop.sch.uk") == "j…@hilltop.sch.uk"
    assert mask_email("not-an-address") == "not-an-address"
