"""Grouping messages the bot did not understand by similarity, for the trainers' inbox.

The same normalisation and features as the classifier (lemmas for meaning across word forms,
character n-grams for typos), weighted by term frequency only: fitted on a handful of messages,
inverse document frequency would punish exactly the words a theme shares. Then leader clustering:
each message joins the first group whose first message is similar enough, else starts one. Each
message is compared with the group leaders only, a block of messages at a time, so memory is
bounded by the number of groups rather than growing with the square of the messages; the
result is stable for a given order, which keeps group numbers meaningful between a listing and
an `assign` made right after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from nlu.features import Vectorizer
from nlu.normalize import Normalized, analyze

#: Cosine similarity at which two messages count as the same theme.
SIMILARITY = 0.3
MAX_TEXTS = 10_000  # one call's bound: normalising 10,000 messages takes a few seconds
#: Messages compared with the leaders at once: memory stays at BLOCK × leaders similarities
#: (20 MB for 10,000 leaders), not the n × n matrix (800 MB for 10,000 messages).
BLOCK = 256


def group_texts(texts: Sequence[str], similarity: float = SIMILARITY) -> list[list[int]]:
    """Indices of `texts` in groups, largest group first (ties: earliest first)."""
    if len(texts) > MAX_TEXTS:
        raise ValueError(f"at most {MAX_TEXTS} texts can be grouped at once")
    if not texts:
        return []
    rows = _unit_rows([analyze(text) for text in texts])
    leaders: list[int] = []
    groups: list[list[int]] = []
    leader_rows = rows[:0]
    for start in range(0, len(texts), BLOCK):
        block = rows[start:start + BLOCK]
        # Each message against the leaders so far, then against the block's own new leaders
        # (they come after the earlier ones: a message joins the first similar group).
        earlier = (block @ leader_rows.T).toarray()
        inside = (block @ block.T).toarray()
        new: list[int] = []  # block positions of the leaders this block adds
        for offset in range(block.shape[0]):
            similar = np.flatnonzero(earlier[offset] >= similarity)
            if similar.size:
                groups[int(similar[0])].append(start + offset)
                continue
            joined = next((g for g, at in enumerate(new) if inside[offset, at] >= similarity),
                          None)
            if joined is None:
                new.append(offset)
                leaders.append(start + offset)
                groups.append([start + offset])
            else:
                groups[len(leaders) - len(new) + joined].append(start + offset)
        leader_rows = sparse.vstack([leader_rows, block[new]], format="csr")
    return sorted(groups, key=lambda group: (-len(group), group[0]))


def _unit_rows(normalized: list[Normalized]) -> sparse.csr_matrix:
    fitted = Vectorizer.fit(normalized)
    plain = Vectorizer(fitted.words, fitted.chars, np.ones(fitted.size, np.float32),
                       fitted.char_weight)
    matrix = plain.transform(normalized)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)
