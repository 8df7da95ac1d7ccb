"""Messages for an earlier case while a new enquiry is in progress (the pure flow)."""

from __future__ import annotations

from flows.conversation import Conversation, Step
from flows.intake import WHICH_CASE, Context, FollowUp, IntakeFlow, StepResult
from flows.messages import Command, Inbound
from tests.support.conversations import NOW

EARLIER = "HL-AAAAA2"


def _new_enquiry(flow: IntakeFlow) -> Conversation:
    """A chat that sent HL-AAAAA2 and started a new enquiry (asked who they are)."""
    submitted = Conversation(step=Step.SUBMITTED, reference=EARLIER)
    started = flow.handle(submitted, Inbound.commanded(Command.START), Context(NOW, "HL-BBBBB3"))
    assert started.conversation.step is Step.ROLE_GROUP
    assert started.conversation.earlier == [EARLIER]
    return started.conversation


def _send(
    flow: IntakeFlow, conv: Conversation, inbound: Inbound, awaiting: str | None = None
) -> StepResult:
    return flow.handle(conv, inbound, Context(NOW, "HL-CCCCC4", awaiting=awaiting))


def test_followups_a_reply_naming_an_earlier_case_goes_there_and_the_question_is_asked_again(
    flow: IntakeFlow,
) -> None:
    conv = _new_enquiry(flow)
    result = _send(flow, conv, Inbound.typed("the link is tiktok.com/@x", about=EARLIER))
    assert result.effects == (FollowUp(EARLIER, "the link is tiktok.com/@x", NOW),)
    assert result.conversation.step is Step.ROLE_GROUP and not result.conversation.answers
    assert result.replies[-1].question == "role_group"


def test_followups_a_reply_naming_a_case_not_of_this_chat_is_an_ordinary_message(
    flow: IntakeFlow,
) -> None:
    conv = _new_enquiry(flow)
    result = _send(flow, conv, Inbound.typed("School or college staff", about="HL-ZZZZZ9"))
    assert not any(isinstance(e, FollowUp) for e in result.effects)
    assert result.conversation.step is Step.ROLE


def test_followups_more_text_while_asked_which_joins_the_held_message(flow: IntakeFlow) -> None:
    conv = _new_enquiry(flow)
    asked = _send(flow, conv, Inbound.typed("still up"), awaiting=EARLIER)
    assert asked.replies[-1].question == WHICH_CASE and not asked.effects
    again = _send(flow, asked.conversation, Inbound.typed("and a second one"))
    assert again.replies[-1].question == WHICH_CASE
    chose = _send(flow, again.conversation, Inbound.chose("case:" + EARLIER, question=WHICH_CASE))
    (effect,) = chose.effects
    assert isinstance(effect, FollowUp) and effect.text == "still up\n\nand a second one"
    assert chose.conversation.held is None and chose.conversation.step is Step.ROLE_GROUP


def test_followups_a_command_instead_of_an_answer_files_the_held_message_then_runs(
    flow: IntakeFlow,
) -> None:
    conv = _new_enquiry(flow)
    asked = _send(flow, conv, Inbound.typed("still up"), awaiting=EARLIER)
    result = _send(flow, asked.conversation, Inbound.commanded(Command.HELP))
    assert result.effects == (FollowUp(EARLIER, "still up", NOW),)
    assert "added that to your enquiry" in result.replies[0].text
    assert result.conversation.held is None


def test_followups_a_which_button_pressed_again_is_stale(flow: IntakeFlow) -> None:
    conv = _new_enquiry(flow)
    asked = _send(flow, conv, Inbound.typed("still up"), awaiting=EARLIER)
    press = Inbound.chose("current", question=WHICH_CASE)
    first = _send(flow, asked.conversation, press)
    assert first.conversation.step is Step.ROLE_GROUP  # "still up" was no answer: asked again
    second = _send(flow, first.conversation, press)
    assert not second.effects and second.conversation.step is first.conversation.step


def test_followups_with_nothing_else_in_progress_the_answer_goes_to_the_case(
    flow: IntakeFlow,
) -> None:
    conv = Conversation(step=Step.CANCELLED, earlier=[EARLIER])
    result = _send(flow, conv, Inbound.typed("gone now, thanks"), awaiting=EARLIER)
    assert result.effects == (FollowUp(EARLIER, "gone now, thanks"),)


def test_followups_saved_state_with_junk_is_cleaned(flow: IntakeFlow) -> None:
    restored = Conversation.from_json(
        {
            "step": "role",
            "earlier": ["HL-AAAAA2", "nonsense", 3],
            "held": 5,
            "held_for": "x",
            "held_since": "yesterday",
        }
    )
    assert restored.earlier == ["HL-AAAAA2"]
    assert restored.held is None and restored.held_for is None and restored.held_since is None


def test_followups_risk_in_one_comes_first_then_where_it_went_and_that_it_is_urgent(
    flow: IntakeFlow,
) -> None:
    """Safety first in any message, an enquiry already sent included."""
    submitted = Conversation(step=Step.SUBMITTED, reference=EARLIER)
    result = _send(flow, submitted, Inbound.typed("He has now said he wants to kill himself"))
    (effect,) = result.effects
    assert isinstance(effect, FollowUp) and effect.reference == EARLIER
    assert {r.value for r in effect.risks} >= {"self_harm"}
    texts = [r.text for r in result.replies]
    assert "Samaritans" in " ".join(texts[:-2])
    assert texts[-2:] == [
        f"Thank you, I've added that to your enquiry {EARLIER}.",
        "Because of what you said, I've marked it urgent for the team.",
    ]
    plain = _send(flow, submitted, Inbound.typed("The account posted again today"))
    (quiet,) = plain.effects
    assert isinstance(quiet, FollowUp) and quiet.risks == ()
    assert [r.text for r in plain.replies] == [
        f"Thank you, I've added that to your enquiry {EARLIER}."
    ]


def test_followups_risk_in_a_message_that_could_be_for_either_goes_to_the_case_at_once(
    flow: IntakeFlow,
) -> None:
    """Not held for an answer to "which case?" that may never come."""
    conv = _new_enquiry(flow)
    result = _send(flow, conv, Inbound.typed("he says he will kill himself"), awaiting=EARLIER)
    (effect,) = result.effects
    assert isinstance(effect, FollowUp) and effect.reference == EARLIER and effect.risks
    assert result.conversation.held is None
    assert result.replies[-1].question == "role_group", "the enquiry in hand carries on"


def test_followups_risk_added_while_asked_which_sends_both_to_the_case(flow: IntakeFlow) -> None:
    conv = _new_enquiry(flow)
    asked = _send(flow, conv, Inbound.typed("still up"), awaiting=EARLIER)
    risky = _send(flow, asked.conversation, Inbound.typed("and now she is self harming"))
    (effect,) = risky.effects
    assert isinstance(effect, FollowUp) and effect.text == "still up\n\nand now she is self harming"
    assert "Samaritans" in " ".join(r.text for r in risky.replies)
    assert risky.conversation.held is None
