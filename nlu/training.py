"""Fitting the embedded model: normalise, vectorise, a linear SVM, a softmax temperature.

The classifier is a one-vs-rest linear SVM (nlu/svm.py). Logistic regression fitted to a loose
tolerance (as before, to keep training short) stopped far from its optimum on big data: 89.5%
in-scope on CLINC150, below a plain TF-IDF baseline; converged it took minutes. The SVM
converges in seconds and scored 93.4% there (94.1% with word vectors, nlu/vectors.py). Its
margins are not probabilities: a softmax with a temperature fitted on out-of-fold margins turns
them into confidences a threshold can be set on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from nlu.calibration import Calibration, start_calibration
from nlu.data import DataError, Example, TrainingData
from nlu.embedded import Model, Progress, check_trainable
from nlu.entities import EntityExtractor
from nlu.features import Vectorizer
from nlu.normalize import Normalized, analyze
from nlu.svm import fit_one_vs_rest
from nlu.validate import bad_regexes
from nlu.vectors import available, load

BIG_DATA = 5000  # examples from which rare character n-grams are dropped and one split calibrates

IntArray = npt.NDArray[np.int64]

log = logging.getLogger(__name__)


def fit_model(data: TrainingData, *, progress: Progress | None = None) -> Model:
    check_trainable(data)
    problems = bad_regexes(data)
    if problems:
        raise DataError(problems)
    entities = EntityExtractor.from_data(data)
    examples = list(data.examples)
    latin_to_cyrillic = data.language == "ru" if data.language \
        else _mostly_cyrillic(e.text for e in examples)
    report = progress or (lambda _what, _done, _total: None)
    normalized = _normalize(examples, latin_to_cyrillic, report)
    big = len(examples) >= BIG_DATA
    min_df = 2 if big else 1
    intents = tuple(sorted({e.intent for e in examples}))
    index = {intent: number for number, intent in enumerate(intents)}
    labels = np.array([index[e.intent] for e in examples])
    vectors_name = _vectors_name()
    vectors = load(vectors_name) if vectors_name else None
    report("calibrating", 0, 1)
    temperature = start_calibration(
        Calibration(normalized, labels, folds=1 if big else 3, char_min_df=min_df,
                    vectors_name=vectors_name),
        separate=big,
    )
    report("fitting", 0, 1)
    vectorizer = Vectorizer.fit(normalized, char_min_df=min_df, vectors=vectors)
    coef, intercept = fit_one_vs_rest(vectorizer.transform(normalized), labels, len(intents))
    report("fitting", 1, 1)
    return Model(
        vectorizer=vectorizer,
        coef=np.ascontiguousarray(coef.T, dtype=np.float32),
        intercept=intercept.astype(np.float32),
        intents=intents,
        temperature=temperature(),
        latin_to_cyrillic=latin_to_cyrillic,
        entities=entities,
    )


def _normalize(
    examples: Sequence[Example], latin_to_cyrillic: bool, report: Progress
) -> list[Normalized]:
    normalized = []
    for number, example in enumerate(examples, start=1):
        normalized.append(analyze(example.text, latin_to_cyrillic=latin_to_cyrillic))
        if number % 200 == 0 or number == len(examples):
            report("normalising", number, len(examples))
    return normalized


def _vectors_name() -> str | None:
    name = available()
    if name is None:
        log.info("no word vectors installed (pip install wordllama): n-gram features only")
    return name


def _mostly_cyrillic(texts: Iterable[str]) -> bool:
    """Latin words are read back as Russian only for a model trained on Russian."""
    cyrillic = latin = 0
    for text in texts:
        for char in text.lower():
            if "а" <= char <= "я" or char == "ё":
                cyrillic += 1
            elif "a" <= char <= "z":
                latin += 1
    return cyrillic > latin
