"""The YAML side of Rasa NLU files: every example line with its file and 1-based line number.

PyYAML's composed node tree is walked instead of the loaded objects, because nodes know where
they are in the file; a literal block (`examples: |`) keeps every line, so line i of its value
is file line start + 1 + i.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu.types import Problem

KINDS = ("intent", "synonym", "regex", "lookup")
# Keys of Rasa's other YAML files (domain, stories, rules): a data directory may hold them.
_FOREIGN_TOP_KEYS = frozenset(
    {
        "stories",
        "rules",
        "responses",
        "intents",
        "entities",
        "slots",
        "forms",
        "actions",
        "session_config",
        "e2e_actions",
        "config",
        "recipe",
        "assistant_id",
        "language",
        "pipeline",
        "policies",
    }
)


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One example line of an `intent`, `synonym`, `regex` or `lookup` item."""

    kind: str
    name: str
    text: str  # as written, annotations included
    file: str
    line: int


def read_nlu_file(path: Path) -> tuple[list[ItemLine], list[Problem]]:
    reader = _FileReader(path)
    return reader.read(), reader.problems


class _FileReader:
    """Walks the YAML node tree (not the plain objects) because nodes know their line."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)
        self.path = path
        self.lines: list[ItemLine] = []
        self.problems: list[Problem] = []

    def read(self) -> list[ItemLine]:
        self._read_root()
        return self.lines

    def _read_root(self) -> None:
        root = self._compose()
        if root is None:
            return
        if not isinstance(root, yaml.MappingNode):
            self._report(root, "expected a mapping with `version` and `nlu` keys")
            return
        for key_node, value_node in root.value:
            key = key_node.value
            if key == "version":
                self._check_version(value_node)
            elif key == "nlu":
                self._read_nlu(value_node)
            elif key == "language":  # Rasa's config.yml: the data's language
                self._read_language(value_node)
            elif key not in _FOREIGN_TOP_KEYS:
                self._report(key_node, f"unknown top-level key {key!r}")

    def _compose(self) -> yaml.Node | None:
        try:
            return yaml.compose(self.path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(self.file, 1, f"not UTF-8 text ({exc.reason})"))
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            message = f"invalid YAML: {exc.problem or exc.context}"
            self.problems.append(Problem(self.file, line, message))
        except yaml.YAMLError as exc:
            self.problems.append(Problem(self.file, 1, f"invalid YAML: {exc}"))
        return None

    def _read_language(self, node: yaml.Node) -> None:
        value = str(node.value).strip().lower() if isinstance(node, yaml.ScalarNode) else ""
        if not (len(value) == 2 and value.isascii() and value.isalpha()):
            self._report(node, "`language` must be a two-letter code such as ru or en")
            return
        self.lines.append(ItemLine("language", "", value, self.file, node.start_mark.line + 1))

    def _report(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.file, node.start_mark.line + 1, message))

    def _check_version(self, node: yaml.Node) -> None:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).startswith(("2", "3")):
            self._report(node, 'unsupported version (use "3.1")')

    def _read_nlu(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return
        if not isinstance(node, yaml.SequenceNode):
            self._report(node, "`nlu` must be a list of items")
            return
        for item in node.value:
            self._read_item(item)

    def _read_item(self, item: yaml.Node) -> None:
        if not isinstance(item, yaml.MappingNode):
            self._report(item, "expected `- intent: name` with examples")
            return
        fields = {k.value: (k, v) for k, v in item.value}
        kinds = [kind for kind in KINDS if kind in fields]
        unknown = sorted(set(fields) - {*KINDS, "examples", "metadata"})
        if unknown:
            self._report(fields[unknown[0]][0], f"unknown key {unknown[0]!r}")
            return
        if len(kinds) != 1:
            self._report(item, "an item needs exactly one of intent/synonym/regex/lookup")
            return
        kind = kinds[0]
        name_node = fields[kind][1]
        name = name_node.value if isinstance(name_node, yaml.ScalarNode) else ""
        if not isinstance(name, str) or not name.strip():
            self._report(name_node, f"`{kind}` needs a name")
            return
        if "examples" not in fields:
            self._report(item, f"{kind} {name!r} has no `examples`")
            return
        for text, line in self._example_lines(fields["examples"][1], name):
            self.lines.append(ItemLine(kind, name.strip(), text, self.file, line))

    def _example_lines(self, node: yaml.Node, name: str) -> Iterator[tuple[str, int]]:
        if isinstance(node, yaml.SequenceNode):
            yield from self._example_mappings(node)
            return
        if not isinstance(node, yaml.ScalarNode) or node.style != "|":
            self._report(node, f"examples of {name!r} must be `examples: |`")
            return
        # A literal block keeps every line, so line i of the value is file line start + 1 + i.
        first = node.start_mark.line + 2
        for index, raw in enumerate(node.value.split("\n")):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped != "-" and not stripped.startswith("- "):
                self.problems.append(
                    Problem(self.file, first + index, "an example must start with `- `")
                )
                continue
            text = stripped[1:].strip()
            if not text:
                self.problems.append(Problem(self.file, first + index, "empty example"))
                continue
            yield text, first + index

    def _example_mappings(self, node: yaml.SequenceNode) -> Iterator[tuple[str, int]]:
        """Rasa's long form: `examples:` as a list of `- text: ...` (with optional metadata)."""
        for entry in node.value:
            text_node = None
            if isinstance(entry, yaml.MappingNode):
                text_node = next((v for k, v in entry.value if k.value == "text"), None)
            if not isinstance(text_node, yaml.ScalarNode) or not str(text_node.value).strip():
                self._report(entry, "expected `- text: example`")
                continue
            yield str(text_node.value).strip(), text_node.start_mark.line + 1
