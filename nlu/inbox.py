"""Grouping messages the bot did not understand by similarity, for the trainers' inbox.

The same normalisation and features as the classifier (lemmas for meaning across word forms,
character n-grams for typos), weighted by term frequency only: fitted on a handful of messages,
inverse document frequency would punish exactly the words a theme shares. Then leader clustering:
each message joins the first group whose first message is similar enough, else starts one.
Cheap (one sparse product) and stable for a given order, which keeps group numbers meaningful
between a listing and an `assign` made right after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nlu.features import Vectorizer
from nlu.normalize import analyze

#: Cosine similarity at which two messages count as the same theme.
SIMILARITY = 0.3
MAX_TEXTS = 10_000  # beyond this the similarity matrix gets too large to build at once


def group_texts(texts: Sequence[str], similarity: float = SIMILARITY) -> list[list[int]]:
    """Indices of `texts` in groups, largest group first (ties: earliest first)."""
    if len(texts) > MAX_TEXTS:
        raise ValueError(f"at most {MAX_TEXTS} texts can be grouped at once")
    if not texts:
        return []
    normalized = [analyze(text) for text in texts]
    fitted = Vectorizer.fit(normalized)
    plain = Vectorizer(fitted.words, fitted.chars, np.ones(fitted.size, np.float32),
                       fitted.char_weight)
    matrix = plain.transform(normalized)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    cosine = np.asarray((matrix @ matrix.T).todense()) / np.outer(norms, norms)
    leaders: list[int] = []
    groups: list[list[int]] = []
    for index in range(len(texts)):
        joined = next((g for g, leader in enumerate(leaders)
                       if cosine[index, leader] >= similarity), None)
        if joined is None:
            leaders.append(index)
            groups.append([index])
        else:
            groups[joined].append(index)
    return sorted(groups, key=lambda group: (-len(group), group[0]))
