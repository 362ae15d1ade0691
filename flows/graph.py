"""How steps connect: jump targets, the steps each step can lead to, and broken references.

Shared by `flows.validate` (reachability, loops) and `FlowEngine` (which refuses flows whose
references are broken, so a turn never meets a dangling jump).
"""

from __future__ import annotations

from collections.abc import Iterator

from flows.model import (
    RESERVED_FLOWS,
    Ask,
    End,
    Flow,
    FlowSet,
    Goto,
    Handoff,
    If,
    Pos,
    Target,
    step_buttons,
)
from nlu.types import Problem

#: A step as a graph node: (flow id, step index); index == len(steps) is the flow's end.
Node = tuple[str, int]


def resolve(flows: FlowSet, flow: Flow, target: Target) -> Node | None:
    if target.is_flow:
        return (target.name, 0) if target.name in flows else None
    index = flow.step_index(target.name)
    return None if index is None else (flow.id, index)


def successors(flows: FlowSet, flow: Flow, index: int) -> Iterator[Node]:
    """The steps that can run right after step `index` (unresolvable targets left out)."""
    step = flow.steps[index]
    following: Node = (flow.id, index + 1)
    if isinstance(step, Goto):
        targets: tuple[Target | None, ...] = (step.target,)
    elif isinstance(step, If):
        targets = (step.then, step.otherwise)
        if step.then is None or step.otherwise is None:
            yield following
    elif isinstance(step, Ask):
        targets = (step.on_fail,)
        yield following
    elif isinstance(step, Handoff | End):
        targets = ()
    else:
        targets = ()
        yield following
    for target in targets:
        node = resolve(flows, flow, target) if target is not None else None
        if node is not None:
            yield node


def reference_problems(flows: FlowSet) -> list[Problem]:
    """Missing reserved flows and jumps or buttons that lead nowhere: errors the engine refuses."""
    problems: list[Problem] = []
    anchor = Pos(flows.files[0], 0) if flows.files else Pos("<flows>", 0)
    for name in RESERVED_FLOWS:
        if name not in flows:
            problems.append(_error(anchor, f"the reserved flow '{name}' is missing"))
    for flow in flows:
        for target in flow.targets():
            if resolve(flows, flow, target) is None:
                what = "flow" if target.is_flow else f"step in flow '{flow.id}'"
                problems.append(_error(target.pos, f"no {what} '{target.name}'"))
        for step in flow.steps:
            for button in step_buttons(step):
                if button.kind == "flow" and button.target not in flows:
                    problems.append(_error(button.pos, f"button: no flow '{button.target}'"))
    return problems


def _error(pos: Pos, message: str) -> Problem:
    return Problem(pos.file, pos.line, message)
