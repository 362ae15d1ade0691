"""The flow engine: one customer turn in, replies and the next dialogue state out.

Pure and synchronous: no I/O, deterministic given its `rng`, and total — any text, parse or
payload yields a `TurnResult` (what cannot be understood goes to the `fallback` flows).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from flows.answers import accept_answer
from flows.graph import reference_problems
from flows.loader import FlowError
from flows.model import (
    FALLBACK_FLOW,
    FALLBACK_HANDOFF_FLOW,
    FLOW_PREFIX,
    START_FLOW,
    Ask,
    Flow,
    FlowSet,
    step_buttons,
)
from flows.runner import Program, Run, where
from flows.state import DialogueState
from flows.texts import fold
from flows.turns import Button, HandoffRequest, Reply, Turn, TurnResult
from nlu.types import OUT_OF_SCOPE, ParseResult

__all__ = [
    "Button",
    "DialogueState",
    "FlowEngine",
    "HandoffRequest",
    "Reply",
    "Turn",
    "TurnResult",
]

ASK_FAILED_REASON = "ask_failed"


@dataclass(frozen=True, slots=True)
class _Route:
    """How a turn was read: whether it was understood, and the intent behind it."""

    understood: bool
    intent: str | None = None
    confidence: float = 0.0


class FlowEngine:
    def __init__(
        self,
        flows: FlowSet,
        language: str = "ru",
        misses_before_handoff: int = 2,
        rng: random.Random | None = None,
    ) -> None:
        """Raises `FlowError` when a reserved flow is missing or a jump or button leads nowhere."""
        problems = reference_problems(flows)
        if problems:
            raise FlowError(problems)
        if misses_before_handoff < 1:
            raise ValueError("misses_before_handoff must be at least 1")
        self.language = language
        self.misses_before_handoff = misses_before_handoff
        self._rng = rng if rng is not None else random.Random()
        self._program = Program(flows.flows)
        self._flows = self._program.flows
        self._by_intent: dict[str, Flow] = {}
        for flow in flows:
            for intent in flow.intents:
                # Two flows claiming one intent is a validate error; the first one wins here.
                self._by_intent.setdefault(intent.name, flow)
        self._payloads = frozenset(
            {FLOW_PREFIX + START_FLOW}
            | {
                button.payload
                for flow in flows
                for step in flow.steps
                for button in step_buttons(step)
                if button.payload is not None
            }
        )

    def is_valid_payload(self, payload: str) -> bool:
        """Whether some button of these flows (or `/start`) produces this payload."""
        return payload in self._payloads

    def handle(self, state: DialogueState, turn: Turn) -> TurnResult:
        entities = {**state.given, **entity_values(turn.parse)}
        run = Run(self._program, self.language, self._rng, dict(state.slots), entities)
        waiting = self._waiting_ask(state)
        if turn.payload is not None:
            route = self._payload(turn.payload, waiting, state.retries, run)
        else:
            route = self._message(turn, waiting, state.retries, run)
        misses = 0
        if not route.understood:
            misses = self._not_understood(state.misses + 1, run)
        position = run.waiting
        new_state = DialogueState(
            flow=position[0].id if position else None,
            step=position[1] if position else None,
            slots=run.slots,
            retries=run.retries if position else 0,
            misses=misses,
            given=run.entities if position else {},
        )
        return TurnResult(
            replies=tuple(run.replies),
            state=new_state,
            handoff=run.handoff,
            understood=route.understood,
            intent=route.intent,
            confidence=route.confidence,
            trace=tuple(run.trace),
        )

    def _waiting_ask(self, state: DialogueState) -> tuple[Flow, int, Ask] | None:
        # A state saved before the flows were reloaded may point at a step that is gone or no
        # longer an ask: then nothing is waiting and the turn is read afresh.
        flow = self._flows.get(state.flow) if state.flow is not None else None
        index = state.step
        if flow is None or index is None or not 0 <= index < len(flow.steps):
            return None
        step = flow.steps[index]
        return (flow, index, step) if isinstance(step, Ask) else None

    def _flow_for(self, intent: str | None) -> Flow | None:
        if intent is None or intent == OUT_OF_SCOPE:
            return None
        return self._by_intent.get(intent)

    def _message(
        self, turn: Turn, waiting: tuple[Flow, int, Ask] | None, retries: int, run: Run
    ) -> _Route:
        parse = turn.parse
        text = turn.text if turn.text is not None else (parse.text if parse else "")
        if waiting is not None:
            return self._answer(waiting, text, parse, retries, run)
        if parse is None:
            run.trace.append("a message without a parse")
            return _Route(False)
        flow = self._flow_for(parse.intent)
        label = f"intent {parse.intent} ({parse.confidence:.2f})"
        if flow is None:
            run.trace.append(_unhandled(parse))
            return _Route(False, parse.intent, parse.confidence)
        run.trace.append(f"{label} → flow {flow.id}")
        run.run(flow)
        return _Route(True, parse.intent, parse.confidence)

    def _payload(
        self, payload: str, waiting: tuple[Flow, int, Ask] | None, retries: int, run: Run
    ) -> _Route:
        kind, _, argument = payload.partition(":")
        if kind == "flow" and argument in self._flows:
            run.trace.append(f"payload {payload} → flow {argument}")
            run.run(self._flows[argument])
            return _Route(True, None, 1.0)
        if kind == "intent":
            flow = self._flow_for(argument)
            if flow is None:
                run.trace.append(f"payload {payload}: no flow")
                return _Route(False, argument, 1.0)
            run.trace.append(f"payload {payload} → flow {flow.id}")
            run.run(flow)
            return _Route(True, argument, 1.0)
        if kind == "value" and waiting is not None:
            return self._answer(waiting, argument, None, retries, run)
        run.trace.append(f"payload {payload!r} not understood")
        return _Route(False)

    def _answer(
        self,
        waiting: tuple[Flow, int, Ask],
        text: str,
        parse: ParseResult | None,
        retries: int,
        run: Run,
    ) -> _Route:
        flow, index, ask = waiting
        intent = parse.intent if parse else None
        confidence = parse.confidence if parse else 1.0
        # The message's entity for this slot comes first: "заказ 1234567" answers a question
        # for the number, and "мск" is stored as the synonym's "Москва".
        offered = run.entities.pop(ask.slot, None)
        value = accept_answer(ask, offered) if offered is not None else None
        source = " (entity)" if value is not None else ""
        if value is None:
            value = accept_answer(ask, text)
        if value is not None:
            run.trace.append(f"{where(flow, index)} ask {ask.slot} = {value!r}{source}")
            run.slots[ask.slot] = value
            run.run(flow, index + 1)
            return _Route(True, intent, confidence)
        other = self._flow_for(intent)
        if other is not None and other is not flow:
            run.trace.append(f"{where(flow, index)} ask {ask.slot} left: intent {intent}")
            run.trace.append(f"intent {intent} ({confidence:.2f}) → flow {other.id}")
            run.run(other)
            return _Route(True, intent, confidence)
        self._reject(flow, index, ask, retries + 1, run)
        return _Route(True, intent, confidence)

    def _reject(self, flow: Flow, index: int, ask: Ask, attempt: int, run: Run) -> None:
        if attempt <= ask.retries:
            if ask.error is not None:
                run.say(ask.error)
            run.ask(flow, index, ask, retries=attempt)
            return
        run.trace.append(f"{where(flow, index)} ask {ask.slot}: retries used up")
        if ask.on_fail is not None:
            run.run(*self._program.jump(flow, ask.on_fail))
        else:
            run.hand_off(HandoffRequest(ASK_FAILED_REASON, "normal", (flow.id,)), flow, index)

    def _not_understood(self, misses: int, run: Run) -> int:
        """Run the fallback for a turn that was not understood; the new count of misses."""
        run.waiting = None
        run.retries = 0
        if misses >= self.misses_before_handoff:
            run.trace.append(
                f"not understood (miss {misses}/{self.misses_before_handoff})"
                f" → flow {FALLBACK_HANDOFF_FLOW}"
            )
            run.run(self._flows[FALLBACK_HANDOFF_FLOW])
            return 0  # counting starts over once a human has been asked for
        run.trace.append(
            f"not understood (miss {misses}/{self.misses_before_handoff}) → flow {FALLBACK_FLOW}"
        )
        run.run(self._flows[FALLBACK_FLOW])
        return misses


def entity_values(parse: ParseResult | None) -> dict[str, str]:
    """The value of each entity the message holds, by entity name (that is, by slot name).

    A name found with two different values ("доставка в Казань или в Москву") gives none: the
    flow asks rather than guesses. Blank values are ignored.
    """
    found: dict[str, dict[str, str]] = {}
    for entity in parse.entities if parse is not None else ():
        value = entity.value.strip()
        if value:
            found.setdefault(entity.entity, {}).setdefault(fold(value), value)
    return {name: next(iter(values.values())) for name, values in found.items() if len(values) == 1}


def _unhandled(parse: ParseResult) -> str:
    if parse.in_scope:
        return f"intent {parse.intent} ({parse.confidence:.2f}): no flow"
    guess = parse.top_guess
    # The best guess tells a trainer which intent needs more examples.
    if guess is None:
        return "out of scope"
    return f"out of scope (best guess {guess.name} {guess.confidence:.2f})"
