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

Structural mistakes (found by `nlu.reader`) raise `DataError` with one `Problem` per mistake;
semantic checks (duplicates, bad regexes) live in `nlu.validate` so that Rasa-compatible but
sloppy data still trains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlu.annotations import parse_annotations
from nlu.features import FEATURES_VERSION
from nlu.normalize import DICTIONARY_VERSION
from nlu.reader import ItemLine, read_nlu_file
from nlu.types import Entity, Problem
from nlu.vectors import available as vectors_available

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
    # Declared by Rasa's `language` key (config.yml beside the data): "ru" reads Latin-typed
    # words back as Russian; any other language is taken as written. Empty: guessed from the
    # examples' alphabet.
    language: str = ""

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
            "dictionary": DICTIONARY_VERSION,
            "examples": [
                [e.intent, e.text, [[a.entity, a.value, a.start, a.end] for a in e.entities]]
                for e in self.examples
            ],
            "synonyms": [[e.name, e.value] for e in self.synonyms],
            "regexes": [[e.name, e.value] for e in self.regexes],
            "lookups": [[e.name, e.value] for e in self.lookups],
            "language": self.language,
            "vectors": vectors_available(),
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def with_examples(self, examples: Iterable[Example]) -> TrainingData:
        """The same synonyms, regexes and lookups over other examples (an evaluation split)."""
        intents: dict[str, list[Example]] = {}
        for example in examples:
            intents.setdefault(example.intent, []).append(example)
        return TrainingData(intents, self.synonyms, self.regexes, self.lookups, self.sources,
                            self.language)

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
        lines, file_problems = read_nlu_file(file)
        problems.extend(file_problems)
        for line in lines:
            problem = _add(data, line)
            if problem is not None:
                problems.append(problem)
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


def _add(data: TrainingData, line: ItemLine) -> Problem | None:
    if line.kind == "language":
        if data.language and data.language != line.text:
            return Problem(line.file, line.line, f"language {line.text!r}, but another file "
                                                 f"says {data.language!r}")
        data.language = line.text
        return None
    if line.kind == "intent":
        try:
            plain, entities = parse_annotations(line.text)
        except ValueError as exc:
            return Problem(line.file, line.line, str(exc))
        example = Example(plain, line.name, line.file, line.line, entities)
        data.intents.setdefault(line.name, []).append(example)
        return None
    tables = {"synonym": data.synonyms, "regex": data.regexes, "lookup": data.lookups}
    tables[line.kind].append(Entry(line.name, line.text, line.file, line.line))
    return None
