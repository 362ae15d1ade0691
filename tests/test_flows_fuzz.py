"""No customer input makes the engine raise, and every state it returns is sound."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from flows.engine import DialogueState, FlowEngine, Turn, TurnResult
from flows.loader import load_flows
from flows.model import Ask, FlowSet, step_buttons
from nlu.types import OUT_OF_SCOPE, Entity, IntentScore, ParseResult

ROOT = Path(__file__).parent.parent
FLOW_DIRS = [ROOT / "tests" / "data" / "flows_small", ROOT / "flows" / "data"]
TEXTS = [
    "",
    " ",
    "1234567",
    "12",
    "1 500,5",
    "-3",
    "да",
    "ХОРОШО",
    "skip",
    "{x}",
    "\x00",
    "ё" * 500,
]
JUNK_PAYLOADS = ["", ":", "value:", "intent:", "flow:", "flow:start:", "intent:out_of_scope", "x"]


def random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(TEXTS)
    alphabet = string.printable + "абвгдеёжзийклмнопрстуфхцчшщъыьэюя€🙂"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))


def random_turn(
    rng: random.Random, intents: list[str], payloads: list[str], slots: list[str]
) -> Turn:
    kind = rng.randrange(5)
    if kind == 0:
        return Turn(payload=rng.choice(payloads + JUNK_PAYLOADS))
    if kind == 1:
        return Turn(payload=rng.choice(["value:", "intent:", "flow:"]) + random_text(rng))
    text = random_text(rng)
    if kind == 2:
        return Turn(text=text if rng.random() < 0.8 else None)
    intent = rng.choice(intents)
    ranking = (IntentScore(rng.choice(intents), rng.random()),) if rng.random() < 0.5 else ()
    # Entities named like the slots of asks (or not), with any value: they may fill questions.
    entities = tuple(
        Entity(rng.choice([*slots, "unknown"]), random_text(rng), 0, 0)
        for _ in range(rng.choice([0, 0, 1, 2]))
    )
    return Turn(text=text, parse=ParseResult(text, intent, rng.random(), ranking, entities))


def random_state(rng: random.Random, state: DialogueState, flows: FlowSet) -> DialogueState:
    """Mostly the engine's own state; sometimes a stale or odd one, as after a reload."""
    if rng.random() < 0.9:
        return state
    flow = rng.choice([*flows.flows, "gone", None])
    step = rng.randrange(-2, 40) if flow is not None else None
    return DialogueState(flow, step, {"first_name": "Аня", "amount": random_text(rng)})


def check_result(result: TurnResult, flows: FlowSet, misses_before_handoff: int) -> None:
    state = result.state
    assert DialogueState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    if state.flow is not None:
        assert state.step is not None and isinstance(flows[state.flow].steps[state.step], Ask)
    else:
        assert state.step is None and state.retries == 0
    assert 0 <= state.misses < misses_before_handoff
    assert all(isinstance(reply.text, str) for reply in result.replies)
    assert isinstance(result.understood, bool) and result.trace


@pytest.mark.parametrize("flow_dir", FLOW_DIRS, ids=lambda path: path.name)
@pytest.mark.parametrize("seed", range(3))
def test_random_turns_never_raise(flow_dir: Path, seed: int) -> None:
    flows = load_flows(flow_dir)
    rng = random.Random(seed)
    misses = rng.choice([1, 2, 3])
    engine = FlowEngine(flows, language=rng.choice(["ru", "en"]), misses_before_handoff=misses)
    intents = [OUT_OF_SCOPE, "never_heard_of", *(r.name for f in flows for r in f.intents)]
    payloads = ["flow:start"] + [
        button.payload
        for flow in flows
        for step in flow.steps
        for button in step_buttons(step)
        if button.payload is not None
    ]
    slots = sorted({step.slot for flow in flows for step in flow.steps if isinstance(step, Ask)})
    state = DialogueState().with_slot("first_name", "Аня")
    for _ in range(400):
        state = random_state(rng, state, flows)
        result = engine.handle(state, random_turn(rng, intents, payloads, slots))
        check_result(result, flows, misses)
        state = result.state
