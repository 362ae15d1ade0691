"""TF-IDF features computed by hand, so one code path serves training and the 1-text parse.

Two blocks, each L2-normalised on its own: word lemmas (1–2 grams) for meaning across word
forms, and character n-grams (2–5, inside word boundaries) of the normalised text for typos and
unknown words. sklearn's vectorizers would do the same for a batch, but cost tens of
microseconds of overhead per single text; parsing one message is the hot path here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

import numpy as np
import numpy.typing as npt
from scipy import sparse

from nlu.normalize import Normalized

#: Part of every training data fingerprint: bump it when features, normalisation or training
#: change, so that cached models are retrained.
FEATURES_VERSION = "embedded-features-4"  # 4: a linear SVM instead of logistic regression

WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int32]


def word_features(normalized: Normalized) -> list[str]:
    lemmas = normalized.lemmas
    features = list(lemmas)
    features.extend(f"{a} {b}" for a, b in pairwise(lemmas))
    features.extend(normalized.originals)
    return features


def char_features(normalized: Normalized) -> list[str]:
    low, high = CHAR_NGRAMS
    features: list[str] = []
    for token in (*normalized.tokens, *normalized.originals):
        padded = f" {token} "
        size = len(padded)
        for n in range(low, min(high, size) + 1):
            features.extend(padded[i : i + n] for i in range(size - n + 1))
    return features


class Vectorizer:
    """Vocabularies and idf weights of both blocks; column order: words, then characters."""

    def __init__(
        self,
        words: Sequence[str],
        chars: Sequence[str],
        idf: FloatArray,
        char_weight: float,
    ) -> None:
        self.words = list(words)
        self.chars = list(chars)
        self._word_index = {f: i for i, f in enumerate(self.words)}
        self._char_index = {f: i + len(self.words) for i, f in enumerate(self.chars)}
        self.idf = idf.astype(np.float32)
        self.char_weight = char_weight

    @property
    def size(self) -> int:
        return len(self.words) + len(self.chars)

    @classmethod
    def fit(
        cls, texts: Sequence[Normalized], *, char_min_df: int = 1, char_weight: float = 1.0
    ) -> Vectorizer:
        word_df = _document_frequency(word_features(t) for t in texts)
        char_df = _document_frequency(char_features(t) for t in texts)
        words = sorted(word_df)
        chars = sorted(f for f, df in char_df.items() if df >= char_min_df)
        n = len(texts)
        # sklearn's smoothed idf: as if one extra document contained every feature
        dfs = [word_df[f] for f in words] + [char_df[f] for f in chars]
        idf = np.array([math.log((1 + n) / (1 + df)) + 1 for df in dfs], dtype=np.float32)
        return cls(words, chars, idf, char_weight)

    def transform_one(self, normalized: Normalized) -> tuple[IndexArray, FloatArray]:
        """Column indices and weights of one text (the parse path)."""
        word_idx, word_w = self._block(word_features(normalized), self._word_index, 1.0)
        char_idx, char_w = self._block(
            char_features(normalized), self._char_index, self.char_weight
        )
        return np.concatenate((word_idx, char_idx)), np.concatenate((word_w, char_w))

    def transform(self, texts: Iterable[Normalized]) -> sparse.csr_matrix:
        indptr = [0]
        indices: list[IndexArray] = []
        values: list[FloatArray] = []
        for text in texts:
            idx, weights = self.transform_one(text)
            indices.append(idx)
            values.append(weights)
            indptr.append(indptr[-1] + len(idx))
        return sparse.csr_matrix(
            (
                np.concatenate(values) if values else np.zeros(0, np.float32),
                np.concatenate(indices) if indices else np.zeros(0, np.int32),
                np.array(indptr),
            ),
            shape=(len(indptr) - 1, self.size),
            dtype=np.float32,
        )

    def _block(
        self, features: list[str], index: dict[str, int], weight: float
    ) -> tuple[IndexArray, FloatArray]:
        counts: dict[int, int] = {}
        for feature in features:
            column = index.get(feature)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        columns = np.fromiter(counts.keys(), np.int32, len(counts))
        tf = np.fromiter(counts.values(), np.float32, len(counts))
        values: FloatArray = ((1.0 + np.log(tf)) * self.idf[columns]).astype(np.float32)
        values *= weight / float(np.sqrt(values @ values))
        return columns, values


def _document_frequency(feature_lists: Iterable[list[str]]) -> Counter[str]:
    df: Counter[str] = Counter()
    for features in feature_lists:
        df.update(set(features))
    return df
