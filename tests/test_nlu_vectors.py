"""Word vectors: used when installed, a clean fallback when not, and a calibration process that
changes nothing but the time."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from nlu import svm, vectors
from nlu.cache import load_or_train
from nlu.calibration import Calibration, start_calibration
from nlu.data import load_training_data
from nlu.features import Vectorizer
from nlu.normalize import analyze
from nlu.training import fit_model

SMALL = Path(__file__).parent / "data" / "nlu_small"


def test_the_installed_vectors_put_paraphrases_near_each_other() -> None:
    name = vectors.available()
    assert name is not None, "wordllama is a dependency of the project"
    model = vectors.load(name)
    a, b, c = model.embed(["i lost my card", "my card is missing", "what is the weather"])
    assert float(a @ b) > float(a @ c) + 0.1
    columns, _values = model.top_components("i lost my card")
    assert len(columns) == vectors.TOP_K and list(columns) == sorted(columns)
    assert model.top_components("") == (pytest.approx([]), pytest.approx([]))


def test_a_model_trains_on_vectors_and_parses_with_them() -> None:
    model = fit_model(load_training_data(SMALL))
    assert model.vectorizer.vectors is not None
    columns, _ = model.vectorizer.transform_one(analyze("где мой заказ", latin_to_cyrillic=True))
    assert columns.max() >= model.vectorizer.size - model.vectorizer.vectors.dimensions


def test_without_vectors_the_model_trains_on_ngrams_and_the_cache_retrains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    with_vectors, _ = load_or_train(load_training_data(SMALL), cache, threshold=0.35)
    assert with_vectors.model.vectorizer.vectors is not None
    monkeypatch.setattr(vectors, "available", lambda: None)
    monkeypatch.setattr("nlu.data.vectors_available", lambda: None)
    monkeypatch.setattr("nlu.training.available", lambda: None)
    caplog.set_level(logging.INFO, logger="nlu.training")
    without, trained = load_or_train(load_training_data(SMALL), cache, threshold=0.35)
    assert trained, "another fingerprint: the model with vectors is not reused"
    assert without.model.vectorizer.vectors is None
    assert "no word vectors installed" in caplog.text
    assert without.parse_sync("где мой заказ").intent == "order_status"


def test_a_cached_model_whose_vectors_are_gone_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="not installed"):
        vectors.load("wordllama-0.0-gone-256")


def test_calibrating_in_a_second_process_gives_the_same_temperature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = load_training_data(SMALL)
    examples = list(data.examples)
    texts = [analyze(e.text, latin_to_cyrillic=True) for e in examples]
    intents = sorted({e.intent for e in examples})
    labels = np.array([intents.index(e.intent) for e in examples])
    calibration = Calibration(texts, labels, 1, 1, vectors.available())
    inline = start_calibration(calibration, separate=False)()
    assert start_calibration(calibration, separate=True)() == inline
    assert "calibration process failed" not in caplog.text


def test_a_failed_calibration_process_is_logged_and_done_here(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = load_training_data(SMALL)
    texts = [analyze(e.text, latin_to_cyrillic=True) for e in data.examples]
    intents = sorted({e.intent for e in data.examples})
    labels = np.array([intents.index(e.intent) for e in data.examples])
    calibration = Calibration(texts, labels, 1, 1, None)
    python = sys.executable
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert start_calibration(calibration, separate=True)() == pytest.approx(
        start_calibration(calibration, separate=False)()
    )
    assert "cannot start a calibration process" in caplog.text
    monkeypatch.setattr(sys, "executable", python)
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.setattr("nlu.calibration._TIMEOUT", 0.001)
    caplog.clear()
    start_calibration(calibration, separate=True)()
    assert "the calibration process failed" in caplog.text


@pytest.mark.parametrize("with_vectors", [False, True])
def test_training_rows_are_the_rows_a_parse_computes(with_vectors: bool) -> None:
    data = load_training_data(SMALL)
    texts = [analyze(e.text, latin_to_cyrillic=True) for e in data.examples]
    vectorizer = Vectorizer.fit(
        texts, vectors=vectors.load(vectors.available() or "") if with_vectors else None
    )
    fresh = ["", "!!!", "ыыы qqq", "где заказ 1234567 ghbdtn", "доставка в мск сколько"]
    texts += [analyze(t, latin_to_cyrillic=True) for t in fresh]
    batch = vectorizer.transform(texts).toarray()
    for row, text in enumerate(texts):
        columns, weights = vectorizer.transform_one(text)
        one = np.zeros(vectorizer.size, np.float32)
        one[columns] = weights
        assert batch[row] == pytest.approx(one, abs=1e-6), text


def test_the_hard_negative_svm_is_sklearns_one_vs_rest_svm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = load_training_data(SMALL)
    texts = [analyze(e.text, latin_to_cyrillic=True) for e in data.examples]
    intents = sorted({e.intent for e in data.examples})
    labels = np.array([intents.index(e.intent) for e in data.examples])
    features = Vectorizer.fit(texts).transform(texts)
    reference = LinearSVC(C=0.5, tol=1e-5, random_state=1).fit(features, labels)
    for first in (3, svm.FIRST_NEGATIVES):  # 3: nearly everything comes in through the check
        monkeypatch.setattr(svm, "FIRST_NEGATIVES", first)
        coef, intercept = svm.fit_one_vs_rest(features, labels, len(intents), c=0.5, seed=1)
        assert np.abs(coef - reference.coef_).max() < 2e-3
        assert np.abs(intercept - reference.intercept_).max() < 2e-3
