"""Parsing one step of a flow: find its kind, check its keys, build the model object."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from flows import parse_parts as parts
from flows.model import (
    PRIORITIES,
    STEP_ID,
    Ask,
    End,
    Goto,
    Handoff,
    If,
    Pos,
    Priority,
    Say,
    SetSlots,
    Step,
)
from flows.texts import SLOT_NAME, Template
from flows.yamlnodes import Node, Reader, is_null

#: Each step kind with the keys it may carry besides its own key and `id`.
STEP_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("buttons",),
    "ask": ("text", "validate", "error", "retries", "on_fail", "buttons"),
    "if": ("then", "else"),
    "goto": (),
    "set": (),
    "handoff": (),
    "end": (),
}

Entries = dict[str, Node]


def parse_step(r: Reader, node: Node) -> Step | None:
    if isinstance(node, yaml.ScalarNode) and node.value == "end":
        return End(pos=r.pos(node))
    kinds = [key for key in r.keys(node) if key in STEP_KEYS]
    if len(kinds) != 1:
        found = f"found {' and '.join(kinds)}" if kinds else "found none"
        r.error(node, f"a step needs exactly one of {', '.join(STEP_KEYS)} ({found})")
        return None
    kind = kinds[0]
    entries = r.mapping(node, f"a {kind} step", (kind, "id", *STEP_KEYS[kind]))
    if entries is None:
        return None
    step_id = _step_id(r, entries)
    reported = len(r.problems)
    step = _PARSERS[kind](r, entries, r.pos(node), step_id)
    # A step with a broken part is dropped whole, so a half-built step never reaches the engine.
    return step if len(r.problems) == reported else None


def _step_id(r: Reader, entries: Entries) -> str | None:
    if "id" not in entries:
        return None
    step_id = r.string(entries["id"], "id")
    if step_id is not None and not STEP_ID.fullmatch(step_id):
        r.error(entries["id"], f"step id '{step_id}' may only use letters, digits, _ and -")
    return step_id


def _say(r: Reader, e: Entries, pos: Pos, step_id: str | None) -> Step | None:
    text = parts.text(r, e["say"], "say")
    buttons = parts.buttons(r, e["buttons"]) if "buttons" in e else ()
    return None if text is None else Say(pos=pos, id=step_id, text=text, buttons=buttons)


def _ask(r: Reader, e: Entries, pos: Pos, step_id: str | None) -> Step | None:
    slot = parts.slot_name(r, e["ask"], "ask")
    if "text" not in e:
        r.error(e["ask"], "an ask step needs text: the question to send")
        return None
    text = parts.text(r, e["text"], "text")
    if slot is None or text is None:
        return None
    retries = r.integer(e["retries"], "retries") if "retries" in e else 2
    return Ask(
        pos=pos,
        id=step_id,
        slot=slot,
        text=text,
        rule=parts.rule(r, e["validate"]) if "validate" in e else None,
        error=parts.text(r, e["error"], "error") if "error" in e else None,
        retries=retries if retries is not None else 0,
        on_fail=parts.target(r, e["on_fail"], "on_fail") if "on_fail" in e else None,
        buttons=parts.buttons(r, e["buttons"]) if "buttons" in e else (),
    )


def _if(r: Reader, e: Entries, pos: Pos, step_id: str | None) -> Step | None:
    condition = parts.condition(r, e["if"])
    if "then" not in e and "else" not in e:
        r.error(e["if"], "an if step needs then, else or both")
        return None
    then = parts.target(r, e["then"], "then") if "then" in e else None
    otherwise = parts.target(r, e["else"], "else") if "else" in e else None
    if condition is None:
        return None
    return If(pos=pos, id=step_id, condition=condition, then=then, otherwise=otherwise)


def _goto(r: Reader, e: Entries, pos: Pos, step_id: str | None) -> Step | None:
    target = parts.target(r, e["goto"], "goto")
    return None if target is None else Goto(pos=pos, id=step_id, target=target)


def _set(r: Reader, e: Entries, pos: Pos, step_id: str | None) -> Step | None:
    values = r.mapping(e["set"], "set")
    if values is None:
        return None
    if not values:
        r.error(e["set"], "set needs at least one slot")
    pairs: list[tuple[str, Template | None]] = []
    for name, node in values.items():
        if SLOT_NAME.fullmatch(name) is None:
            r.error(node, f"'{name}' is not a slot name (letters, digits, _)")
        elif is_null(node):
            pairs.append((name, None))
        else:
            value = parts.template(r, node, f"the value of {name}")
            if value is not None:
                pairs.append((name, value))
    return SetSlots(pos=pos, id=step_id, values=tuple(pairs))


def _handoff(r: Reader, e: Entries, pos: Pos, step_id: str | None) -> Step | None:
    fields = r.mapping(e["handoff"], "handoff", ("reason", "priority", "tags"))
    if fields is None:
        return None
    if "reason" not in fields:
        r.error(e["handoff"], "handoff needs a reason")
        return None
    reason = r.string(fields["reason"], "reason")
    tags = r.strings(fields["tags"], "tags") if "tags" in fields else []
    priority: Priority | None = "normal"
    if "priority" in fields:
        priority = _PRIORITY_BY_NAME.get(str(fields["priority"].value))
        if priority is None:
            r.error(fields["priority"], f"priority must be one of {', '.join(PRIORITIES)}")
    if reason is None or tags is None or priority is None:
        return None
    return Handoff(pos=pos, id=step_id, reason=reason, priority=priority, tags=tuple(tags))


def _end(r: Reader, e: Entries, pos: Pos, step_id: str | None) -> Step | None:
    if is_null(e["end"]):
        return End(pos=pos, id=step_id)
    text = parts.text(r, e["end"], "end")
    return None if text is None else End(pos=pos, id=step_id, text=text)


_PRIORITY_BY_NAME: dict[str, Priority] = {name: name for name in PRIORITIES}

_PARSERS: dict[str, Callable[[Reader, Entries, Pos, str | None], Step | None]] = {
    "say": _say,
    "ask": _ask,
    "if": _if,
    "goto": _goto,
    "set": _set,
    "handoff": _handoff,
    "end": _end,
}
