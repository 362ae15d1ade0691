"""Write the project's NLU data as a Rasa 3 project: config.yml, domain.yml and data/nlu.yml.

The same examples, entity annotations, synonyms, regexes and lookup tables train Rasa's DIET
classifier, so that `NLU_BACKEND=rasa` and `bench.nlu_vs_rasa` compare models, not data.
The pipeline is Rasa's recommended DIET setup (word and character n-gram count vectors,
lexical and regex features) with the epochs as a parameter; no dialogue policies: only
`/model/parse` is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nlu.data import Entry, Example, TrainingData

RASA_DATA_VERSION = "3.1"
DEFAULT_EPOCHS = 100
PROJECT_FILES = ("config.yml", "domain.yml", "data/nlu.yml")


@dataclass(frozen=True, slots=True)
class RasaProject:
    """What `export_rasa_project` wrote (for the CLI's summary)."""

    directory: Path
    files: tuple[Path, ...]
    intents: int
    examples: int


class ExportError(Exception):
    """The target holds a Rasa project already and overwriting was not asked for."""


def export_rasa_project(
    data: TrainingData,
    directory: Path,
    *,
    epochs: int = DEFAULT_EPOCHS,
    language: str = "ru",
    overwrite: bool = False,
) -> RasaProject:
    """Write the three files under `directory` (created if missing)."""
    targets = [directory / name for name in PROJECT_FILES]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise ExportError(f"would overwrite {', '.join(existing)} (use --force)")
    contents = (
        rasa_config(epochs, language),
        rasa_domain(data),
        rasa_nlu_data(data),
    )
    for target, text in zip(targets, contents, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return RasaProject(directory, tuple(targets), len(data.intents), len(data))


def rasa_config(epochs: int = DEFAULT_EPOCHS, language: str = "ru") -> str:
    # A fixed random seed: two trainings on the same data give the same model (fair benchmarks).
    config: dict[str, Any] = {
        "recipe": "default.v1",
        "assistant_id": "supportbot",
        "language": language,
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 1,
                "max_ngram": 4,
            },
            {
                "name": "DIETClassifier",
                "epochs": epochs,
                "constrain_similarities": True,
                "random_seed": 7,
            },
            {"name": "EntitySynonymMapper"},
        ],
        "policies": [],
    }
    return _dump(config)


def rasa_domain(data: TrainingData) -> str:
    entities = sorted(
        {a.entity for e in data.examples for a in e.entities}
        | {e.name for e in data.regexes}
        | {e.name for e in data.lookups}
    )
    domain: dict[str, Any] = {"version": RASA_DATA_VERSION, "intents": list(data.intents)}
    if entities:
        domain["entities"] = entities
    return _dump(domain)


def rasa_nlu_data(data: TrainingData) -> str:
    items: list[dict[str, str]] = [
        {"intent": name, "examples": _block(annotate(e) for e in examples)}
        for name, examples in data.intents.items()
    ]
    items += _tables("synonym", data.synonyms)
    items += _tables("regex", data.regexes)
    items += _tables("lookup", data.lookups)
    return _dump({"version": RASA_DATA_VERSION, "nlu": items})


def annotate(example: Example) -> str:
    """The example with its entities written back as Rasa markup (the inverse of the reader)."""
    parts: list[str] = []
    position = 0
    for entity in sorted(example.entities, key=lambda a: a.start):
        surface = example.text[entity.start : entity.end]
        parts.append(example.text[position : entity.start])
        if entity.value == surface:
            parts.append(f"[{surface}]({entity.entity})")
        else:
            spec = json.dumps({"entity": entity.entity, "value": entity.value}, ensure_ascii=False)
            parts.append(f"[{surface}]{spec}")
        position = entity.end
    parts.append(example.text[position:])
    return "".join(parts)


def _tables(kind: str, entries: list[Entry]) -> list[dict[str, str]]:
    grouped: dict[str, list[str]] = {}
    for entry in entries:
        grouped.setdefault(entry.name, []).append(entry.value)
    return [{kind: name, "examples": _block(values)} for name, values in grouped.items()]


def _block(lines: Iterable[str]) -> str:
    # One example per line: the reader would split an example with a line break in two.
    return "".join(f"- {' '.join(line.splitlines()).strip()}\n" for line in lines)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, the way Rasa's own files look."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(
        document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000
    )
