"""Whatever an enquirer sends, at whatever step, the flow answers and stays valid."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flows.conversation import Conversation, Step
from flows.intake import Context, IntakeFlow
from flows.messages import Command, Inbound, InboundKind
from flows.questions import QUESTIONS, offered

FLOW = IntakeFlow()
CONTEXT = Context(datetime(2026, 11, 24, tzinfo=UTC), "HL-PROP01")
# Ids the flow offers somewhere, plus ones it never offers.
KNOWN_IDS = sorted(
    {
        o.option.id
        for step in QUESTIONS
        for o in offered(step, FLOW.knowledge, {"role_group": "school"})
    }
    | {"done", "new", "submit", "edit", "cancel", "subject", "setting"}
)
option_ids = st.one_of(st.sampled_from(KNOWN_IDS), st.text(max_size=70))

inbounds = st.one_of(
    st.builds(Inbound.typed, st.text(max_size=300)),
    st.builds(
        lambda ids, q: Inbound(InboundKind.CHOOSE, option_ids=tuple(ids), question=q),
        st.lists(option_ids, max_size=4),
        st.one_of(st.none(), st.sampled_from([s.value for s in Step])),
    ),
    st.builds(
        lambda i, q: Inbound.toggled(i, question=q),
        option_ids,
        st.one_of(st.none(), st.sampled_from([s.value for s in Step])),
    ),
    st.builds(Inbound.commanded, st.sampled_from(list(Command))),
    st.just(Inbound.attachment()),
)
answers = st.dictionaries(
    st.sampled_from([s.value for s in Step] + ["risks", "signposted_to"]),
    st.one_of(st.text(max_size=20), st.lists(st.text(max_size=10), max_size=3), st.none()),
    max_size=6,
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(step=st.sampled_from(list(Step)), saved=answers, messages=st.lists(inbounds, max_size=6))
# Found by this test: a saved role that is a list made the route's "is_public" raise.
@example(step=Step.CONFIRM, saved={"start": None, "role": []}, messages=[Inbound.typed("")])
def test_flow_any_input_at_any_step_never_escapes_and_stays_valid(
    step: Step, saved: dict[str, object], messages: list[Inbound]
) -> None:
    conversation = Conversation.from_json({"step": step.value, "answers": saved})
    for inbound in messages:
        result = FLOW.handle(conversation, inbound, CONTEXT)
        conversation = result.conversation
        assert conversation.step in Step
        assert result.replies, "every message gets an answer"
        assert all(r.text for r in result.replies)
        # The saved form round-trips, so the next message can be handled after a restart.
        assert Conversation.from_json(conversation.to_json()) == conversation


@settings(max_examples=150, deadline=None)
@given(messages=st.lists(inbounds, max_size=25))
def test_flow_random_conversation_from_start_never_escapes(messages: list[Inbound]) -> None:
    conversation = Conversation()
    for inbound in messages:
        conversation = FLOW.handle(conversation, inbound, CONTEXT).conversation
    assert conversation.step in Step
