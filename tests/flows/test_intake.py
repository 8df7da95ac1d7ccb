"""The intake conversation, driven as an enquirer would drive it."""

from __future__ import annotations

import pytest

from flows.conversation import CaseStatus, Conversation, ReplyVia, Step
from flows.intake import (
    MACHINE,
    ROUTE,
    AttachmentRefused,
    CaseSubmitted,
    CopyShown,
    FollowUp,
    Forget,
    IntakeFlow,
    Signposted,
)
from flows.messages import Command, Inbound
from tests.support.conversations import Enquirer


def submitted(enquirer: Enquirer) -> CaseSubmitted:
    found = [e for e in enquirer.effects if isinstance(e, CaseSubmitted)]
    assert len(found) == 1, enquirer.effects
    return found[0]


def signposted(enquirer: Enquirer) -> Signposted:
    found = [e for e in enquirer.effects if isinstance(e, Signposted)]
    assert len(found) == 1, enquirer.effects
    return found[0]


# The whole route -----------------------------------------------------------------------


def test_intake_professional_submits_a_complete_case(at_review: Enquirer) -> None:
    assert "Title: Fake TikTok account using our school logo" in at_review.text
    at_review.say("Send my enquiry")

    draft = submitted(at_review).draft
    assert at_review.step is Step.SUBMITTED
    assert draft.status is CaseStatus.NEW
    assert draft.enquirer_type == "Teacher"
    assert draft.setting == "Secondary"
    assert draft.region == "London"
    assert draft.platform_type == "Social Networks"
    assert draft.platform == "TikTok"
    assert draft.categories == ("Online Reputation", "Cyberbullying")
    assert draft.subject == "Fake TikTok account using our school logo"
    assert (draft.description or "").startswith("An account is posting")
    assert draft.links == ("https://www.tiktok.com/@fake_school_account",)
    assert draft.already_reported is False
    assert draft.urgent is False
    assert draft.reply_via is ReplyVia.EMAIL
    assert draft.contact_email == "dsl@school.example.org.uk"
    assert draft.contact_name == "Sam Jones, Example High"
    assert "HL-TEST01" in at_review.text


def test_intake_buttons_work_as_well_as_text(enquirer: Enquirer) -> None:
    enquirer.send(Inbound.commanded(Command.START))
    enquirer.send(Inbound.chose("police", question="role_group"))
    # A group with one role answers the role itself: straight on to the setting.
    assert enquirer.step is Step.SETTING
    enquirer.send(Inbound.chose("none", question="setting"))
    assert enquirer.step is Step.REGION


def test_intake_welcome_says_999_before_the_first_question(enquirer: Enquirer) -> None:
    enquirer.say("hi")
    assert "999" in enquirer.replies[0].text
    assert enquirer.replies[-1].question == "role_group"


@pytest.mark.parametrize(
    ("text", "step", "stored"),
    [
        ("I'm a DSL", Step.ROLE, "dsl"),
        ("secondary school", Step.SETTING, "secondary"),
        ("We're a primary school in Leeds", Step.SETTING, "primary"),
        ("tik tok", Step.PLATFORM, "tiktok"),
        ("insta", Step.PLATFORM, "instagram"),
        ("3", Step.SETTING, "fe"),
    ],
)
def test_intake_free_text_matching_an_option_is_accepted(
    enquirer: Enquirer, text: str, step: Step, stored: str
) -> None:
    enquirer.conversation = Conversation(step=step, answers={"role_group": "school"})
    enquirer.send(text)
    assert enquirer.conversation.answers[step.value] == stored


def test_intake_naming_the_platform_answers_where_and_which(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.PLATFORM_TYPE)
    enquirer.send("it's on tiktok")
    assert enquirer.conversation.answers["platform_type"] == "social"
    assert enquirer.conversation.answers["platform"] == "tiktok"
    assert enquirer.step is Step.CATEGORIES


def test_intake_website_content_skips_the_platform_question(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.PLATFORM_TYPE)
    enquirer.send("a website")
    assert enquirer.step is Step.CATEGORIES


# Remit and signposting ----------------------------------------------------------------


def test_remit_child_is_signposted_to_childline_and_nothing_personal_is_kept(
    enquirer: Enquirer,
) -> None:
    enquirer.say("hi", "I'm under 18")
    draft = signposted(enquirer).draft
    assert enquirer.step is Step.SIGNPOSTED
    assert "0800 1111" in enquirer.text
    assert "Report Remove" in enquirer.text
    assert draft.status is CaseStatus.SIGNPOSTED
    assert draft.enquirer_type == "Child (12-18)"
    assert "Childline" in draft.signposted_to
    assert draft.subject is None and draft.contact_email is None
    assert enquirer.conversation.answers == {"signposted_route": "child"}  # only where to


def test_remit_adult_intimate_image_abuse_goes_to_revenge_porn_helpline(
    enquirer: Enquirer,
) -> None:
    enquirer.say("hi", "member of the public", "Intimate images of me")
    draft = signposted(enquirer).draft
    assert "0345 6000 459" in enquirer.text
    assert "StopNCII" in enquirer.text
    assert draft.enquirer_type == "General Public"
    assert set(draft.signposted_to) == {"Revenge Porn Helpline", "StopNCII.org"}


def test_remit_own_nudes_with_no_age_are_not_taken_for_an_adults(enquirer: Enquirer) -> None:
    """A child writes "my nudes" too: with no age the first question is asked (it offers
    "I'm under 18"), never the adults' Revenge Porn Helpline on a guess."""
    enquirer.say("hi", "someone shared my nudes")
    assert "Revenge Porn" not in enquirer.text and "General Public" not in enquirer.text
    assert enquirer.step is Step.ROLE_GROUP
    enquirer.say("I'm under 18")
    assert "Report Remove" in enquirer.text and "0345 6000 459" not in enquirer.text


def test_remit_own_nudes_of_an_adult_who_says_so_go_to_the_revenge_porn_helpline(
    enquirer: Enquirer,
) -> None:
    enquirer.say("My ex has shared my nudes online. I'm 24, what can I do?", "That's right")
    assert "0345 6000 459" in enquirer.text
    assert signposted(enquirer).draft.enquirer_type == "General Public"


def test_remit_a_parents_own_images_go_to_the_revenge_porn_helpline(enquirer: Enquirer) -> None:
    enquirer.say("I'm a mum and someone is blackmailing me with my nudes, I'm 35", "That's right")
    assert "0345 6000 459" in enquirer.text and "NSPCC" not in enquirer.text


def test_remit_a_child_meeting_someone_gets_999_once_childline_and_ceop(
    enquirer: Enquirer,
) -> None:
    enquirer.say("hi", "he wants to meet me tonight and im 13")
    text = enquirer.text
    assert text.index("999") < text.index("0800 1111")
    assert text.count("Emergency services") == 1, "999 is not listed twice"
    assert "If someone online is asking to meet you" in text, "CEOP, worded for a child"
    assert enquirer.step is Step.SIGNPOSTED
    assert enquirer.conversation.answers == {"signposted_route": "child"}


def test_first_words_we_cannot_match_are_kept_as_their_story(enquirer: Enquirer) -> None:
    enquirer.say("hi")
    enquirer.send("someone shared my pic and im scared")
    assert "didn't catch" not in enquirer.text
    assert enquirer.replies[0].text.startswith("Thank you for telling me. I've kept that")
    assert enquirer.step is Step.ROLE_GROUP and enquirer.question.options
    enquirer.say("School or college staff", "Teacher")
    assert enquirer.conversation.answers["opening"] == "someone shared my pic and im scared"


def test_a_first_message_longer_than_a_description_says_what_was_kept(
    enquirer: Enquirer,
) -> None:
    enquirer.send("I teach at a secondary. A fake TikTok account posts about staff. " * 300)
    assert "so I've kept the first 10,000 characters" in enquirer.text
    assert len(enquirer.conversation.answers["opening"]) == 10_000


def test_a_parent_who_says_what_is_happening_is_not_asked_what_it_is_about(
    enquirer: Enquirer,
) -> None:
    enquirer.say(
        "I'm a parent. My 11 year old son is being bullied on Roblox by kids from his school.",
        "That's right",
    )
    assert "What is it about?" not in enquirer.text and "NSPCC" in enquirer.text
    assert enquirer.step is Step.SETTING


def test_remit_worried_parent_is_signposted_and_can_still_tell_us(enquirer: Enquirer) -> None:
    enquirer.say("hi", "parent", "I'm worried about a child")
    assert "NSPCC" in enquirer.text
    assert "0808 800 5000" in enquirer.text
    assert enquirer.step is Step.SETTING
    assert not [e for e in enquirer.effects if isinstance(e, Signposted)]


def test_remit_own_thoughts_go_to_stop_it_now(enquirer: Enquirer) -> None:
    enquirer.say("hi", "someone else", "Worried about my own thoughts")
    assert "Stop It Now" in enquirer.text
    assert signposted(enquirer).draft.signposted_to == ("Stop It Now",)


def test_remit_immediate_danger_says_999_and_marks_the_case_urgent(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "Immediate danger", "Yes")
    assert at_review.text.index("999") < at_review.text.index("Here is your enquiry")
    at_review.say("send")
    assert submitted(at_review).draft.urgent is True
    assert "999" in at_review.text


@pytest.mark.parametrize(
    "text", ["I think she wants to kill herself", "a pupil mentioned suicide", "SELF-HARM"]
)
def test_remit_self_harm_words_bring_samaritans_first(enquirer: Enquirer, text: str) -> None:
    enquirer.say("hi", "school staff", "teacher")
    enquirer.send(text)
    assert "116 123" in enquirer.replies[0].text
    assert enquirer.step is Step.SETTING  # still asking, kindly


def test_remit_danger_words_at_the_very_start_come_before_the_welcome(enquirer: Enquirer) -> None:
    enquirer.say("a child is in immediate danger")
    assert "999" in enquirer.replies[0].text
    assert enquirer.replies[0].text.index("call 999") < 50


@pytest.mark.parametrize(
    ("category", "services", "warning"),
    [
        ("grooming", ("CEOP", "101"), True),
        ("sextortion", ("CEOP", "Don't pay"), True),
        ("child sexual exploitation", ("CEOP", "iwf.org.uk"), True),
        ("sexting", ("Report Remove", "iwf.org.uk"), True),
        ("cyberbullying", (), False),
    ],
)
def test_remit_serious_categories_signpost_alongside_and_warn_about_images(
    enquirer: Enquirer, category: str, services: tuple[str, ...], warning: bool
) -> None:
    enquirer.conversation = Conversation(step=Step.CATEGORIES)
    enquirer.send(category)
    for service in services:
        assert service in enquirer.text
    assert enquirer.step is Step.SUBJECT
    enquirer.send("A title")
    assert ("don't send, screenshot or forward" in enquirer.text) is warning


# Attachments ---------------------------------------------------------------------------


@pytest.mark.parametrize("step", [s for s in Step])
def test_attachment_is_refused_at_every_step_and_nothing_else_changes(
    flow: IntakeFlow, step: Step
) -> None:
    enquirer = Enquirer(flow, Conversation(step=step, answers={"role_group": "school"}))
    before = enquirer.conversation.to_json()
    enquirer.send(Inbound.attachment())
    assert any(isinstance(e, AttachmentRefused) for e in enquirer.effects)
    assert "don't send photos" in enquirer.replies[0].text
    assert enquirer.conversation.to_json() == before


# Navigation ----------------------------------------------------------------------------


def test_back_returns_to_the_previous_question(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher", "secondary")
    assert enquirer.step is Step.REGION
    enquirer.say("back")
    assert enquirer.step is Step.SETTING
    enquirer.say("back")
    assert enquirer.step is Step.ROLE
    enquirer.say("back", "back")
    assert enquirer.step is Step.ROLE_GROUP
    assert "nothing to go back to" in enquirer.text


def test_back_skips_a_question_that_answered_itself(enquirer: Enquirer) -> None:
    enquirer.say("hi", "police")
    assert enquirer.step is Step.SETTING
    enquirer.say("back")
    assert enquirer.step is Step.ROLE_GROUP


def test_restart_forgets_everything_and_starts_again(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher")
    enquirer.say("start again")
    assert enquirer.step is Step.ROLE_GROUP
    assert enquirer.conversation.answers == {}
    assert any(isinstance(e, Forget) for e in enquirer.effects)


def test_cancel_deletes_answers_at_any_point(at_review: Enquirer) -> None:
    at_review.say("cancel")
    assert at_review.step is Step.CANCELLED
    assert at_review.conversation.answers == {}
    assert any(isinstance(e, Forget) for e in at_review.effects)
    assert "deleted" in at_review.text
    at_review.say("hello again")
    assert "start" in at_review.text.lower()
    at_review.say("start")
    assert at_review.step is Step.ROLE_GROUP


def test_help_explains_and_repeats_the_question(enquirer: Enquirer) -> None:
    enquirer.say("hi", "help")
    assert "back" in enquirer.text and enquirer.question.question == "role_group"


def test_start_in_the_middle_resumes_instead_of_wiping(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher")
    enquirer.command(Command.START)
    assert enquirer.step is Step.SETTING
    assert enquirer.conversation.answers["role"] == "teacher"


# Review and editing --------------------------------------------------------------------


def test_review_edit_changes_one_answer_and_returns_to_review(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "Setting", "primary")
    assert at_review.step is Step.REVIEW
    assert "Setting: Primary" in at_review.text
    at_review.say("send")
    assert submitted(at_review).draft.setting == "Primary"


def test_cancel_after_sending_keeps_the_case_and_says_so(at_review: Enquirer) -> None:
    at_review.say("send")
    reference = submitted(at_review).draft.reference
    effects_before = len(at_review.effects)
    at_review.command(Command.CANCEL)
    assert at_review.step is Step.SUBMITTED
    assert reference in at_review.text and "can't be cancelled" in at_review.text
    assert "deleted what you told me" not in at_review.text
    assert at_review.effects[effects_before:] == []
    at_review.say("please withdraw it")
    assert any(isinstance(e, FollowUp) for e in at_review.effects[effects_before:])


def test_review_edit_that_needs_a_follow_up_asks_it(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "Reply", "phone")
    assert at_review.step is Step.PHONE
    at_review.say("07700 900123")
    assert at_review.step is Step.REVIEW
    at_review.say("send")
    draft = submitted(at_review).draft
    assert draft.contact_phone == "07700 900123"
    assert draft.contact_email is None


def test_review_edit_drops_answers_that_no_longer_apply(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "Where", "a website")
    assert at_review.step is Step.REVIEW
    assert "Platform:" not in at_review.text
    at_review.say("send")
    assert submitted(at_review).draft.platform is None


def test_review_edit_of_role_to_child_signposts(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "You are", "I'm under 18")
    assert at_review.step is Step.SIGNPOSTED
    assert signposted(at_review).draft.contact_email is None


def test_review_back_from_editing_returns_to_review(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "Title", "back")
    assert at_review.step is Step.REVIEW


# Multiple choice -----------------------------------------------------------------------


def test_categories_toggle_ticks_then_done(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.CATEGORIES)
    enquirer.send(Inbound.toggled("bullying", question="categories"))
    enquirer.send(Inbound.toggled("hate", question="categories"))
    enquirer.send(Inbound.toggled("bullying", question="categories"))
    assert enquirer.question.selected == frozenset({"hate"})
    enquirer.send(Inbound.chose(question="categories"))
    assert enquirer.conversation.answers["categories"] == ["hate"]


def test_categories_done_with_nothing_ticked_asks_again(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.CATEGORIES)
    enquirer.send(Inbound.chose("done", question="categories"))
    assert "at least one" in enquirer.text
    assert enquirer.step is Step.CATEGORIES


def test_categories_show_a_help_line_for_each_option(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.CATEGORIES)
    enquirer.send(Inbound.commanded(Command.HELP))
    assert all(option.help for option in enquirer.question.options)


# Bad input on every question -------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        Step.ROLE_GROUP,
        Step.SETTING,
        Step.REGION,
        Step.PLATFORM_TYPE,
        Step.PLATFORM,
        Step.CATEGORIES,
        Step.ALREADY_REPORTED,
        Step.DANGER,
        Step.REPLY_VIA,
        Step.REVIEW,
        Step.PUBLIC_CONCERN,
    ],
)
def test_choice_question_reasks_kindly_with_options_on_nonsense(
    flow: IntakeFlow, step: Step
) -> None:
    answers = {"platform_type": "social"}
    enquirer = Enquirer(flow, Conversation(step=step, answers=dict(answers)))
    enquirer.send("purple elephant")
    assert enquirer.step is step
    assert "Sorry, I didn't catch that" in enquirer.replies[0].text
    assert enquirer.question.options


def test_forged_option_id_is_reasked_not_stored(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.SETTING)
    enquirer.send(Inbound.chose("'; DROP TABLE cases; --", question="setting"))
    assert enquirer.step is Step.SETTING
    assert "setting" not in enquirer.conversation.answers


def test_stale_button_from_an_older_question_says_it_moved_on(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher")
    enquirer.send(Inbound.chose("dsl", question="role"))
    assert "moved on" in enquirer.text
    assert enquirer.step is Step.SETTING
    assert enquirer.conversation.answers["role"] == "teacher"


def test_back_button_from_an_older_question_is_stale_too(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher", "secondary")
    at = enquirer.step
    enquirer.send(Inbound.commanded(Command.BACK, question="role"))
    assert "moved on" in enquirer.text
    assert enquirer.step is at
    enquirer.send(Inbound.commanded(Command.BACK, question=at.value))
    assert enquirer.step is Step.SETTING


def test_subject_of_50000_characters_is_refused_clearly(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.SUBJECT)
    enquirer.send("x" * 50_000)
    assert "50000 characters" in enquirer.text
    assert enquirer.step is Step.SUBJECT


def test_empty_text_is_reasked(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.SUBJECT)
    enquirer.send("   ")
    assert enquirer.step is Step.SUBJECT
    assert "didn't get any text" in enquirer.text


def test_description_spans_several_messages_until_done(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.DESCRIPTION)
    enquirer.say("First part.", "Second part, see https://instagram.com/fake_acc.")
    assert enquirer.step is Step.DESCRIPTION
    enquirer.send(Inbound.chose("done", question="description"))
    assert enquirer.conversation.answers["description"] == (
        "First part.\n\nSecond part, see https://instagram.com/fake_acc."
    )
    assert enquirer.step is Step.LINKS


def test_description_done_before_anything_is_reasked(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.DESCRIPTION)
    enquirer.say("done")
    assert "tell us a little" in enquirer.text
    assert enquirer.step is Step.DESCRIPTION


def test_description_too_long_keeps_what_was_already_sent(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.DESCRIPTION)
    enquirer.say("Kept part.", "y" * 20_000)
    assert "shorter summary" in enquirer.text
    assert enquirer.conversation.pending == ["Kept part."]


def test_links_without_a_web_address_are_reasked(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.LINKS)
    enquirer.say("the account is called fakehead")
    assert "couldn't find a web address" in enquirer.text
    enquirer.say("No links")
    assert enquirer.step is Step.ALREADY_REPORTED


def test_links_question_takes_an_account_name_when_there_is_no_link(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.LINKS, answers={"platform": "tiktok"})
    enquirer.send("i dont have the link, it is @hilltop_head_real (not jo@school.org.uk)")
    assert enquirer.conversation.answers["links"] == ["@hilltop_head_real"]
    assert enquirer.step is not Step.LINKS


def test_links_in_the_description_are_kept_with_the_case(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "What happened")
    at_review.say("See www.youtube.com/watch?v=abc and tiktok.com/@x.", "done")
    at_review.say("send")
    links = submitted(at_review).draft.links
    assert "https://www.youtube.com/watch?v=abc" in links
    assert "https://tiktok.com/@x" in links


@pytest.mark.parametrize("bad", ["not an email", "a@b", "@school.org", "x" * 300 + "@a.com"])
def test_email_that_is_not_one_is_reasked(enquirer: Enquirer, bad: str) -> None:
    enquirer.conversation = Conversation(step=Step.EMAIL, answers={"reply_via": "email"})
    enquirer.send(bad)
    assert enquirer.step is Step.EMAIL
    assert "doesn't look like an email" in enquirer.text


@pytest.mark.parametrize("bad", ["call me", "123", "+44 " + "9" * 30])
def test_phone_that_is_not_one_is_reasked(enquirer: Enquirer, bad: str) -> None:
    enquirer.conversation = Conversation(step=Step.PHONE, answers={"reply_via": "phone"})
    enquirer.send(bad)
    assert enquirer.step is Step.PHONE


def test_name_is_optional(enquirer: Enquirer) -> None:
    enquirer.conversation = Conversation(step=Step.NAME)
    enquirer.say("skip")
    assert enquirer.step is Step.REVIEW


# After submitting ----------------------------------------------------------------------


def test_after_submitting_more_messages_follow_up_the_case(at_review: Enquirer) -> None:
    at_review.say("send", "One more thing: a second account appeared.")
    follow = [e for e in at_review.effects if isinstance(e, FollowUp)]
    assert follow and follow[0].reference == "HL-TEST01"
    assert "added that" in at_review.text


def test_after_submitting_a_new_enquiry_can_begin(at_review: Enquirer) -> None:
    at_review.say("send")
    at_review.send(Inbound.chose("new"))
    assert at_review.step is Step.ROLE_GROUP
    assert at_review.conversation.answers == {}


# The table itself ----------------------------------------------------------------------


def test_machine_knows_every_step_and_only_those() -> None:
    assert set(MACHINE.states) == {s.value for s in Step}
    for edge in ROUTE:
        assert edge.name in MACHINE.events


def test_restored_conversation_with_unknown_state_starts_afresh() -> None:
    assert Conversation.from_json({"step": "no-such-step"}).step is Step.START
    assert Conversation.from_json({"step": "setting", "answers": "garbage"}).answers == {}


def test_review_back_during_an_edit_that_needs_more_asks_for_it(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "You are", "Social care, health or local authority")
    assert at_review.step is Step.ROLE
    at_review.say("back")
    assert at_review.step is Step.ROLE and "please answer this" in at_review.text
    at_review.say("social worker")
    assert at_review.step is Step.REVIEW
    at_review.say("send")
    draft = submitted(at_review).draft
    assert draft.enquirer_type == "Social Worker" and draft.setting == "Secondary"


def test_review_cannot_submit_a_half_finished_enquiry(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "Reply", "phone", "back")
    assert at_review.step is Step.PHONE
    at_review.conversation.step = Step.REVIEW  # e.g. a stale Send button
    at_review.say("send")
    assert at_review.step is Step.PHONE
    assert not [e for e in at_review.effects if isinstance(e, CaseSubmitted)]


def test_review_edited_description_drops_links_it_no_longer_has(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "What happened", "See https://example.org/old-post", "done")
    at_review.say("Change an answer", "What happened", "Corrected: no link after all.", "done")
    at_review.say("send")
    assert "https://example.org/old-post" not in submitted(at_review).draft.links


def test_remit_a_signposted_child_who_writes_again_is_helped_again_and_counted_once(
    enquirer: Enquirer,
) -> None:
    enquirer.say("hi", "im 14 and someone is sharing a pic of me")
    assert sum(isinstance(e, Signposted) for e in enquirer.effects) == 1
    again = enquirer.say("my name is Jo and I go to Roundhay school, what do I do")
    assert sum(isinstance(e, Signposted) for e in enquirer.effects) == 1, "no second record"
    assert any(isinstance(e, Forget) for e in again.effects), "what they wrote is not kept"
    assert "0800 1111" in enquirer.text
    enquirer.say("help")
    assert "0800 1111" in enquirer.text and "I collect the details" not in enquirer.text
    assert enquirer.step is Step.SIGNPOSTED


def test_after_sending_a_typed_number_or_label_picks_the_option_shown(
    at_review: Enquirer,
) -> None:
    """ "A number only ever picks a numbered option of the question on screen": the menu
    under the confirmation too, rather than "2" going to the case as a message."""
    at_review.say("send")
    at_review.say("1")
    assert not any(isinstance(e, FollowUp) for e in at_review.effects)
    assert any(isinstance(e, CopyShown) for e in at_review.effects)
    at_review.say("Start a new enquiry")
    assert at_review.step is Step.ROLE_GROUP


def test_after_sending_words_that_only_contain_an_option_are_a_message(
    at_review: Enquirer,
) -> None:
    at_review.say("send")
    at_review.say("I will start a new enquiry for the other school tomorrow")
    assert any(isinstance(e, FollowUp) for e in at_review.effects)
    assert at_review.step is Step.SUBMITTED
