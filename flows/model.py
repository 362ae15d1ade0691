"""The parsed form of flow files: flows, steps and their parts, each with its source position.

Everything here is immutable and already checked for shape by the loader, so the engine never
re-validates a step at turn time; cross-references (targets, intents) are checked by
`flows.validate` and by `FlowEngine` when it is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from flows.texts import Template, Text

FLOW_ID = re.compile(r"[a-z0-9_]+")
STEP_ID = re.compile(r"[A-Za-z0-9_-]+")
FLOW_PREFIX = "flow:"

START_FLOW = "start"
FALLBACK_FLOW = "fallback"
FALLBACK_HANDOFF_FLOW = "fallback_handoff"
RESERVED_FLOWS = (START_FLOW, FALLBACK_FLOW, FALLBACK_HANDOFF_FLOW)

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")
ButtonKind = Literal["intent", "flow", "value", "url"]
ConditionOp = Literal["equals", "not_equals", "in", "matches", "exists", "gt", "lt"]
CONDITION_OPS: tuple[ConditionOp, ...] = (
    "equals",
    "not_equals",
    "in",
    "matches",
    "exists",
    "gt",
    "lt",
)


@dataclass(frozen=True, slots=True)
class Pos:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Target:
    """Where `goto`, `then`, `else` and `on_fail` lead: a step id, or `flow:<id>`."""

    name: str
    is_flow: bool
    pos: Pos

    def __str__(self) -> str:
        return f"{FLOW_PREFIX}{self.name}" if self.is_flow else self.name


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    title: Text
    kind: ButtonKind
    target: str  # intent name, flow id, value text or URL
    pos: Pos

    @property
    def payload(self) -> str | None:
        return None if self.kind == "url" else f"{self.kind}:{self.target}"


@dataclass(frozen=True, slots=True)
class RegexRule:
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class NumberRule:
    minimum: Decimal | None
    maximum: Decimal | None


@dataclass(frozen=True, slots=True)
class ChoiceRule:
    choices: tuple[str, ...]


Rule = RegexRule | NumberRule | ChoiceRule
Operand = str | tuple[str, ...] | re.Pattern[str] | bool | Decimal


@dataclass(frozen=True, slots=True)
class Condition:
    slot: str
    op: ConditionOp
    operand: Operand
    pos: Pos


@dataclass(frozen=True, slots=True, kw_only=True)
class StepBase:
    pos: Pos
    id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Say(StepBase):
    text: Text
    buttons: tuple[ButtonSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask(StepBase):
    slot: str
    text: Text
    rule: Rule | None = None
    error: Text | None = None
    retries: int = 2
    on_fail: Target | None = None
    buttons: tuple[ButtonSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class If(StepBase):
    condition: Condition
    then: Target | None = None
    otherwise: Target | None = None  # `else:` in YAML


@dataclass(frozen=True, slots=True, kw_only=True)
class Goto(StepBase):
    target: Target


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSlots(StepBase):
    values: tuple[tuple[str, Template | None], ...]  # None clears the slot


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff(StepBase):
    reason: str
    priority: Priority = "normal"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class End(StepBase):
    text: Text | None = None


Step = Say | Ask | If | Goto | SetSlots | Handoff | End


@dataclass(frozen=True, slots=True)
class IntentRef:
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    steps: tuple[Step, ...]
    pos: Pos
    intents: tuple[IntentRef, ...] = ()
    description: str = ""

    def step_index(self, step_id: str) -> int | None:
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        return None

    def targets(self) -> Iterator[Target]:
        """Every jump a step of this flow can make."""
        for step in self.steps:
            if isinstance(step, Goto):
                yield step.target
            elif isinstance(step, If):
                yield from (t for t in (step.then, step.otherwise) if t is not None)
            elif isinstance(step, Ask) and step.on_fail is not None:
                yield step.on_fail


@dataclass(frozen=True, slots=True)
class FlowSet:
    """All flows of one load, by id in file order, and the files they came from."""

    flows: Mapping[str, Flow]
    files: tuple[str, ...]

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self.flows

    def __getitem__(self, flow_id: str) -> Flow:
        return self.flows[flow_id]

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def __len__(self) -> int:
        return len(self.flows)


def step_buttons(step: Step) -> tuple[ButtonSpec, ...]:
    return step.buttons if isinstance(step, Say | Ask) else ()


def step_texts(step: Step) -> Iterator[Text]:
    """Every text a step can send, buttons' titles included."""
    if isinstance(step, Say | Ask | End) and step.text is not None:
        yield step.text
    if isinstance(step, Ask) and step.error is not None:
        yield step.error
    for button in step_buttons(step):
        yield button.title
