"""Trained models on disk, keyed by the training data fingerprint.

One `.npz` file per model: numpy arrays plus a JSON header (format version, fingerprint,
vocabularies, intents, entity tables). No pickle: `np.load(allow_pickle=False)` cannot run code,
so a tampered or foreign file is at worst rejected. Files are written to a temporary name and
renamed, so a crash never leaves half a model under the real name.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nlu.data import TrainingData
from nlu.embedded import EmbeddedClassifier, Model, Progress
from nlu.entities import EntityExtractor
from nlu.features import FloatArray, Vectorizer
from nlu.vectors import load as load_vectors

log = logging.getLogger(__name__)

FORMAT = 2  # 2: the word vectors a model was trained with
PREFIX = "embedded-"
KEEP = 8  # models of other data sets (tests, evaluation splits) kept next to the current one


class CacheError(Exception):
    """A cache file that this version of the code cannot use."""


def cache_path(cache_dir: Path, fingerprint: str) -> Path:
    return cache_dir / f"{PREFIX}{fingerprint[:32]}.npz"


def load_or_train(
    data: TrainingData,
    cache_dir: Path,
    threshold: float,
    progress: Progress | None = None,
) -> tuple[EmbeddedClassifier, bool]:
    """The cached model for this data, or a freshly trained (and cached) one; bool = trained."""
    fingerprint = data.fingerprint()
    path = cache_path(cache_dir, fingerprint)
    if path.exists():
        try:
            return EmbeddedClassifier(load_model(path, fingerprint), threshold), False
        except Exception as exc:  # any unreadable cache (truncated zip, old header) means retrain
            log.warning("ignoring model cache %s (%s); retraining", path, exc)
    classifier = EmbeddedClassifier.train(data, threshold=threshold, progress=progress)
    try:
        save_model(classifier.model, path, fingerprint)
        _prune(cache_dir, keep=path)
    except OSError as exc:
        log.warning("cannot write model cache %s (%s); the model stays in memory", path, exc)
    return classifier, True


def save_model(model: Model, path: Path, fingerprint: str) -> None:
    header = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "intents": list(model.intents),
        "words": model.vectorizer.words,
        "chars": model.vectorizer.chars,
        "char_weight": model.vectorizer.char_weight,
        "vectors": model.vectorizer.vectors.name if model.vectorizer.vectors else None,
        "temperature": model.temperature,
        "latin_to_cyrillic": model.latin_to_cyrillic,
        "entities": model.entities.to_json(),
    }
    blob = np.frombuffer(json.dumps(header, ensure_ascii=False).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(
                file,
                header=blob,
                coef=model.coef,
                intercept=model.intercept,
                idf=model.vectorizer.idf,
            )
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_model(path: Path, fingerprint: str) -> Model:
    header, coef, intercept, idf = _read(path)
    if header.get("format") != FORMAT:
        raise CacheError(f"format {header.get('format')!r}, expected {FORMAT}")
    if header.get("fingerprint") != fingerprint:
        raise CacheError("made from other training data")
    vectors = None
    if header.get("vectors"):
        try:
            vectors = load_vectors(str(header["vectors"]))
        except LookupError as exc:
            raise CacheError(str(exc)) from exc
    vectorizer = Vectorizer(
        header["words"], header["chars"], idf, float(header["char_weight"]), vectors
    )
    intents = tuple(str(i) for i in header["intents"])
    if coef.shape != (vectorizer.size, len(intents)) or intercept.shape != (len(intents),):
        raise CacheError("array shapes do not match the header")
    if idf.shape != (vectorizer.size,):
        raise CacheError("idf does not match the vocabulary")
    return Model(
        vectorizer=vectorizer,
        coef=coef,
        intercept=intercept,
        intents=intents,
        temperature=float(header["temperature"]),
        latin_to_cyrillic=bool(header["latin_to_cyrillic"]),
        entities=EntityExtractor.from_json(header["entities"]),
    )


def _read(path: Path) -> tuple[dict[str, Any], FloatArray, FloatArray, FloatArray]:
    with path.open("rb") as file:
        # checked first: np.load would read a bare .npy (or try a pickle) from other files
        if not zipfile.is_zipfile(file):
            raise CacheError("not an .npz archive")
        file.seek(0)
        with np.load(file, allow_pickle=False) as arrays:
            header = json.loads(arrays["header"].tobytes().decode())
            if not isinstance(header, dict):
                raise CacheError("header is not an object")
            return (
                header,
                arrays["coef"].astype(np.float32),
                arrays["intercept"].astype(np.float32),
                arrays["idf"].astype(np.float32),
            )


def _prune(cache_dir: Path, keep: Path) -> None:
    models = sorted(cache_dir.glob(f"{PREFIX}*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [m for m in models if m != keep][KEEP - 1 :]:
        old.unlink(missing_ok=True)
