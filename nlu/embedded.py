"""The embedded intent classifier: hand-made TF-IDF features and a linear model.

sklearn's LinearSVC does the fitting (nlu/training.py says why); parsing does the sparse dot
product itself (weights of the ~100 active features times their rows of the coefficient
matrix), because sklearn's per-call overhead on a single sample is several times the whole
budget.

Confidences are softmax probabilities with a temperature fitted on out-of-fold predictions, so
that a threshold means roughly the same on small and large data sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nlu.data import DataError, TrainingData
from nlu.entities import EntityExtractor
from nlu.features import FloatArray, IndexArray, Vectorizer
from nlu.normalize import MAX_ANALYZED, analyze, morph
from nlu.types import OUT_OF_SCOPE, Entity, IntentScore, ParseResult, Problem

#: (what is being done, steps done, steps in total)
Progress = Callable[[str, int, int], None]

RANKING_SIZE = 5


@dataclass(frozen=True, slots=True)
class Model:
    """Everything a parse needs; `nlu.cache` stores exactly these fields."""

    vectorizer: Vectorizer
    coef: FloatArray  # (features, intents): a parse gathers the rows of its active features
    intercept: FloatArray
    intents: tuple[str, ...]
    temperature: float
    latin_to_cyrillic: bool
    entities: EntityExtractor


class EmbeddedClassifier:
    name = "embedded"

    def __init__(self, model: Model, threshold: float) -> None:
        self.model = model
        self.threshold = threshold
        self._intents = model.intents
        self._in_scope = np.array([i != OUT_OF_SCOPE for i in model.intents])
        self._in_scope_indices = np.flatnonzero(self._in_scope)
        morph()  # load the dictionaries now rather than on the first customer's message

    @classmethod
    def train(
        cls,
        data: TrainingData,
        *,
        threshold: float,
        progress: Progress | None = None,
    ) -> EmbeddedClassifier:
        from nlu.training import fit_model  # sklearn is only imported when training

        return cls(fit_model(data, progress=progress), threshold)

    def known_intents(self) -> frozenset[str]:
        """Every intent a parse can return, `out_of_scope` included."""
        return frozenset(self._intents) | {OUT_OF_SCOPE}

    async def parse(self, text: str) -> ParseResult:
        # Well under a millisecond: cheaper inline than a hop to a thread.
        return self.parse_sync(text)

    def parse_sync(self, text: str) -> ParseResult:
        # Only the start of a long text is read (see MAX_ANALYZED): a parse stays well under a
        # millisecond whatever its length. Entities after it are not found; the result keeps
        # the whole text.
        head = text[:MAX_ANALYZED]
        normalized = analyze(head, latin_to_cyrillic=self.model.latin_to_cyrillic)
        columns, weights = self.model.vectorizer.transform_one(normalized)
        probabilities = self._probabilities(columns, weights)
        entities = self.model.entities.extract(head)
        # Without a single known feature the model would answer from its priors alone.
        return self._result(text, probabilities, entities, understood=len(columns) > 0)

    def _probabilities(self, columns: IndexArray, weights: FloatArray) -> FloatArray:
        model = self.model
        logits = model.intercept + weights @ model.coef[columns]
        return softmax(logits / model.temperature)

    def _result(
        self,
        text: str,
        probabilities: FloatArray,
        entities: tuple[Entity, ...],
        *,
        understood: bool,
    ) -> ParseResult:
        in_scope = self._in_scope_indices
        order = in_scope[np.argsort(-probabilities[in_scope], kind="stable")[:RANKING_SIZE]]
        ranking = tuple(IntentScore(self._intents[i], float(probabilities[i])) for i in order)
        best = int(np.argmax(probabilities))
        top = ranking[0] if ranking else None
        if (
            not understood
            or top is None
            or not self._in_scope[best]
            or top.confidence < self.threshold
        ):
            # confidence that it is none of the known intents, for want of a better one
            confidence = 1.0 - (top.confidence if top else 0.0)
            return ParseResult(text, OUT_OF_SCOPE, confidence, ranking, entities)
        return ParseResult(text, top.name, top.confidence, ranking, entities)


def softmax(logits: npt.NDArray[np.floating]) -> FloatArray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities: FloatArray = (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
    return probabilities


def check_trainable(data: TrainingData) -> None:
    intents = [name for name, examples in data.intents.items() if examples]
    if len(intents) < 2:
        source = data.sources[0] if data.sources else "<data>"
        raise DataError([Problem(source, 0, "the classifier needs at least two intents")])
