"""Reading YAML node trees with positions, collecting problems instead of raising.

Flow files are read as PyYAML node trees (not plain Python objects) so every key and value keeps
its line, duplicate keys are caught (plain `safe_load` keeps the last one silently), and text
scalars are taken as written: `да`, `yes` or `007` stay strings instead of becoming booleans or
numbers.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal, InvalidOperation

import yaml

from flows.model import Pos
from nlu.types import Problem

Node = yaml.Node
#: libyaml's parser when PyYAML was built with it (several times faster), else the pure one.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


class Reader:
    """Typed access to the nodes of one file; every misfit becomes a `Problem` with its line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def pos(self, node: Node) -> Pos:
        return Pos(self.file, line_of(node))

    def error(self, node: Node, message: str) -> None:
        self.problems.append(Problem(self.file, line_of(node), message))

    def error_at(self, pos: Pos, message: str) -> None:
        self.problems.append(Problem(pos.file, pos.line, message))

    def mapping(
        self, node: Node, what: str, allowed: Collection[str] | None = None
    ) -> dict[str, Node] | None:
        """The mapping's values by key; unknown and duplicate keys are reported and skipped."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping")
            return None
        entries: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or is_null(key_node):
                self.error(key_node, f"a key in {what} must be a plain name")
                continue
            key = str(key_node.value)
            if key in entries:
                self.error(key_node, f"duplicate key '{key}' in {what}")
            elif allowed is not None and key not in allowed:
                expected = ", ".join(sorted(allowed))
                self.error(key_node, f"unknown key '{key}' in {what} (expected: {expected})")
            else:
                entries[key] = value_node
        return entries

    def keys(self, node: Node) -> list[str]:
        if not isinstance(node, yaml.MappingNode):
            return []
        return [str(key.value) for key, _ in node.value if isinstance(key, yaml.ScalarNode)]

    def sequence(self, node: Node, what: str) -> list[Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list")
            return None
        return list(node.value)

    def string(self, node: Node, what: str) -> str | None:
        """A scalar exactly as written (quoted or not), non-empty."""
        if not isinstance(node, yaml.ScalarNode) or is_null(node) or node.value == "":
            self.error(node, f"{what} must be a non-empty text")
            return None
        return str(node.value)

    def strings(self, node: Node, what: str) -> list[str] | None:
        items = self.sequence(node, what)
        if items is None:
            return None
        values = [self.string(item, f"an item of {what}") for item in items]
        return [value for value in values if value is not None]

    def integer(self, node: Node, what: str, minimum: int = 0) -> int | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG:
            value = self._constructor.construct_object(node)
            if isinstance(value, int) and value >= minimum:
                return value
        self.error(node, f"{what} must be a whole number ≥ {minimum}")
        return None

    def number(self, node: Node, what: str) -> Decimal | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in (_INT_TAG, _FLOAT_TAG):
            try:
                value = Decimal(str(node.value).replace("_", ""))
            except InvalidOperation:
                pass
            else:
                if value.is_finite():
                    return value
        self.error(node, f"{what} must be a number")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
            return bool(self._constructor.construct_object(node))
        self.error(node, f"{what} must be true or false")
        return None
