"""Training data in Rasa's NLU YAML format, loaded with the file and line of every example.

A file looks like::

    version: "3.1"
    nlu:
    - intent: order_status
      examples: |
        - где мой заказ
        - заказ в [Москву]{"entity": "city", "value": "Москва"} не пришёл
    - synonym: Москва
      examples: |
        - мск
    - regex: order_id
      examples: |
        - \\b\\d{6,10}\\b
    - lookup: city
      examples: |
        - Москва

Structural mistakes raise `DataError` with one `Problem` per mistake; semantic checks (duplicates,
bad regexes) live in `nlu.validate` so that Rasa-compatible but sloppy data still trains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nlu.annotations import parse_annotations
from nlu.features import FEATURES_VERSION
from nlu.types import Entity, Problem

_KINDS = ("intent", "synonym", "regex", "lookup")
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
        "assistant_id",
        "language",
        "pipeline",
        "policies",
    }
)
_YAML_SUFFIXES = (".yml", ".yaml")

__all__ = [
    "DataError",
    "Entry",
    "Example",
    "TrainingData",
    "load_training_data",
]


class DataError(Exception):
    """Training data that cannot be read; `problems` point at file:line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Example:
    text: str  # annotations already stripped: "[мск](city)" is stored as "мск"
    intent: str
    file: str = "<memory>"
    line: int = 0
    entities: tuple[Entity, ...] = ()

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a synonym, regex or lookup block: `name` is the block's title."""

    name: str
    value: str
    file: str = "<memory>"
    line: int = 0


@dataclass(slots=True)
class TrainingData:
    intents: dict[str, list[Example]] = field(default_factory=dict)
    synonyms: list[Entry] = field(default_factory=list)  # name: canonical value, value: variant
    regexes: list[Entry] = field(default_factory=list)  # name: entity, value: pattern
    lookups: list[Entry] = field(default_factory=list)  # name: entity, value: element
    sources: tuple[str, ...] = ()

    @property
    def examples(self) -> Iterator[Example]:
        for examples in self.intents.values():
            yield from examples

    def __len__(self) -> int:
        return sum(len(examples) for examples in self.intents.values())

    def synonym_map(self) -> dict[str, str]:
        """Variant (lowercase, ё→е) → canonical value, including values given in annotations."""
        mapping = {_key(e.value): e.name for e in self.synonyms}
        for example in self.examples:
            for entity in example.entities:
                surface = example.text[entity.start : entity.end]
                if surface != entity.value:
                    mapping.setdefault(_key(surface), entity.value)
        return mapping

    def fingerprint(self) -> str:
        """Changes whenever the content or the featurizer does (line numbers do not matter)."""
        payload = {
            "features": FEATURES_VERSION,
            "examples": [
                [e.intent, e.text, [[a.entity, a.value, a.start, a.end] for a in e.entities]]
                for e in self.examples
            ],
            "synonyms": [[e.name, e.value] for e in self.synonyms],
            "regexes": [[e.name, e.value] for e in self.regexes],
            "lookups": [[e.name, e.value] for e in self.lookups],
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def with_examples(self, examples: Iterable[Example]) -> TrainingData:
        """The same synonyms, regexes and lookups over other examples (an evaluation split)."""
        intents: dict[str, list[Example]] = {}
        for example in examples:
            intents.setdefault(example.intent, []).append(example)
        return TrainingData(intents, self.synonyms, self.regexes, self.lookups, self.sources)

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str]], *, source: str = "<memory>"
    ) -> TrainingData:
        """Examples from (text, intent) pairs; the line is the pair's 1-based position."""
        examples = (
            Example(text, intent, source, number)
            for number, (text, intent) in enumerate(pairs, start=1)
        )
        return cls(sources=(source,)).with_examples(examples)


def _key(value: str) -> str:
    return value.strip().lower().replace("ё", "е")


def load_training_data(path: Path | Sequence[Path]) -> TrainingData:
    """Read Rasa NLU YAML files; a directory stands for its *.yml/*.yaml files, sorted."""
    files = _expand([path] if isinstance(path, Path) else list(path))
    data = TrainingData(sources=tuple(str(f) for f in files))
    problems: list[Problem] = []
    for file in files:
        problems.extend(_FileReader(file, data).read())
    if problems:
        raise DataError(problems)
    return data


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in _YAML_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise DataError([Problem(str(path), 0, "no such file or directory")])
    if not files:
        raise DataError([Problem(str(p), 0, "no *.yml training data files") for p in paths])
    return files


class _FileReader:
    """Walks the YAML node tree (not the plain objects) because nodes know their line."""

    def __init__(self, path: Path, data: TrainingData) -> None:
        self.file = str(path)
        self.path = path
        self.data = data
        self.problems: list[Problem] = []

    def read(self) -> list[Problem]:
        try:
            root = yaml.compose(self.path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except UnicodeDecodeError as exc:
            return [Problem(self.file, 1, f"not UTF-8 text ({exc.reason})")]
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            return [Problem(self.file, line, f"invalid YAML: {exc.problem or exc.context}")]
        except yaml.YAMLError as exc:
            return [Problem(self.file, 1, f"invalid YAML: {exc}")]
        if root is None:
            return []
        if not isinstance(root, yaml.MappingNode):
            return [self._problem(root, "expected a mapping with `version` and `nlu` keys")]
        for key_node, value_node in root.value:
            key = key_node.value
            if key == "version":
                self._check_version(value_node)
            elif key == "nlu":
                self._read_nlu(value_node)
            elif key not in _FOREIGN_TOP_KEYS:
                self.problems.append(self._problem(key_node, f"unknown top-level key {key!r}"))
        return self.problems

    def _problem(self, node: yaml.Node, message: str, offset: int = 0) -> Problem:
        return Problem(self.file, node.start_mark.line + 1 + offset, message)

    def _check_version(self, node: yaml.Node) -> None:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).startswith(("2", "3")):
            self.problems.append(self._problem(node, 'unsupported version (use "3.1")'))

    def _read_nlu(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return
        if not isinstance(node, yaml.SequenceNode):
            self.problems.append(self._problem(node, "`nlu` must be a list of items"))
            return
        for item in node.value:
            self._read_item(item)

    def _read_item(self, item: yaml.Node) -> None:
        if not isinstance(item, yaml.MappingNode):
            self.problems.append(self._problem(item, "expected `- intent: name` with examples"))
            return
        fields = {k.value: (k, v) for k, v in item.value}
        kinds = [kind for kind in _KINDS if kind in fields]
        unknown = set(fields) - {*_KINDS, "examples", "metadata"}
        if unknown:
            key_node = fields[sorted(unknown)[0]][0]
            self.problems.append(self._problem(key_node, f"unknown key {sorted(unknown)[0]!r}"))
            return
        if len(kinds) != 1:
            self.problems.append(
                self._problem(item, "an item needs exactly one of intent/synonym/regex/lookup")
            )
            return
        kind = kinds[0]
        name_node = fields[kind][1]
        name = name_node.value if isinstance(name_node, yaml.ScalarNode) else ""
        if not isinstance(name, str) or not name.strip():
            self.problems.append(self._problem(name_node, f"`{kind}` needs a name"))
            return
        if "examples" not in fields:
            self.problems.append(self._problem(item, f"{kind} {name!r} has no `examples`"))
            return
        for text, line in self._example_lines(fields["examples"][1], name):
            self._add(kind, name.strip(), text, line)

    def _example_lines(self, node: yaml.Node, name: str) -> Iterator[tuple[str, int]]:
        if isinstance(node, yaml.SequenceNode):
            yield from self._example_mappings(node)
            return
        if not isinstance(node, yaml.ScalarNode) or node.style != "|":
            self.problems.append(self._problem(node, f"examples of {name!r} must be `examples: |`"))
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
                self.problems.append(self._problem(entry, "expected `- text: example`"))
                continue
            yield str(text_node.value).strip(), text_node.start_mark.line + 1

    def _add(self, kind: str, name: str, text: str, line: int) -> None:
        if kind == "intent":
            try:
                plain, entities = parse_annotations(text)
            except ValueError as exc:
                self.problems.append(Problem(self.file, line, str(exc)))
                return
            example = Example(plain, name, self.file, line, entities)
            self.data.intents.setdefault(name, []).append(example)
            return
        entry = Entry(name, text, self.file, line)
        {"synonym": self.data.synonyms, "regex": self.data.regexes, "lookup": self.data.lookups}[
            kind
        ].append(entry)
