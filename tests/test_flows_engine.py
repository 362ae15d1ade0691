"""The flow engine on the small fixture flows in tests/data/flows_small."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest

from flows.engine import (
    Button,
    DialogueState,
    FlowEngine,
    HandoffRequest,
    Turn,
    TurnResult,
    entity_values,
)
from flows.loader import FlowError, load_flows
from flows.model import FlowSet
from nlu.types import OUT_OF_SCOPE, Entity, IntentScore, ParseResult

FIXTURES = Path(__file__).parent / "data" / "flows_small"

# What a fake NLU says about the texts these tests send; anything else is out of scope.
INTENTS = {
    "где мой заказ": "order_status",
    "позови человека": "human",
    "верните деньги": "refund",
    "оценка": "rate",
    "имя": "name",
    "ветки": "branches",
    "операторы": "ops",
    "петля": "loop",
    "доставка": "delivery",
    "погода": "weather",  # known to the NLU, handled by no flow
}


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return load_flows(FIXTURES)


@pytest.fixture
def engine(flows: FlowSet) -> FlowEngine:
    return FlowEngine(flows, rng=random.Random(7))


def say(text: str) -> Turn:
    intent = INTENTS.get(text, OUT_OF_SCOPE)
    confidence = 0.9 if intent != OUT_OF_SCOPE else 0.2
    return Turn(text=text, parse=ParseResult(text, intent, confidence))


def said(text: str, intent: str, *found: tuple[str, str]) -> Turn:
    """A message with entities (name, value), as the NLU reports them, and a confident intent."""
    entities = tuple(
        Entity(name, value, max(text.find(value), 0), max(text.find(value), 0) + len(value))
        for name, value in found
    )
    parse = ParseResult(text, intent, 0.9 if intent != OUT_OF_SCOPE else 0.2, entities=entities)
    return Turn(text=text, parse=parse)


def texts(result: TurnResult) -> list[str]:
    return [reply.text for reply in result.replies]


def converse(engine: FlowEngine, *turns: Turn, state: DialogueState | None = None) -> TurnResult:
    state = state or DialogueState()
    result = None
    for turn in turns:
        result = engine.handle(state, turn)
        state = result.state
    assert result is not None
    return result


def test_start_greets_by_name_with_a_random_variant_and_buttons(flows: FlowSet) -> None:
    state = DialogueState().with_slot("first_name", "Аня")
    seen = set()
    for seed in range(20):
        result = FlowEngine(flows, rng=random.Random(seed)).handle(
            state, Turn(payload="flow:start")
        )
        seen.update(texts(result))
    assert seen == {"Здравствуйте, Аня!", "Добрый день, Аня!"}
    assert result.understood and result.handoff is None
    assert result.replies[0].buttons == (
        Button("Где мой заказ", "intent:order_status", None),
        Button("Оператор", "flow:human", None),
        Button("Сайт", None, "https://example.com"),
    )


def test_same_rng_seed_gives_the_same_variants(flows: FlowSet) -> None:
    def greetings(seed: int) -> list[str]:
        engine = FlowEngine(flows, rng=random.Random(seed))
        return [
            texts(engine.handle(DialogueState(), Turn(payload="flow:start")))[0] for _ in range(8)
        ]

    assert greetings(3) == greetings(3)
    assert len(set(greetings(3))) == 2


def test_language_picks_its_text_and_falls_back_to_ru(flows: FlowSet) -> None:
    state = DialogueState().with_slot("first_name", "Ann")
    english = FlowEngine(flows, language="en").handle(state, Turn(payload="flow:start"))
    assert texts(english) == ["Hello, Ann!"]
    assert english.replies[0].buttons[1].title == "Operator"
    assert english.replies[0].buttons[0].title == "Где мой заказ"  # written without languages
    german = FlowEngine(flows, language="de", rng=random.Random(1))
    assert texts(german.handle(state, Turn(payload="flow:start")))[0] in {
        "Здравствуйте, Ann!",
        "Добрый день, Ann!",
    }
    refund = FlowEngine(flows, language="en").handle(DialogueState(), say("верните деньги"))
    assert texts(refund) == ["What amount?"]


def test_ask_validates_with_regex_and_stores_the_answer(engine: FlowEngine) -> None:
    asked = converse(engine, say("где мой заказ"))
    assert texts(asked) == ["Назовите номер заказа"]
    assert (asked.state.flow, asked.state.step) == ("order_status", 0)
    done = engine.handle(asked.state, say(" 1234567 "))
    assert texts(done) == ["Заказ №1234567 в пути, {скоро}."]
    assert done.state.slots["order_number"] == "1234567"
    assert done.state.flow is None and done.state.step is None
    assert done.trace[0] == "flow order_status · step 1 ask order_number = '1234567'"


def test_rejected_answer_says_the_error_and_repeats_the_question(engine: FlowEngine) -> None:
    first = converse(engine, say("где мой заказ"), say("12"))
    assert texts(first) == ["Номер заказа — это 6–10 цифр.", "Назовите номер заказа"]
    assert first.state.retries == 1 and first.understood
    assert first.trace == ("flow order_status · step 1 ask order_number (retry 1/2)",)
    second = engine.handle(first.state, say("abc"))
    assert second.state.retries == 2 and second.handoff is None


def test_retries_used_up_go_to_on_fail(engine: FlowEngine) -> None:
    result = converse(engine, say("где мой заказ"), say("1"), say("2"), say("3"))
    assert result.handoff == HandoffRequest("order_not_found", "normal", ("orders",))
    assert result.state.flow is None and result.state.retries == 0
    assert any("cant_find" in line for line in result.trace)


def test_number_answer_is_normalised_and_checked_against_bounds(engine: FlowEngine) -> None:
    result = converse(engine, say("верните деньги"), say("1 500,50"))
    assert texts(result) == ["Вернём 1500.50 ₽.", "Готово."]
    assert result.state.slots["amount"] == "1500.50"


def test_failed_ask_without_on_fail_hands_off_as_ask_failed(engine: FlowEngine) -> None:
    result = converse(engine, say("верните деньги"), say("200000"))  # above max, retries: 0
    assert result.handoff == HandoffRequest("ask_failed", "normal", ("refund",))
    assert result.replies == ()


def test_if_gt_branches_to_a_handoff_with_priority(engine: FlowEngine) -> None:
    result = converse(engine, say("верните деньги"), say("6000"))
    assert result.handoff == HandoffRequest("big_refund", "urgent", ())
    assert texts(result) == []


@pytest.mark.parametrize(
    ("answer", "stored", "reply"),
    [("ХОРОШО", "Хорошо", "Спасибо!"), ("плохо", "Плохо", "Жаль."), ("skip", "skip", "Жаль.")],
)
def test_choice_answers_are_canonical_and_button_values_count(
    engine: FlowEngine, answer: str, stored: str, reply: str
) -> None:
    result = converse(engine, say("оценка"), say(answer))
    assert result.state.slots["mark"] == stored
    assert texts(result)[0] == reply


def test_value_payload_answers_the_waiting_ask(engine: FlowEngine) -> None:
    asked = converse(engine, say("оценка"))
    assert [b.payload for b in asked.replies[0].buttons] == [
        "value:хорошо",
        "value:Плохо",
        "value:skip",
    ]
    result = engine.handle(asked.state, Turn(payload="value:хорошо"))
    assert result.understood and result.intent is None
    assert result.state.slots["mark"] == "Хорошо" and texts(result) == ["Спасибо!"]


def test_value_payload_without_a_waiting_ask_is_not_understood(engine: FlowEngine) -> None:
    result = engine.handle(DialogueState(), Turn(payload="value:хорошо"))
    assert not result.understood
    assert texts(result) == ["Я не понял вас. Переформулируйте, пожалуйста."]
    assert result.state.misses == 1


def test_goto_flow_continues_in_the_other_flow(engine: FlowEngine) -> None:
    result = converse(engine, say("оценка"), say("плохо"))
    assert result.handoff == HandoffRequest("customer_request", "normal", ())
    assert "flow rating · step 5 goto flow:human" in result.trace


def test_confident_other_intent_leaves_the_question(engine: FlowEngine) -> None:
    result = converse(engine, say("где мой заказ"), say("позови человека"))
    assert result.handoff == HandoffRequest("customer_request", "normal", ())
    assert result.state.flow is None and result.understood
    assert result.intent == "human"


def test_intent_of_the_same_flow_or_out_of_scope_is_a_rejected_answer(engine: FlowEngine) -> None:
    again = converse(engine, say("где мой заказ"), say("где мой заказ"))
    assert again.state.retries == 1 and again.state.flow == "order_status"
    nonsense = converse(engine, say("где мой заказ"), say("абв"))
    assert nonsense.state.retries == 1 and nonsense.understood


def test_button_press_leaves_a_question_even_without_validation(engine: FlowEngine) -> None:
    asked = converse(engine, say("имя"))
    result = engine.handle(asked.state, Turn(payload="intent:human"))
    assert result.handoff is not None and "nick" not in result.state.slots


def test_set_fills_and_clears_slots(engine: FlowEngine) -> None:
    state = DialogueState(slots={"old": "x"})
    result = converse(engine, say("имя"), say("Петя"), state=state)
    assert texts(result) == ["Привет, Петя!"]
    assert result.state.slots == {"nick": "Петя", "greeting": "Привет, Петя"}


@pytest.mark.parametrize(
    ("slots", "end"),
    [
        ({}, "not_equals"),
        ({"x": "еж"}, "equals"),
        ({"x": "ЁЖ"}, "equals"),
        ({"x": "кот"}, "not_equals"),
    ],
)
def test_equals_and_not_equals(engine: FlowEngine, slots: dict[str, str], end: str) -> None:
    result = engine.handle(DialogueState(slots=slots), say("ветки"))
    assert texts(result) == [end]


@pytest.mark.parametrize(
    ("slots", "end"),
    [
        ({"x": "b"}, "in"),
        ({"x": "123"}, "matches"),
        ({}, "missing"),
        ({"x": "-5,5"}, "negative"),
        ({"x": "12a"}, "other"),
        ({"x": ""}, "missing"),
    ],
)
def test_other_operators(engine: FlowEngine, slots: dict[str, str], end: str) -> None:
    assert texts(engine.handle(DialogueState(slots=slots), say("операторы"))) == [end]


def test_a_loop_without_an_ask_is_stopped_with_a_handoff(engine: FlowEngine) -> None:
    result = engine.handle(DialogueState(), say("петля"))
    assert result.handoff == HandoffRequest("flow_loop", "normal", ("loop",))
    assert "100 steps in one turn" in result.trace[-2]


def test_handoff_clears_the_flow_and_keeps_slots(engine: FlowEngine) -> None:
    asked = converse(engine, say("где мой заказ"), state=DialogueState(slots={"a": "b"}))
    result = engine.handle(asked.state, say("позови человека"))
    assert result.state == DialogueState(slots={"a": "b"})


def test_misses_in_a_row_hand_off_and_start_counting_again(engine: FlowEngine) -> None:
    first = engine.handle(DialogueState(), say("ыыы"))
    assert not first.understood and first.state.misses == 1 and first.handoff is None
    second = engine.handle(first.state, say("ъъъ"))
    assert not second.understood
    assert second.handoff == HandoffRequest("fallback", "high", ("nlu", "misses"))
    assert texts(second) == ["Сейчас позову оператора."]
    assert second.state.misses == 0
    assert second.trace[:2] == ("out of scope", "not understood (miss 2/2) → flow fallback_handoff")


def test_an_understood_turn_resets_the_misses(engine: FlowEngine) -> None:
    result = converse(engine, say("ыыы"), say("где мой заказ"), say("ыыы"))
    assert result.handoff is None and result.state.misses == 0  # an ask answer is understood
    result = converse(engine, say("ыыы"), Turn(payload="flow:start"), say("ыыы"))
    assert result.handoff is None and result.state.misses == 1


def test_known_intent_without_a_flow_goes_to_fallback(engine: FlowEngine) -> None:
    result = engine.handle(DialogueState(), say("погода"))
    assert not result.understood
    assert (result.intent, result.confidence) == ("weather", 0.9)
    assert result.trace[0] == "intent weather (0.90): no flow"


@pytest.mark.parametrize(
    "turn",
    [
        Turn(payload="intent:out_of_scope"),
        Turn(payload="intent:weather"),
        Turn(payload="flow:nope"),
        Turn(payload="bogus"),
        Turn(payload=""),
        Turn(text="где мой заказ"),  # no parse
        Turn(),
    ],
)
def test_unusable_turns_are_not_understood(engine: FlowEngine, turn: Turn) -> None:
    result = engine.handle(DialogueState(), turn)
    assert not result.understood and result.state.misses == 1


def test_out_of_scope_goes_to_fallback_and_traces_the_best_guess(engine: FlowEngine) -> None:
    ranking = (IntentScore("refund", 0.3),)
    parse = ParseResult("x", OUT_OF_SCOPE, 0.99, ranking)
    result = engine.handle(DialogueState(), Turn(text="x", parse=parse))
    assert not result.understood and result.intent == OUT_OF_SCOPE
    assert result.trace[0] == "out of scope (best guess refund 0.30)"


def test_the_state_passed_in_is_not_mutated(engine: FlowEngine) -> None:
    state = converse(engine, say("имя")).state
    before = copy.deepcopy(state)
    result = engine.handle(state, say("Петя"))
    assert state == before and result.state is not state
    assert result.state.slots is not state.slots


def test_a_stale_state_is_read_as_nothing_waiting(engine: FlowEngine) -> None:
    for flow, step in [("order_status", 1), ("order_status", 99), ("gone", 0)]:
        result = engine.handle(DialogueState(flow=flow, step=step), say("где мой заказ"))
        assert (result.state.flow, result.state.step) == ("order_status", 0)


def test_state_round_trips_through_a_json_safe_dict(engine: FlowEngine) -> None:
    state = converse(engine, say("где мой заказ"), say("12"), state=DialogueState(slots={"a": "b"}))
    data = state.state.to_dict()
    assert data == {
        "version": 1,
        "flow": "order_status",
        "step": 0,
        "slots": {"a": "b"},
        "retries": 1,
        "misses": 0,
        "given": {},
    }
    assert DialogueState.from_dict(data) == state.state
    del data["given"]  # a state saved before `given` existed still loads
    assert DialogueState.from_dict(data) == state.state


@pytest.mark.parametrize(
    "data",
    [
        {"version": 2},
        {},
        {"version": 1, "flow": "x", "step": None},
        {"version": 1, "slots": {"a": 1}},
        {"version": 1, "misses": True},
        {"version": 1, "retries": -1},
        {"version": 1, "given": {"phone": 7}},
        {"version": 1, "given": ["phone"]},
    ],
)
def test_damaged_state_dicts_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DialogueState.from_dict(data)


def test_valid_payloads_are_the_ones_buttons_can_produce(engine: FlowEngine) -> None:
    for payload in ("flow:start", "intent:order_status", "flow:human", "value:skip"):
        assert engine.is_valid_payload(payload)
    for payload in ("intent:refund", "flow:refund", "value:Хорошо", "https://example.com", ""):
        assert not engine.is_valid_payload(payload)


def test_engine_refuses_flows_with_broken_references(flows: FlowSet) -> None:
    partial = FlowSet({k: v for k, v in flows.flows.items() if k != "human"}, flows.files)
    with pytest.raises(FlowError) as caught:
        FlowEngine(partial)
    messages = [problem.message for problem in caught.value.problems]
    assert "no flow 'human'" in messages and "button: no flow 'human'" in messages
    with pytest.raises(ValueError):
        FlowEngine(flows, misses_before_handoff=0)


def test_an_entity_named_like_the_slot_fills_the_ask_and_the_flow_goes_on(
    engine: FlowEngine,
) -> None:
    result = engine.handle(
        DialogueState(), said("где заказ 1234567", "order_status", ("order_number", "1234567"))
    )
    assert texts(result) == ["Заказ №1234567 в пути, {скоро}."]
    assert result.state.slots["order_number"] == "1234567"
    assert (result.state.flow, result.state.step) == (None, None)
    assert result.understood and result.handoff is None
    assert result.trace[1] == (
        "flow order_status · step 1 ask order_number = '1234567' (entity, not asked)"
    )


def test_an_entity_is_stored_as_the_ask_would_store_the_answer(engine: FlowEngine) -> None:
    refund = engine.handle(
        DialogueState(), said("верните 1 500,50", "refund", ("amount", "1 500,50"))
    )
    assert texts(refund) == ["Вернём 1500.50 ₽.", "Готово."]
    rating = engine.handle(DialogueState(), said("оценка: хорошо", "rate", ("mark", "ХОРОШО")))
    assert rating.state.slots["mark"] == "Хорошо" and texts(rating) == ["Спасибо!"]


def test_an_entity_that_does_not_validate_gets_the_error_and_the_question(
    engine: FlowEngine,
) -> None:
    result = engine.handle(
        DialogueState(), said("где заказ 12345", "order_status", ("order_number", "12345"))
    )
    assert texts(result) == ["Номер заказа — это 6–10 цифр.", "Назовите номер заказа"]
    assert (result.state.flow, result.state.step) == ("order_status", 0)
    assert "order_number" not in result.state.slots
    assert result.trace[1] == "flow order_status · step 1 ask order_number: entity '12345' rejected"
    # The customer has not been asked yet, so no retry is spent: 2 wrong answers still get asked.
    assert result.state.retries == 0
    again = converse(engine, say("12"), say("34"), state=result.state)
    assert again.handoff is None and again.state.retries == 2
    done = engine.handle(result.state, say("1234567"))
    assert texts(done) == ["Заказ №1234567 в пути, {скоро}."]


def test_a_rejected_entity_of_an_ask_without_error_or_retries_is_just_asked(
    engine: FlowEngine,
) -> None:
    result = engine.handle(DialogueState(), said("верните 200000", "refund", ("amount", "200000")))
    assert texts(result) == ["Какая сумма?"]  # above max; retries: 0 would hand off an answer
    assert result.handoff is None and result.state.flow == "refund"


def test_an_entity_of_another_name_or_two_different_values_fill_nothing(
    engine: FlowEngine,
) -> None:
    for turn in [
        said("где заказ 1234567", "order_status", ("order_id", "1234567")),
        said("где заказ в Казани", "order_status", ("city", "Казань")),
        said(
            "заказ 1234567 или 7654321",
            "order_status",
            ("order_number", "1234567"),
            ("order_number", "7654321"),
        ),
        said("где заказ", "order_status", ("order_number", "  ")),
    ]:
        result = engine.handle(DialogueState(), turn)
        assert texts(result) == ["Назовите номер заказа"], turn
        assert result.state.flow == "order_status"
    twice = said(
        "заказ 1234567, да, 1234567",
        "order_status",
        ("order_number", "1234567"),
        ("order_number", "1234567"),
    )
    assert texts(engine.handle(DialogueState(), twice)) == ["Заказ №1234567 в пути, {скоро}."]


def test_entity_values_by_name() -> None:
    parse = said(
        "x",
        "delivery",
        ("city", "Казань"),
        ("city", "казань"),
        ("order_number", "1"),
        ("order_number", "2"),
        ("phone", " "),
    ).parse
    assert entity_values(parse) == {"city": "Казань"}
    assert entity_values(None) == {}


def test_a_filled_slot_without_an_entity_is_still_asked(engine: FlowEngine) -> None:
    # Slots outlive flows, but only the message's own entities skip a question.
    state = DialogueState(slots={"order_number": "7654321"})
    result = engine.handle(state, say("где мой заказ"))
    assert texts(result) == ["Назовите номер заказа"]


def test_entities_of_the_answer_fill_the_asks_after_it(engine: FlowEngine) -> None:
    asked = engine.handle(DialogueState(), say("доставка"))
    assert texts(asked) == ["Номер заказа?"]
    result = engine.handle(asked.state, said("1234567, в Казань", "delivery", ("city", "Казань")))
    assert texts(result) == ["Номер заказа — это 6–10 цифр.", "Номер заказа?"]  # text is no number
    result = engine.handle(
        asked.state,
        said("1234567 в Казань", "delivery", ("order_number", "1234567"), ("city", "Казань")),
    )
    assert texts(result) == ["Заказ №1234567 едет: Казань."]
    assert result.trace[:2] == (
        "flow delivery · step 1 ask order_number = '1234567' (entity)",
        "flow delivery · step 2 (city) ask city = 'Казань' (entity, not asked)",
    )


def test_the_entity_answers_a_waiting_ask_before_the_whole_text(engine: FlowEngine) -> None:
    asked = converse(engine, say("где мой заказ"))
    number = engine.handle(
        asked.state, said("мой номер 7654321", "order_status", ("order_number", "7654321"))
    )
    assert texts(number) == ["Заказ №7654321 в пути, {скоро}."]
    named = converse(engine, say("имя"), said("меня зовут Петя", OUT_OF_SCOPE, ("nick", "Петя")))
    assert texts(named) == ["Привет, Петя!"]
    # An entity that does not validate leaves the text to be judged as before.
    wrong = engine.handle(asked.state, said("1234567", OUT_OF_SCOPE, ("order_number", "12")))
    assert wrong.state.slots["order_number"] == "1234567"


def test_an_entity_is_used_once_a_turn(engine: FlowEngine) -> None:
    # Тверь fails the flow's `if`, which goes back to the city question: asked, not looped.
    result = engine.handle(
        DialogueState(),
        said(
            "доставка 1234567 в Тверь", "delivery", ("order_number", "1234567"), ("city", "Тверь")
        ),
    )
    assert texts(result) == ["В Тверь не возим.", "Куда доставить?"]
    assert (result.state.flow, result.state.step, result.handoff) == ("delivery", 1, None)


def test_entities_of_a_message_that_leaves_a_question_fill_the_new_flow(
    engine: FlowEngine,
) -> None:
    asked = converse(engine, say("где мой заказ"))
    result = engine.handle(asked.state, said("оценка: плохо", "rate", ("mark", "плохо")))
    assert texts(result) == ["Жаль."]
    assert result.handoff == HandoffRequest("customer_request", "normal", ())
    assert "order_number" not in result.state.slots


def test_a_button_press_carries_no_entities(engine: FlowEngine) -> None:
    result = engine.handle(DialogueState(), Turn(payload="intent:order_status"))
    assert texts(result) == ["Назовите номер заказа"]
