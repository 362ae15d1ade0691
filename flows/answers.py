"""Judging a customer's answer to an `ask`, and the conditions of `if` steps."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from flows.model import Ask, ChoiceRule, Condition, NumberRule, RegexRule
from flows.texts import fold

_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")
# "1 500" and "12 000 000" are how people write amounts; a space between digit groups goes.
_GROUP_SPACE = re.compile(r"(?<=[0-9])[ \u00a0\u202f](?=[0-9]{3}(?![0-9]))")


def parse_number(text: str) -> tuple[str, Decimal] | None:
    """The number as written with a decimal point, and its value; None if `text` is no number."""
    compact = _GROUP_SPACE.sub("", text.strip())
    if not _NUMBER.fullmatch(compact):
        return None
    written = compact.replace(",", ".").removeprefix("+")
    return written, Decimal(written)


def accept_answer(ask: Ask, text: str) -> str | None:
    """The value to store in the ask's slot, or None when the answer does not validate."""
    answer = text.strip()
    if not answer:
        return None
    folded = fold(answer)
    rule = ask.rule
    if isinstance(rule, ChoiceRule):
        for choice in rule.choices:
            if fold(choice) == folded:
                return choice
    # The ask's own `value` buttons are answers it offered, so they are valid whatever the rule.
    for button in ask.buttons:
        if button.kind == "value" and fold(button.target) == folded:
            return button.target
    if rule is None:
        return answer
    if isinstance(rule, RegexRule):
        return answer if rule.pattern.fullmatch(answer) else None
    if isinstance(rule, NumberRule):
        return _number_answer(rule, answer)
    return None


def _number_answer(rule: NumberRule, answer: str) -> str | None:
    parsed = parse_number(answer)
    if parsed is None:
        return None
    written, value = parsed
    if rule.minimum is not None and value < rule.minimum:
        return None
    if rule.maximum is not None and value > rule.maximum:
        return None
    return written


def holds(condition: Condition, slots: Mapping[str, str]) -> bool:
    """Whether an `if` condition is true; a missing slot only satisfies `not_equals` and
    `exists: false`."""
    value = slots.get(condition.slot)
    operand = condition.operand
    op = condition.op
    if op == "exists":
        return bool(value) == operand
    if value is None:
        return op == "not_equals"
    if isinstance(operand, str):
        return (fold(value) == fold(operand)) == (op == "equals")
    if isinstance(operand, tuple):
        return fold(value) in {fold(item) for item in operand}
    if isinstance(operand, re.Pattern):
        return operand.fullmatch(value) is not None
    if isinstance(operand, Decimal):
        parsed = parse_number(value)
        if parsed is None:
            return False
        return parsed[1] > operand if op == "gt" else parsed[1] < operand
    return False
