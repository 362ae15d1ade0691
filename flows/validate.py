"""Checks of loaded flows against each other and the NLU's intents (`supportbot validate`).

The loader already rejected what cannot be parsed; what is left here are references, intents,
slots, dead steps and loops. Errors break a conversation; warnings are legal but probably not
what the author meant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet

from flows import graph
from flows.model import (
    FALLBACK_HANDOFF_FLOW,
    RESERVED_FLOWS,
    Ask,
    Flow,
    FlowSet,
    Handoff,
    If,
    Pos,
    SetSlots,
    step_buttons,
    step_texts,
)
from flows.runner import MAX_STEPS_PER_TURN
from flows.texts import Template
from nlu.types import OUT_OF_SCOPE, Problem

MAX_TITLE_LENGTH = 64
#: Filled by the runtime before every turn.
RUNTIME_SLOTS = frozenset({"first_name"})


def validate_flows(
    flows: FlowSet,
    known_intents: AbstractSet[str] | None = None,
    intent_sources: Mapping[str, tuple[str, int]] | None = None,
) -> list[Problem]:
    """Every problem, sorted by file and line.

    `known_intents` are the intents with training data (None skips the checks that need them);
    `intent_sources` optionally locates each intent's data (file, line) for the problems that
    point there.
    """
    problems = graph.reference_problems(flows)
    if known_intents is not None:
        problems += _intent_data_problems(flows, known_intents, intent_sources or {})
    for check in (_claims, _unreachable, _loops, _slots, _buttons, _unstartable, _fallback):
        problems += check(flows)
    return sorted(problems, key=lambda p: (p.file, p.line, p.message))


def _error(pos: Pos, message: str) -> Problem:
    return Problem(pos.file, pos.line, message, "error")


def _warning(pos: Pos, message: str) -> Problem:
    return Problem(pos.file, pos.line, message, "warning")


def _intent_data_problems(
    flows: FlowSet, known: AbstractSet[str], sources: Mapping[str, tuple[str, int]]
) -> list[Problem]:
    problems = []
    for flow in flows:
        for ref in flow.intents:
            if ref.name == OUT_OF_SCOPE:
                problems.append(
                    _error(
                        ref.pos, f"{OUT_OF_SCOPE} always goes to fallback; it cannot start a flow"
                    )
                )
            elif ref.name not in known:
                problems.append(_error(ref.pos, f"intent '{ref.name}' has no training data"))
        for step in flow.steps:
            for button in step_buttons(step):
                if button.kind == "intent" and button.target not in known:
                    message = f"button: intent '{button.target}' has no training data"
                    problems.append(_error(button.pos, message))
    handled = {ref.name for flow in flows for ref in flow.intents}
    anchor = Pos(flows.files[0], 0) if flows.files else Pos("<flows>", 0)
    for name in sorted(known - handled - {OUT_OF_SCOPE}):
        pos = Pos(*sources[name]) if name in sources else anchor
        message = f"intent '{name}' has training data but no flow handles it (it goes to fallback)"
        problems.append(_warning(pos, message))
    return problems


def _claims(flows: FlowSet) -> list[Problem]:
    """An intent starts one flow; a button to an intent no flow handles is a dead button."""
    problems = []
    owner: dict[str, Flow] = {}
    for flow in flows:
        for ref in flow.intents:
            first = owner.setdefault(ref.name, flow)
            if first is not flow:
                problems.append(
                    _error(
                        ref.pos,
                        f"intent '{ref.name}' is already handled by "
                        f"flow '{first.id}' ({first.pos})",
                    )
                )
        for name, count in Counter(ref.name for ref in flow.intents).items():
            if count > 1:
                problems.append(_warning(flow.pos, f"intent '{name}' is listed {count} times"))
    for flow in flows:
        for step in flow.steps:
            for button in step_buttons(step):
                if button.kind == "intent" and button.target not in owner:
                    message = f"button: no flow handles intent '{button.target}'"
                    problems.append(_error(button.pos, message))
    return problems


def _unreachable(flows: FlowSet) -> list[Problem]:
    problems = []
    for flow in flows:
        seen = graph.reachable(flows, (flow.id, 0))
        for index, step in enumerate(flow.steps):
            # One warning per dead stretch: the steps after its first one are dead for the
            # same reason.
            if (flow.id, index) not in seen and (index == 0 or (flow.id, index - 1) in seen):
                message = f"step {index + 1} of flow '{flow.id}' can never run: nothing leads to it"
                problems.append(_warning(step.pos, message))
    return problems


def _loops(flows: FlowSet) -> list[Problem]:
    problems = []
    for cycle in graph.loops(flows):
        steps = [flows[flow_id].steps[index] for flow_id, index in cycle]
        route = " → ".join(f"{flow_id} step {index + 1}" for flow_id, index in cycle)
        message = (
            f"these steps loop without an ask ({route}); the engine stops a turn after "
            f"{MAX_STEPS_PER_TURN} steps and hands off"
        )
        # With an `if` on the loop a slot might end it; without one it certainly never ends.
        branch = any(isinstance(step, If) for step in steps)
        problems.append((_warning if branch else _error)(steps[0].pos, message))
    return problems


def _slots(flows: FlowSet) -> list[Problem]:
    filled = set(RUNTIME_SLOTS)
    for flow in flows:
        for step in flow.steps:
            if isinstance(step, Ask):
                filled.add(step.slot)
            elif isinstance(step, SetSlots):
                filled.update(name for name, value in step.values if value is not None)
    problems = []
    for template, file in _templates(flows):
        for name in template.slots:
            if name not in filled:
                message = f"{{{name}}} is never filled: no ask or set stores slot '{name}'"
                problems.append(Problem(file, template.line, message))
    for flow in flows:
        for step in flow.steps:
            if isinstance(step, If) and step.condition.slot not in filled:
                message = f"if: slot '{step.condition.slot}' is never filled by an ask or set"
                problems.append(_warning(step.condition.pos, message))
    return problems


def _templates(flows: FlowSet) -> Iterator[tuple[Template, str]]:
    for flow in flows:
        for step in flow.steps:
            for text in step_texts(step):
                for template in text.templates():
                    yield template, flow.pos.file
            if isinstance(step, SetSlots):
                for _, value in step.values:
                    if value is not None:
                        yield value, flow.pos.file


def _buttons(flows: FlowSet) -> list[Problem]:
    problems = []
    for flow in flows:
        for step in flow.steps:
            titles: Counter[str] = Counter()
            for button in step_buttons(step):
                for template in button.title.templates():
                    titles[template.source] += 1
                    if len(template.source) > MAX_TITLE_LENGTH:
                        message = f"button title longer than {MAX_TITLE_LENGTH} characters"
                        problems.append(_error(button.pos, message))
                if button.kind == "value" and not isinstance(step, Ask):
                    message = "a value button only answers an ask: put it on the ask step"
                    problems.append(_warning(button.pos, message))
            for title in (title for title, count in titles.items() if count > 1):
                problems.append(_warning(step.pos, f"two buttons are titled '{title}'"))
    return problems


def _unstartable(flows: FlowSet) -> list[Problem]:
    started = set(RESERVED_FLOWS)
    for flow in flows:
        if flow.intents:
            started.add(flow.id)
        started.update(target.name for target in flow.targets() if target.is_flow)
        for step in flow.steps:
            started.update(b.target for b in step_buttons(step) if b.kind == "flow")
    return [
        _warning(
            flow.pos, f"flow '{flow.id}' can never start: no intents, buttons or goto lead to it"
        )
        for flow in flows
        if flow.id not in started
    ]


def _fallback(flows: FlowSet) -> list[Problem]:
    if FALLBACK_HANDOFF_FLOW not in flows:
        return []
    flow = flows[FALLBACK_HANDOFF_FLOW]
    for flow_id, index in graph.reachable(flows, (flow.id, 0), cross_flows=True):
        steps = flows[flow_id].steps
        if index < len(steps) and isinstance(steps[index], Handoff):
            return []
    return [_warning(flow.pos, f"flow '{flow.id}' never reaches a handoff step")]
