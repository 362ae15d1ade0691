"""Running steps within one turn: collecting replies, slots, a handoff and the waiting ask."""

from __future__ import annotations

import random
from collections.abc import Mapping

from flows.answers import accept_answer, holds
from flows.model import (
    Ask,
    ButtonSpec,
    End,
    Flow,
    Goto,
    Handoff,
    If,
    Say,
    SetSlots,
    Step,
    Target,
)
from flows.texts import Text
from flows.turns import Button, HandoffRequest, Reply

#: Steps one turn may run. Only a loop of steps without an `ask` gets there (validate warns
#: about those); stopping it with a handoff beats hanging the worker.
MAX_STEPS_PER_TURN = 100
LOOP_REASON = "flow_loop"

Position = tuple[Flow, int]


class Program:
    """The flows with their step ids resolved to indices, shared by every turn."""

    def __init__(self, flows: Mapping[str, Flow]) -> None:
        self.flows = dict(flows)
        self._indices = {
            flow.id: {step.id: i for i, step in enumerate(flow.steps) if step.id is not None}
            for flow in flows.values()
        }

    def jump(self, flow: Flow, target: Target) -> Position:
        # FlowEngine checks every target when it is built, so these lookups cannot fail.
        if target.is_flow:
            return self.flows[target.name], 0
        return flow, self._indices[flow.id][target.name]


def where(flow: Flow, index: int) -> str:
    step = flow.steps[index]
    label = f" ({step.id})" if step.id else ""
    return f"flow {flow.id} · step {index + 1}{label}"


class Run:
    """The effects of one turn, built up step by step.

    `entities` are the values the turn's message gave, by entity name: an `ask` of a slot with
    that name takes its value from there instead of asking (once per turn and slot).
    """

    def __init__(
        self,
        program: Program,
        language: str,
        rng: random.Random,
        slots: dict[str, str],
        entities: Mapping[str, str] | None = None,
    ) -> None:
        self.program = program
        self.language = language
        self.rng = rng
        self.slots = slots
        self.entities = dict(entities or {})
        self.replies: list[Reply] = []
        self.trace: list[str] = []
        self.handoff: HandoffRequest | None = None
        self.waiting: Position | None = None
        self.retries = 0
        self._budget = MAX_STEPS_PER_TURN

    def run(self, flow: Flow, index: int = 0) -> None:
        """Run steps from `index` until an ask waits, the flow hands off or ends."""
        position: Position | None = (flow, index)
        while position is not None:
            flow, index = position
            if index >= len(flow.steps):
                self.trace.append(f"flow {flow.id} · ends")
                return
            if self._budget == 0:
                self.trace.append(f"{where(flow, index)}: {MAX_STEPS_PER_TURN} steps in one turn")
                self.hand_off(HandoffRequest(LOOP_REASON, "normal", (flow.id,)), flow, index)
                return
            self._budget -= 1
            position = self._step(flow, index, flow.steps[index])

    def _step(self, flow: Flow, index: int, step: Step) -> Position | None:
        here = where(flow, index)
        if isinstance(step, Say):
            self.trace.append(f"{here} say")
            self.say(step.text, step.buttons)
        elif isinstance(step, Ask):
            return self._ask_unless_given(flow, index, step)
        elif isinstance(step, If):
            return self._branch(flow, index, step)
        elif isinstance(step, Goto):
            self.trace.append(f"{here} goto {step.target}")
            return self.program.jump(flow, step.target)
        elif isinstance(step, SetSlots):
            self._set(step)
            self.trace.append(f"{here} set {', '.join(name for name, _ in step.values)}")
        elif isinstance(step, Handoff):
            self.hand_off(HandoffRequest(step.reason, step.priority, step.tags), flow, index)
        elif isinstance(step, End):
            self.trace.append(f"{here} end")
            if step.text is not None:
                self.say(step.text)
        return None if isinstance(step, Handoff | End) else (flow, index + 1)

    def _ask_unless_given(self, flow: Flow, index: int, step: Ask) -> Position | None:
        """Fill the slot from the message's entity of the same name when it validates (the
        flow goes on without asking); else ask, after the `error` text if the entity failed."""
        offered = self.entities.pop(step.slot, None)
        if offered is None:
            self.ask(flow, index, step)
            return None
        value = accept_answer(step, offered)
        if value is None:
            self.trace.append(f"{where(flow, index)} ask {step.slot}: entity {offered!r} rejected")
            if step.error is not None:
                self.say(step.error)
            self.ask(flow, index, step)  # not a retry: the customer was not asked yet
            return None
        self.trace.append(f"{where(flow, index)} ask {step.slot} = {value!r} (entity, not asked)")
        self.slots[step.slot] = value
        return flow, index + 1

    def _branch(self, flow: Flow, index: int, step: If) -> Position:
        result = holds(step.condition, self.slots)
        target = step.then if result else step.otherwise
        cond = step.condition
        outcome = f"then {target}" if result else f"else {target}"
        if target is None:
            outcome = f"{str(result).lower()}, next step"
        self.trace.append(f"{where(flow, index)} if {cond.slot} {cond.op}: {outcome}")
        return (flow, index + 1) if target is None else self.program.jump(flow, target)

    def _set(self, step: SetSlots) -> None:
        for name, value in step.values:
            if value is None:
                self.slots.pop(name, None)
            else:
                self.slots[name] = value.render(self.slots)

    def say(self, text: Text, buttons: tuple[ButtonSpec, ...] = ()) -> None:
        rendered = tuple(self._button(spec) for spec in buttons)
        self.replies.append(Reply(text.render(self.language, self.rng, self.slots), rendered))

    def _button(self, spec: ButtonSpec) -> Button:
        title = spec.title.render(self.language, self.rng, self.slots)
        if spec.kind == "url":
            return Button(title, None, spec.target)
        return Button(title, spec.payload, None)

    def ask(self, flow: Flow, index: int, step: Ask, retries: int = 0) -> None:
        """Send the question and wait for the answer."""
        note = f" (retry {retries}/{step.retries})" if retries else ""
        self.trace.append(f"{where(flow, index)} ask {step.slot}{note}")
        self.say(step.text, step.buttons)
        self.waiting = (flow, index)
        self.retries = retries

    def hand_off(self, request: HandoffRequest, flow: Flow, index: int) -> None:
        tags = f" [{', '.join(request.tags)}]" if request.tags else ""
        self.trace.append(
            f"{where(flow, index)} handoff {request.reason} ({request.priority}){tags}"
        )
        self.handoff = request
