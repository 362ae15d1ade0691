"""Parsing the parts steps are made of: texts, buttons, answer rules, conditions, targets."""

from __future__ import annotations

import re

import yaml

from flows.model import (
    CONDITION_OPS,
    FLOW_ID,
    FLOW_PREFIX,
    STEP_ID,
    ButtonKind,
    ButtonSpec,
    ChoiceRule,
    Condition,
    NumberRule,
    Operand,
    RegexRule,
    Rule,
    Target,
)
from flows.texts import (
    ANY_LANGUAGE,
    FALLBACK_LANGUAGE,
    LANGUAGES,
    SLOT_NAME,
    Template,
    TemplateError,
    Text,
    fold,
    parse_template,
)
from flows.yamlnodes import Node, Reader, is_null, line_of

_BUTTON_KINDS: tuple[ButtonKind, ...] = ("intent", "flow", "value", "url")
_URL_SCHEMES = ("https://", "http://", "tg://")


def template(r: Reader, node: Node, what: str) -> Template | None:
    source = r.string(node, what)
    if source is None:
        return None
    try:
        return parse_template(source, line_of(node))
    except TemplateError as exc:
        r.error(node, f"{what}: {exc}")
        return None


def _variants(r: Reader, node: Node, what: str, allow_list: bool) -> tuple[Template, ...] | None:
    if isinstance(node, yaml.SequenceNode):
        if not allow_list:
            r.error(node, f"{what} cannot have variants")
            return None
        items = [template(r, item, f"a variant of {what}") for item in node.value]
        if not items:
            r.error(node, f"{what} has an empty list of variants")
        if not items or None in items:
            return None
        return tuple(item for item in items if item is not None)
    single = template(r, node, what)
    return None if single is None else (single,)


def text(r: Reader, node: Node, what: str, allow_list: bool = True) -> Text | None:
    """TEXT: a string, a list of variants, or a mapping by language of either."""
    if not isinstance(node, yaml.MappingNode):
        variants = _variants(r, node, what, allow_list)
        return None if variants is None else Text({ANY_LANGUAGE: variants}, line_of(node))
    reported = len(r.problems)
    by_language: dict[str, tuple[Template, ...]] = {}
    for language, value_node in (r.mapping(node, what) or {}).items():
        if language not in LANGUAGES:
            # `say: {first_name}, hello` is a YAML mapping, not a text: say so.
            hint = "; quote a text that starts with '{'" if is_null(value_node) else ""
            r.error(
                value_node,
                f"unknown language '{language}' in {what} "
                f"(languages: {', '.join(LANGUAGES)}){hint}",
            )
            continue
        variants = _variants(r, value_node, f"{what} ({language})", allow_list)
        if variants is not None:
            by_language[language] = variants
    if len(r.problems) > reported:
        return None
    if FALLBACK_LANGUAGE not in by_language:
        r.error(node, f"{what} needs a '{FALLBACK_LANGUAGE}' text: it is the fallback language")
        return None
    return Text(by_language, line_of(node))


def buttons(r: Reader, node: Node) -> tuple[ButtonSpec, ...]:
    items = r.sequence(node, "buttons")
    if items is None:
        return ()
    parsed = (_button(r, item) for item in items)
    return tuple(button for button in parsed if button is not None)


def _button(r: Reader, node: Node) -> ButtonSpec | None:
    entries = r.mapping(node, "a button", ("title", *_BUTTON_KINDS))
    if entries is None:
        return None
    kinds = [kind for kind in _BUTTON_KINDS if kind in entries]
    if len(kinds) != 1:
        r.error(node, "a button needs exactly one of intent, flow, value, url")
        return None
    if "title" not in entries:
        r.error(node, "a button needs a title")
        return None
    title = text(r, entries["title"], "a button title", allow_list=False)
    kind = kinds[0]
    target = r.string(entries[kind], f"the button's {kind}")
    if title is None or target is None:
        return None
    if kind == "flow" and not FLOW_ID.fullmatch(target):
        r.error(entries[kind], f"'{target}' is not a flow id ([a-z0-9_]+)")
        return None
    if kind == "url" and not target.startswith(_URL_SCHEMES):
        r.error(entries[kind], "a button url must start with https://, http:// or tg://")
        return None
    return ButtonSpec(title, kind, target, r.pos(node))


def target(r: Reader, node: Node, what: str) -> Target | None:
    name = r.string(node, what)
    if name is None:
        return None
    is_flow = name.startswith(FLOW_PREFIX)
    if is_flow:
        name = name[len(FLOW_PREFIX) :]
    if not (FLOW_ID if is_flow else STEP_ID).fullmatch(name):
        expected = "flow:<flow id> with [a-z0-9_]+" if is_flow else "a step id or flow:<flow id>"
        r.error(node, f"{what} '{node.value}' is not {expected}")
        return None
    return Target(name, is_flow, r.pos(node))


def slot_name(r: Reader, node: Node, what: str) -> str | None:
    name = r.string(node, what)
    if name is not None and not SLOT_NAME.fullmatch(name):
        r.error(node, f"{what} '{name}' is not a slot name (letters, digits, _)")
        return None
    return name


def regex(r: Reader, node: Node, what: str) -> re.Pattern[str] | None:
    source = r.string(node, what)
    if source is None:
        return None
    try:
        return re.compile(source, re.IGNORECASE)
    except re.error as exc:
        r.error(node, f"bad regex in {what}: {exc}")
        return None


def rule(r: Reader, node: Node) -> Rule | None:
    reported = len(r.problems)
    entries = r.mapping(node, "validate", ("regex", "number", "choice"))
    if entries is None or len(r.problems) > reported:
        return None
    if len(entries) != 1:
        r.error(node, "validate needs exactly one of regex, number, choice")
        return None
    ((kind, value),) = entries.items()
    if kind == "regex":
        pattern = regex(r, value, "validate")
        return None if pattern is None else RegexRule(pattern)
    if kind == "number":
        return _number_rule(r, value)
    return _choice_rule(r, value)


def _number_rule(r: Reader, node: Node) -> NumberRule | None:
    if is_null(node):
        return NumberRule(None, None)
    bounds = r.mapping(node, "number", ("min", "max"))
    if bounds is None:
        return None
    low = r.number(bounds["min"], "min") if "min" in bounds else None
    high = r.number(bounds["max"], "max") if "max" in bounds else None
    if low is not None and high is not None and low > high:
        r.error(node, f"number: min {low} is greater than max {high}")
        return None
    return NumberRule(low, high)


def _choice_rule(r: Reader, node: Node) -> ChoiceRule | None:
    choices = r.strings(node, "choice")
    if not choices:
        if choices is not None:
            r.error(node, "choice needs at least one value")
        return None
    if len({fold(choice) for choice in choices}) != len(choices):
        r.error(node, "choice has the same value twice (values are compared ignoring case)")
        return None
    return ChoiceRule(tuple(choices))


def condition(r: Reader, node: Node) -> Condition | None:
    entries = r.mapping(node, "a condition", ("slot", *CONDITION_OPS))
    if entries is None:
        return None
    ops = [op for op in CONDITION_OPS if op in entries]
    if "slot" not in entries or len(ops) != 1:
        r.error(node, f"a condition needs slot and exactly one of {', '.join(CONDITION_OPS)}")
        return None
    slot = slot_name(r, entries["slot"], "slot")
    op = ops[0]
    operand = _operand(r, op, entries[op])
    if slot is None or operand is None:
        return None
    return Condition(slot, op, operand, r.pos(node))


def _operand(r: Reader, op: str, node: Node) -> Operand | None:
    if op in ("equals", "not_equals"):
        return r.string(node, op)
    if op == "in":
        values = r.strings(node, "in")
        return None if values is None else tuple(values)
    if op == "matches":
        return regex(r, node, "matches")
    if op == "exists":
        return r.boolean(node, "exists")
    return r.number(node, op)
