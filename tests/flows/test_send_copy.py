"""After submitting, "Send me a copy" shows the enquirer what they sent."""

from __future__ import annotations

from flows.conversation import Step
from flows.messages import Inbound
from tests.support.conversations import Enquirer


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
    assert at_review.step is Step.SUBMITTED and not copy.effects  # nothing new is sent


def test_a_copy_is_not_offered_once_a_new_enquiry_begins(at_review: Enquirer) -> None:
    at_review.say("send")
    at_review.send(Inbound.chose("new"))
    stale = at_review.send(Inbound.chose("copy"))
    assert "Here is a copy" not in " ".join(r.text for r in stale.replies)
