"""How good is the classifier: cross-validation on one data set, or train on one, test on another.

Judge changes on phrasings the training data does not contain: cross-validation holds out a
fifth of every intent in turn; a separate test file (held-out customer phrasings) is better still.
Examples labelled `out_of_scope` in the test set measure how often off-topic messages are
recognised as such; the rest measure in-scope accuracy.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nlu.data import Example, TrainingData
from nlu.embedded import EmbeddedClassifier, Progress
from nlu.types import OUT_OF_SCOPE

WORST_CONFUSIONS = 10
_SEED = 7

Trainer = Callable[[TrainingData], EmbeddedClassifier]


@dataclass(frozen=True, slots=True)
class IntentMetrics:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Confusion:
    true: str
    predicted: str
    count: int
    example: str


@dataclass(slots=True)
class EvaluationReport:
    method: str
    threshold: float
    items: int
    accuracy: float
    macro_f1: float  # over the intents present in the test set, out_of_scope included
    in_scope_accuracy: float | None
    oos_recall: float | None  # None when the test set has no out_of_scope items
    train_seconds: float  # mean over the models trained
    parse_p50_ms: float
    parse_p99_ms: float
    per_intent: list[IntentMetrics] = field(default_factory=list)
    confusions: list[Confusion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Outcomes:
    truth: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    parse_seconds: list[float] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)

    def run(self, classifier: EmbeddedClassifier, examples: Sequence[Example]) -> None:
        for example in examples:
            start = time.perf_counter()
            result = classifier.parse_sync(example.text)
            self.add(example, result.intent, time.perf_counter() - start)

    def add(self, example: Example, predicted: str, parse_seconds: float) -> None:
        """One test item's outcome (another backend's, for a side-by-side comparison)."""
        self.parse_seconds.append(parse_seconds)
        self.truth.append(example.intent)
        self.predicted.append(predicted)
        self.texts.append(example.text)


def cross_validate(
    data: TrainingData,
    *,
    threshold: float,
    folds: int = 5,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Stratified k-fold: every intent's examples are dealt over the folds.

    Intents with a single example are never held out (nothing would be left to learn from).
    """
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    assignment = _assign_folds(data, folds)
    outcomes = Outcomes()
    for fold in range(folds):
        if progress:
            progress("cross-validation", fold, folds)
        train = [e for e, f in assignment if f != fold]
        test = [e for e, f in assignment if f == fold]
        classifier = _timed_train(data.with_examples(train), threshold, outcomes)
        outcomes.run(classifier, test)
    if progress:
        progress("cross-validation", folds, folds)
    return build_report(f"{folds}-fold cross-validation", threshold, outcomes)


def train_test(
    train: TrainingData,
    test: TrainingData,
    *,
    threshold: float,
    progress: Progress | None = None,
) -> EvaluationReport:
    if progress:
        progress("training", 0, 2)
    outcomes = Outcomes()
    classifier = _timed_train(train, threshold, outcomes)
    if progress:
        progress("testing", 1, 2)
    outcomes.run(classifier, list(test.examples))
    if progress:
        progress("testing", 2, 2)
    return build_report("train/test", threshold, outcomes)


def holdout_split(data: TrainingData, folds: int = 5) -> tuple[TrainingData, TrainingData]:
    """One stratified train/test split: a `1/folds` share of every intent is held out."""
    assignment = _assign_folds(data, folds)
    train = [e for e, f in assignment if f != 0]
    test = [e for e, f in assignment if f == 0]
    return data.with_examples(train), data.with_examples(test)


def _timed_train(data: TrainingData, threshold: float, outcomes: Outcomes) -> EmbeddedClassifier:
    start = time.perf_counter()
    classifier = EmbeddedClassifier.train(data, threshold=threshold)
    outcomes.train_seconds.append(time.perf_counter() - start)
    return classifier


def _assign_folds(data: TrainingData, folds: int) -> list[tuple[Example, int]]:
    rng = np.random.default_rng(_SEED)
    assignment: list[tuple[Example, int]] = []
    for examples in data.intents.values():
        if len(examples) < 2:
            assignment.extend((e, -1) for e in examples)
            continue
        offset = int(rng.integers(folds))  # so that small intents do not all test in fold 0
        order = rng.permutation(len(examples))
        assignment.extend((examples[i], (k + offset) % folds) for k, i in enumerate(order))
    return assignment


def build_report(method: str, threshold: float, outcomes: Outcomes) -> EvaluationReport:
    truth, predicted = outcomes.truth, outcomes.predicted
    hits = [t == p for t, p in zip(truth, predicted, strict=True)]
    in_scope = [h for h, t in zip(hits, truth, strict=True) if t != OUT_OF_SCOPE]
    oos = [h for h, t in zip(hits, truth, strict=True) if t == OUT_OF_SCOPE]
    per_intent = _per_intent(truth, predicted)
    parse_ms = np.array(outcomes.parse_seconds or [0.0]) * 1000
    return EvaluationReport(
        method=method,
        threshold=threshold,
        items=len(truth),
        accuracy=_mean(hits),
        macro_f1=_mean([m.f1 for m in per_intent]),
        in_scope_accuracy=_mean(in_scope) if oos and in_scope else None,
        oos_recall=_mean(oos) if oos else None,
        train_seconds=_mean(outcomes.train_seconds),
        parse_p50_ms=float(np.percentile(parse_ms, 50)),
        parse_p99_ms=float(np.percentile(parse_ms, 99)),
        per_intent=per_intent,
        confusions=_confusions(outcomes),
    )


def _per_intent(truth: list[str], predicted: list[str]) -> list[IntentMetrics]:
    support = Counter(truth)
    guessed = Counter(predicted)
    correct = Counter(t for t, p in zip(truth, predicted, strict=True) if t == p)
    metrics = []
    for intent in sorted(support):
        precision = correct[intent] / guessed[intent] if guessed[intent] else 0.0
        recall = correct[intent] / support[intent]
        total = precision + recall
        f1 = 2 * precision * recall / total if total else 0.0
        metrics.append(IntentMetrics(intent, precision, recall, f1, support[intent]))
    return metrics


def _confusions(outcomes: Outcomes) -> list[Confusion]:
    pairs = Counter[tuple[str, str]]()
    examples: dict[tuple[str, str], str] = {}
    for t, p, text in zip(outcomes.truth, outcomes.predicted, outcomes.texts, strict=True):
        if t != p:
            pairs[t, p] += 1
            examples.setdefault((t, p), text)
    return [
        Confusion(t, p, count, examples[t, p])
        for (t, p), count in pairs.most_common(WORST_CONFUSIONS)
    ]


def _mean(values: Sequence[float] | Sequence[bool]) -> float:
    return float(np.mean(values)) if len(values) else 0.0
