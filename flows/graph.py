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
                missing = f"flow '{target.name}'"
                if not target.is_flow:
                    missing = f"step '{target.name}' in flow '{flow.id}'"
                problems.append(_error(target.pos, f"no {missing}"))
        for step in flow.steps:
            for button in step_buttons(step):
                if button.kind == "flow" and button.target not in flows:
                    problems.append(_error(button.pos, f"button: no flow '{button.target}'"))
    return problems


def _error(pos: Pos, message: str) -> Problem:
    return Problem(pos.file, pos.line, message)


def reachable(flows: FlowSet, start: Node, cross_flows: bool = False) -> set[Node]:
    """The steps that can run from `start` in any number of turns (ends of flows included)."""
    seen = {start}
    pending = [start]
    while pending:
        flow_id, index = pending.pop()
        flow = flows[flow_id]
        if index >= len(flow.steps):
            continue
        for node in successors(flows, flow, index):
            if (cross_flows or node[0] == flow_id) and node not in seen:
                seen.add(node)
                pending.append(node)
    return seen


def loops(flows: FlowSet) -> list[list[Node]]:
    """Cycles of steps that run within one turn: no `ask` on them to wait for the customer."""
    found: list[list[Node]] = []
    done: set[Node] = set()
    for flow in flows:
        for index in range(len(flow.steps)):
            if (flow.id, index) not in done:
                found.extend(_loops_from(flows, (flow.id, index), done))
    return found


def _loops_from(flows: FlowSet, root: Node, done: set[Node]) -> list[list[Node]]:
    # Iterative depth-first search; a successor still on the path closes a cycle.
    found: list[list[Node]] = []
    path: list[Node] = [root]
    on_path = {root}
    stack = [iter(_turn_successors(flows, root))]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            done.add(path[-1])
            on_path.discard(path.pop())
        elif node in on_path:
            found.append(path[path.index(node) :])
        elif node not in done:
            path.append(node)
            on_path.add(node)
            stack.append(iter(_turn_successors(flows, node)))
    return found


def _turn_successors(flows: FlowSet, node: Node) -> list[Node]:
    flow = flows[node[0]]
    if node[1] >= len(flow.steps) or isinstance(flow.steps[node[1]], Ask):
        return []  # a flow's end and a question both end the turn
    return list(successors(flows, flow, node[1]))
