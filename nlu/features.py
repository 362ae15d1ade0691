"""TF-IDF features computed by hand, so one code path serves training and the 1-text parse.

Two blocks, each L2-normalised on its own: word lemmas (1–2 grams) for meaning across word
forms, and character n-grams (2–5, inside word boundaries) of the normalised text for typos and
unknown words; and, where word vectors are installed, a third block: the strongest components
of the text's sentence vector (nlu/vectors.py), for meaning beyond the training data's words.
sklearn's vectorizers would do the same for a batch, but cost tens of microseconds of overhead
per single text; parsing one message is the hot path here.
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
from nlu.vectors import SentenceVectors

#: Part of every training data fingerprint: bump it when features, normalisation or training
#: change, so that cached models are retrained.
FEATURES_VERSION = "embedded-features-5"  # 5: sentence vectors

WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
CHAR_WEIGHT = 1.0  # measured: character n-grams weighted like words beat 0.7 or double weight
TOKEN_CACHE = 50_000  # words whose character columns are remembered (a few MB)

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int32]


def word_features(normalized: Normalized) -> list[str]:
    lemmas = normalized.lemmas
    features = list(lemmas)
    features.extend(f"{a} {b}" for a, b in pairwise(lemmas))
    features.extend(normalized.originals)
    return features


def char_features(normalized: Normalized) -> list[str]:
    features: list[str] = []
    for token in (*normalized.tokens, *normalized.originals):
        features.extend(token_char_features(token))
    return features


def token_char_features(token: str) -> list[str]:
    low, high = CHAR_NGRAMS
    padded = f" {token} "
    size = len(padded)
    return [padded[i : i + n] for n in range(low, min(high, size) + 1) for i in range(size - n + 1)]


class Vectorizer:
    """Vocabularies and idf weights of the n-gram blocks, and the word vectors if any.

    Column order: words, characters, then the vectors' dimensions (their idf is 1).
    """

    def __init__(
        self,
        words: Sequence[str],
        chars: Sequence[str],
        idf: FloatArray,
        char_weight: float,
        vectors: SentenceVectors | None = None,
    ) -> None:
        self.words = list(words)
        self.chars = list(chars)
        self._word_index = {f: i for i, f in enumerate(self.words)}
        self._char_index = {f: i + len(self.words) for i, f in enumerate(self.chars)}
        self.vectors = vectors
        self._vector_offset = len(self.words) + len(self.chars)
        dimensions = vectors.dimensions if vectors else 0
        self.idf = np.concatenate(
            (idf[: self._vector_offset], np.ones(dimensions))
        ).astype(np.float32)
        self.char_weight = char_weight
        self._token_cache: dict[str, IndexArray] = {}

    @property
    def size(self) -> int:
        return self._vector_offset + (self.vectors.dimensions if self.vectors else 0)

    @classmethod
    def fit(
        cls,
        texts: Sequence[Normalized],
        *,
        char_min_df: int = 1,
        char_weight: float = CHAR_WEIGHT,
        vectors: SentenceVectors | None = None,
    ) -> Vectorizer:
        word_df = _document_frequency(word_features(t) for t in texts)
        char_df = _document_frequency(char_features(t) for t in texts)
        words = sorted(word_df)
        chars = sorted(f for f, df in char_df.items() if df >= char_min_df)
        n = len(texts)
        # sklearn's smoothed idf: as if one extra document contained every feature
        dfs = [word_df[f] for f in words] + [char_df[f] for f in chars]
        idf = np.array([math.log((1 + n) / (1 + df)) + 1 for df in dfs], dtype=np.float32)
        return cls(words, chars, idf, char_weight, vectors)

    def transform_one(self, normalized: Normalized) -> tuple[IndexArray, FloatArray]:
        """Column indices and weights of one text (the parse path)."""
        word_idx, word_w = self._block(word_features(normalized), self._word_index, 1.0)
        char_idx, char_w = self._char_block(normalized)
        if self.vectors is None or not (word_idx.size or char_idx.size):
            # a text with no known n-gram stays featureless: the classifier then says it did
            # not understand, rather than guessing from a vector alone
            return np.concatenate((word_idx, char_idx)), np.concatenate((word_w, char_w))
        vector_idx, vector_w = self.vectors.top_components(normalized.text)
        return (
            np.concatenate((word_idx, char_idx, vector_idx + self._vector_offset)),
            np.concatenate((word_w, char_w, vector_w)),
        )

    def transform(self, texts: Iterable[Normalized]) -> sparse.csr_matrix:
        """The rows of many texts at once (training): the same values as `transform_one` row
        by row (a test holds them equal), built with whole-matrix operations, because ~18,000
        rows one at a time cost two seconds of small numpy calls."""
        texts = list(texts)
        words = self._counts(
            [[self._word_index[f] for f in word_features(t) if f in self._word_index]
             for t in texts]
        )
        none = np.zeros(0, np.int32)
        chars = self._counts([
            np.concatenate([self._token_columns(w) for w in (*t.tokens, *t.originals)] or [none])
            for t in texts
        ])
        ngrams = self._tf_idf(words, 1.0) + self._tf_idf(chars, self.char_weight)
        blocks = [ngrams]
        if self.vectors is not None:
            known = np.diff(ngrams.indptr) > 0
            blocks.append(self._vector_block([t.text for t in texts], known))
        return sparse.csr_matrix(sparse.hstack(blocks, format="csr"), dtype=np.float32)

    def _counts(self, columns: list[Sequence[int] | IndexArray]) -> sparse.csr_matrix:
        """Term counts: one row per text from its (repeated) column numbers."""
        lengths = np.fromiter((len(c) for c in columns), np.int64, len(columns))
        flat = np.concatenate(
            [np.asarray(c, np.int64) for c in columns] or [np.zeros(0, np.int64)]
        )
        rows = np.repeat(np.arange(len(columns)), lengths)
        counts = sparse.csr_matrix(
            (np.ones(len(flat), np.float32), (rows, flat)),
            shape=(len(columns), self._vector_offset),
        )
        counts.sum_duplicates()
        return counts

    def _tf_idf(self, counts: sparse.csr_matrix, weight: float) -> sparse.csr_matrix:
        """Sublinear tf times idf, each row L2-normalised to `weight` (as `_weights` does)."""
        block = counts.copy()
        block.data = ((1.0 + np.log(block.data)) * self.idf[block.indices]).astype(np.float32)
        norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
        scale = np.divide(weight, norms, out=np.zeros_like(norms), where=norms > 0)
        block.data *= np.repeat(scale, np.diff(block.indptr)).astype(np.float32)
        return block

    def _vector_block(self, texts: list[str], known: npt.NDArray[np.bool_]) -> sparse.csr_matrix:
        assert self.vectors is not None
        dense = self.vectors.embed(texts)
        dense[~known] = 0.0  # as in transform_one: no vector for a text without a known n-gram
        top = self.vectors.top_k
        columns = np.sort(np.argpartition(-np.abs(dense), top, axis=1)[:, :top], axis=1)
        values = np.take_along_axis(dense, columns, axis=1) * np.float32(self.vectors.weight)
        block = sparse.csr_matrix(
            (values.ravel(), columns.ravel(), np.arange(0, top * len(texts) + 1, top)),
            shape=(len(texts), self.vectors.dimensions),
        )
        block.eliminate_zeros()
        return block

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
        return columns, self._weights(columns, tf, weight)

    def _char_block(self, normalized: Normalized) -> tuple[IndexArray, FloatArray]:
        """The character block, from each token's columns remembered: customers reuse words,
        and slicing and hashing a word's ~40 n-grams was half of a parse."""
        parts = [self._token_columns(t) for t in (*normalized.tokens, *normalized.originals)]
        if not parts:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        columns, tf = np.unique(np.concatenate(parts), return_counts=True)
        if not columns.size:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        return columns.astype(np.int32), self._weights(columns, tf, self.char_weight)

    def _token_columns(self, token: str) -> IndexArray:
        cached = self._token_cache.get(token)
        if cached is None:
            index = self._char_index
            found = [index[f] for f in token_char_features(token) if f in index]
            cached = np.array(found, dtype=np.int32)
            if len(self._token_cache) >= TOKEN_CACHE:
                self._token_cache.clear()  # bounded: a flood of made-up words costs no memory
            self._token_cache[token] = cached
        return cached

    def _weights(
        self, columns: npt.NDArray[np.integer], tf: npt.NDArray[np.number], weight: float
    ) -> FloatArray:
        values: FloatArray = ((1.0 + np.log(tf)) * self.idf[columns]).astype(np.float32)
        values *= weight / float(np.sqrt(values @ values))
        return values


def _document_frequency(feature_lists: Iterable[list[str]]) -> Counter[str]:
    df: Counter[str] = Counter()
    for features in feature_lists:
        df.update(set(features))
    return df
