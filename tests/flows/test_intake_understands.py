"""Whole conversations with people who answer in their own words (each defect of issue 10)."""

from __future__ import annotations

import pytest

from flows.conversation import Conversation, Step
from flows.intake import CaseSubmitted, Forget, IntakeFlow, Signposted
from flows.messages import Command, Inbound
from tests.support.conversations import PROFESSIONAL_TO_REVIEW, Enquirer

OPENING = (
    "Hi, I'm the DSL at a secondary in York, a fake Snapchat account is posting our staff's "
    "photos with vile captions, we reported it and nothing happened"
)


def draft_of(enquirer: Enquirer) -> CaseSubmitted:
    found = [e for e in enquirer.effects if isinstance(e, CaseSubmitted)]
    assert len(found) == 1, enquirer.effects
    return found[0]


def signposted(enquirer: Enquirer) -> Signposted:
    found = [e for e in enquirer.effects if isinstance(e, Signposted)]
    assert len(found) == 1, enquirer.effects
    return found[0]


# Children recognised in their own words, at once ----------------------------------------


@pytest.mark.parametrize(
    "opening",
    ["hi im 14 and someone at school is sharing a pic of me", "I'm 15 and need help", "I am 16"],
)
def test_child_first_message_is_signposted_to_childline_keeping_nothing(
    enquirer: Enquirer, opening: str
) -> None:
    enquirer.say(opening)
    draft = signposted(enquirer).draft
    assert "0800 1111" in enquirer.text and "Report Remove" in enquirer.text
    assert "If a nude image of you" in enquirer.text  # worded for the child
    assert draft.enquirer_type == "Child (12-18)" and draft.subject is None
    assert enquirer.conversation.answers == {"signposted_route": "child"}  # only where to


def test_child_at_the_first_question_is_not_stored_as_a_teacher(enquirer: Enquirer) -> None:
    enquirer.command(Command.START)
    enquirer.say("im not a teacher im a student")
    assert signposted(enquirer).draft.enquirer_type == "Child (12-18)"


def test_child_saying_their_age_later_is_signposted_too(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff")
    enquirer.say("actually im 15 and in year 10")
    assert enquirer.step is Step.SIGNPOSTED
    assert signposted(enquirer).draft.enquirer_type == "Child (12-18)"


def test_adult_writing_about_a_child_is_not_signposted(enquirer: Enquirer) -> None:
    enquirer.say("I teach year 9 and one of my pupils, she's 14, has had her photo shared")
    assert enquirer.step is not Step.SIGNPOSTED


# Risk recognised beyond fixed phrases, then the same question, kindly ------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("she wants to take her own life", "116 123"),
        ("he will end it all", "116 123"),
        ("she self harms", "116 123"),
        ("a man is going to meet her tonight at the park", "999"),
        ("he threatened to stab a teacher tomorrow", "999"),
        ("she has run away and is missing", "999"),
    ],
)
def test_risk_at_a_question_brings_crisis_lines_then_the_same_question_kindly(
    enquirer: Enquirer, text: str, line: str
) -> None:
    enquirer.say("hi", "school staff", "teacher")
    assert enquirer.step is Step.SETTING
    enquirer.send(text)
    assert line in enquirer.replies[0].text
    assert "didn't catch" not in enquirer.text
    assert "here's where we were" in enquirer.text
    assert enquirer.step is Step.SETTING and enquirer.question.question == "setting"


def test_figure_of_speech_raises_no_risk(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher")
    enquirer.send("this account is killing our reputation")
    assert "999" not in enquirer.text and "116 123" not in enquirer.text


def test_risk_marks_the_case_urgent_and_says_why_without_claiming_they_said_danger(
    at_review: Enquirer,
) -> None:
    at_review.say("Change an answer", "What happened")
    at_review.say("She said she wants to end it all", "done", "send")
    draft = draft_of(at_review).draft
    assert draft.urgent is True
    assert "You told us someone is in danger" not in at_review.text
    assert "mentioned a risk" in at_review.text


# A first message taken in --------------------------------------------------------------


def test_first_message_is_taken_in_shown_back_and_kept(enquirer: Enquirer) -> None:
    enquirer.say(OPENING)
    assert enquirer.step is Step.CONFIRM
    shown = enquirer.question.text
    for fact in ("DSL", "Secondary", "Yorkshire and the Humber", "Snapchat", "Online Reputation"):
        assert fact in shown
    assert "Reported to the platform: Yes" in shown
    assert [o.label for o in enquirer.question.options] == ["That's right", "Change something"]
    enquirer.send(Inbound.chose("ok", question="confirm"))
    assert enquirer.step is Step.SUBJECT  # role, setting, region, platform, category: not asked


def test_first_message_reaches_a_case_in_at_most_eight_answers(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow)
    answers = [OPENING, "That's right", "Fake Snapchat account", "No links", "No", "here"]
    answers += ["no thanks", "send"]
    enquirer.say(*answers)
    draft = draft_of(enquirer).draft
    assert len(answers) <= 8
    assert draft.enquirer_type == "DSL" and draft.setting == "Secondary"
    assert draft.region == "Yorkshire and the Humber" and draft.platform == "Snapchat"
    assert draft.categories[0] == "Online Reputation" and draft.already_reported is True
    assert draft.description == OPENING  # the first message kept as the description
    assert draft.contact_name is None


def test_step_by_step_enquirer_needs_no_more_answers_than_before(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow)
    enquirer.say(*PROFESSIONAL_TO_REVIEW, "send")
    assert len(PROFESSIONAL_TO_REVIEW) + 1 == 17  # the count before the understanding layer
    assert draft_of(enquirer).draft.subject == "Fake TikTok account using our school logo"


def test_short_first_message_keeps_the_start_of_the_description(enquirer: Enquirer) -> None:
    enquirer.say("A fake TikTok account is posting about our staff")
    assert enquirer.step is Step.CONFIRM
    enquirer.say("That's right", "school staff", "teacher", "secondary", "leeds")
    enquirer.say("Fake account")
    assert enquirer.step is Step.DESCRIPTION
    assert "kept what you wrote first" in enquirer.text
    enquirer.say("It started last week.", "done")
    assert enquirer.conversation.answers["description"].startswith("A fake TikTok account")


def test_confirmation_takes_a_typed_correction(enquirer: Enquirer) -> None:
    enquirer.say(OPENING)
    enquirer.say("no, I'm actually the deputy head")
    assert enquirer.step is Step.CONFIRM
    assert "Assistant/Deputy headteacher" in enquirer.question.text
    enquirer.say("yes")
    enquirer.say("Fake account", "no links", "no", "here", "skip", "send")
    assert draft_of(enquirer).draft.enquirer_type == "Assistant/Deputy headteacher"


def test_confirmation_change_something_asks_that_and_comes_back(enquirer: Enquirer) -> None:
    enquirer.say(OPENING)
    enquirer.send(Inbound.chose("change", question="confirm"))
    assert enquirer.step is Step.EDIT
    labels = [o.label for o in enquirer.question.options]
    assert "Region" in labels and "Title" not in labels  # only what was understood
    enquirer.say("Region", "London")
    assert enquirer.step is Step.CONFIRM and "London" in enquirer.question.text


def test_greeting_first_gets_the_welcome_and_the_first_question(enquirer: Enquirer) -> None:
    enquirer.say("hello")
    assert "999" in enquirer.replies[0].text and enquirer.step is Step.ROLE_GROUP


# Every answer understood ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "role"),
    [
        ("DSL", "dsl"),
        ("I'm a DSL", "dsl"),
        ("social worker", "social_worker"),
        ("deputy head", "deputy"),
        ("safeguarding lead", "dsl"),
        ("im a techer", "teacher"),
        ("foster carer", "foster"),
    ],
)
def test_role_in_common_words_answers_who_they_are(
    enquirer: Enquirer, answer: str, role: str
) -> None:
    enquirer.command(Command.START)
    enquirer.say(answer)
    assert enquirer.conversation.answers["role"] == role
    assert enquirer.step is Step.SETTING  # not asked again, and a foster carer is in remit


@pytest.mark.parametrize(
    ("step", "answer", "stored"),
    [
        (Step.SETTING, "secondry", "secondary"),
        (Step.PLATFORM, "insta", "instagram"),
        (Step.REGION, "York", "yh"),
        (Step.REGION, "Manchster", "nw"),
    ],
)
def test_typos_and_towns_are_understood(
    flow: IntakeFlow, step: Step, answer: str, stored: str
) -> None:
    enquirer = Enquirer(flow, Conversation(step=step, answers={"platform_type": "social"}))
    enquirer.send(answer)
    assert enquirer.conversation.answers[step.value] == stored


def test_typo_of_a_concern_is_understood(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow, Conversation(step=Step.CATEGORIES))
    enquirer.send("bulying")
    assert enquirer.conversation.answers["categories"] == ["bullying"]


def test_one_answer_can_say_two_things_and_is_acknowledged(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher", "a primary school in Leeds")
    assert enquirer.conversation.answers["region"] == "yh"
    assert "Noted: Yorkshire and the Humber" in enquirer.text
    assert enquirer.step is Step.PLATFORM_TYPE


def test_a_number_only_picks_the_option_on_screen(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow, Conversation(step=Step.PLATFORM_TYPE))
    enquirer.send("1")
    assert enquirer.conversation.answers["platform_type"] == "social"
    assert "platform" not in enquirer.conversation.answers  # not TikTok without asking
    assert enquirer.step is Step.PLATFORM


@pytest.mark.parametrize(("step", "answers"), [(Step.NAME, {}), (Step.LINKS, {})])
def test_one_at_a_one_button_step_is_the_button(
    flow: IntakeFlow, step: Step, answers: dict[str, object]
) -> None:
    enquirer = Enquirer(flow, Conversation(step=step, answers=answers))
    enquirer.send("1")
    assert enquirer.step is not step
    assert enquirer.conversation.answers[step.value] in (None, [])


def test_one_at_the_description_is_done(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow, Conversation(step=Step.DESCRIPTION))
    enquirer.say("It started on Monday.", "1")
    assert enquirer.conversation.answers["description"] == "It started on Monday."


@pytest.mark.parametrize("answer", ["no thanks", "No thank you!", "rather not", "nah", "skip"])
def test_no_thanks_at_the_optional_name_skips_it(flow: IntakeFlow, answer: str) -> None:
    enquirer = Enquirer(flow, Conversation(step=Step.NAME))
    enquirer.send(answer)
    assert enquirer.conversation.answers["name"] is None


def test_three_failed_answers_offer_own_words_and_the_helplines_routes(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow, Conversation(step=Step.PLATFORM, answers={"platform_type": "social"}))
    enquirer.say("purple elephant", "blue whale")
    assert "own words" not in enquirer.text
    enquirer.say("green giraffe")
    assert "own words" in enquirer.text and "0344 381 4772" in enquirer.text
    enquirer.say("a site my nan uses called Bebo")
    assert enquirer.conversation.answers["platform"] == "other"
    assert enquirer.conversation.answers["own_words"] == {
        "platform": "a site my nan uses called Bebo"
    }
    assert enquirer.step is not Step.PLATFORM


def test_own_words_reach_the_practitioner_in_the_description(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow)
    enquirer.say(*PROFESSIONAL_TO_REVIEW[:5], "x", "y", "z", "the kids showed me on the bus")
    enquirer.say(*PROFESSIONAL_TO_REVIEW[6:], "send")
    draft = draft_of(enquirer).draft
    assert draft.platform_type == "Unknown"
    assert "the kids showed me on the bus" in (draft.description or "")


# Safety wording that fits the reader ------------------------------------------------------


def test_danger_answered_no_does_not_claim_they_said_danger(at_review: Enquirer) -> None:
    at_review.say("send")
    assert "You told us someone is in danger" not in at_review.text


def test_danger_question_has_not_sure_which_marks_the_case_urgent(at_review: Enquirer) -> None:
    at_review.say("Change an answer", "Immediate danger")
    assert "Not sure" in [o.label for o in at_review.question.options]
    at_review.say("not sure")
    assert "999" in at_review.text and "101" in at_review.text
    at_review.say("send")
    assert draft_of(at_review).draft.urgent is True


def _to_categories(enquirer: Enquirer, group: str, role: str) -> None:
    enquirer.say("hi", group, role, "secondary", "london", "snapchat")
    assert enquirer.step is Step.CATEGORIES


def test_dsl_is_not_told_to_tell_their_dsl(enquirer: Enquirer) -> None:
    _to_categories(enquirer, "school staff", "DSL")
    enquirer.say("sexting", "A title", "Details.", "done", "no links", "no", "yes")
    assert "tell your DSL" not in enquirer.text
    enquirer.say("here", "skip", "send")
    assert "tell your DSL" not in enquirer.text


def test_teacher_is_told_to_tell_their_dsl(enquirer: Enquirer) -> None:
    _to_categories(enquirer, "school staff", "teacher")
    enquirer.say("sexting", "A title", "Details.", "done", "no links", "no", "yes")
    enquirer.say("here", "skip", "send")
    assert "tell your DSL" in enquirer.text


def test_report_remove_is_worded_for_a_deputy_head(enquirer: Enquirer) -> None:
    _to_categories(enquirer, "school staff", "deputy head")
    enquirer.say("sexting")
    assert "a nude image of you" not in enquirer.text
    assert "A young person under 18 can use Report Remove" in enquirer.text


def test_police_officer_is_not_told_to_contact_the_police(enquirer: Enquirer) -> None:
    enquirer.say("hi", "police", "not a school setting", "london", "snapchat")
    enquirer.say("grooming")
    assert "CEOP" in enquirer.text
    assert "Call 101 to report a crime" not in enquirer.text


# Questions that fit the enquiry -------------------------------------------------------------


def test_parent_is_asked_about_their_childs_school(enquirer: Enquirer) -> None:
    enquirer.say("hi", "parent", "I'm worried about a child")
    assert "your child go to" in enquirer.question.text


def test_member_of_the_public_is_not_asked_about_a_setting(enquirer: Enquirer) -> None:
    enquirer.say("hi", "member of the public", "something else")
    assert enquirer.step is Step.REGION


def test_policy_question_is_not_asked_about_links_or_reporting(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher", "secondary", "london", "a website")
    enquirer.say("policy enquiry", "Age limits", "What is the minimum age?", "done")
    assert enquirer.step is Step.DANGER


def test_title_example_and_description_prompt_fit_the_concern(enquirer: Enquirer) -> None:
    _to_categories(enquirer, "school staff", "teacher")
    enquirer.say("grooming")
    assert "Fake TikTok account" not in enquirer.question.text
    assert "Adult messaging" in enquirer.question.text
    enquirer.say("Adult messaging a pupil")
    assert "who is contacting the child" in enquirer.question.text


def test_category_menu_puts_what_was_said_first_and_is_short(enquirer: Enquirer) -> None:
    enquirer.say("hi", "school staff", "teacher", "secondary")
    enquirer.say("London. A man keeps asking a year 8 pupil for nudes", "snapchat")
    menu = enquirer.question
    assert menu.question == "categories"
    assert menu.options[0].id in ("sexting", "grooming")
    assert len(menu.options) <= 10 and menu.options[-1].id == "more"
    assert len(menu.text) + sum(len(o.label) + len(o.help) for o in menu.options) < 800


def test_category_menu_more_shows_every_option(flow: IntakeFlow) -> None:
    enquirer = Enquirer(flow, Conversation(step=Step.CATEGORIES))
    enquirer.send(Inbound.toggled("more", question="categories"))
    assert len(enquirer.question.options) == len(flow.taxonomy["category"].offered)
    enquirer.send(Inbound.toggled("media", question="categories"))
    enquirer.send(Inbound.chose(question="categories"))
    assert enquirer.conversation.answers["categories"] == ["media"]


def test_restart_after_a_first_message_forgets_it(enquirer: Enquirer) -> None:
    enquirer.say(OPENING, "restart")
    assert enquirer.conversation.answers == {} and enquirer.conversation.understood == []
    assert any(isinstance(e, Forget) for e in enquirer.effects)
