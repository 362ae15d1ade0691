"""Checks trainers run before training: contradictions, thin intents, duplicates, bad regexes.

Errors are what would make the model wrong or the load fail (the same phrase taught as two
intents, a regex that does not compile); warnings are what makes it weak.
"""

from __future__ import annotations

import re

from nlu.data import Example, TrainingData
from nlu.normalize import normalize
from nlu.types import Problem

MIN_EXAMPLES = 5


def check_training_data(data: TrainingData) -> list[Problem]:
    problems = [
        *_conflicts_and_duplicates(data),
        *_thin_intents(data),
        *bad_regexes(data),
    ]
    return sorted(problems, key=lambda p: (p.file, p.line, p.message))


def _conflicts_and_duplicates(data: TrainingData) -> list[Problem]:
    """Conflicts compare normalised text ("Где заказ?" teaches the same as "где заказ");
    duplicates inside an intent compare the written text, since punctuation variants there
    are harmless and Rasa itself sees them as different."""
    problems: list[Problem] = []
    first_seen: dict[str, Example] = {}
    written: dict[tuple[str, str], Example] = {}
    for example in data.examples:
        key = normalize(example.text, latin_to_cyrillic=False)
        earlier = first_seen.setdefault(key, example)
        if earlier.intent != example.intent:
            problems.append(
                Problem(
                    example.file,
                    example.line,
                    f"{example.text!r} is in intent {example.intent!r} at {example.location} "
                    f"and also in {earlier.intent!r} at {earlier.location}",
                )
            )
        exact = (example.intent, " ".join(example.text.lower().split()))
        first = written.setdefault(exact, example)
        if first is not example:
            problems.append(
                Problem(
                    example.file,
                    example.line,
                    f"duplicate example {example.text!r} in intent {example.intent!r} "
                    f"(first at {first.location})",
                    severity="warning",
                )
            )
    return problems


def _thin_intents(data: TrainingData) -> list[Problem]:
    return [
        Problem(
            examples[0].file,
            examples[0].line,
            f"intent {name!r} has {len(examples)} examples; give it at least {MIN_EXAMPLES}",
            severity="warning",
        )
        for name, examples in data.intents.items()
        if 0 < len(examples) < MIN_EXAMPLES
    ]


def bad_regexes(data: TrainingData) -> list[Problem]:
    """Also checked before training: a broken pattern would fail on every parse."""
    problems = []
    for entry in data.regexes:
        try:
            re.compile(entry.value)
        except re.error as exc:
            problems.append(Problem(entry.file, entry.line, f"bad regex {entry.name!r}: {exc}"))
    return problems
