"""The embedded model's quality may not fall below the figures recorded in
tests/data/nlu_floors.yml: the public CLINC150 benchmark (English, 150 intents) and two Russian
held-out sets the model never trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from nlu.data import load_training_data
from nlu.embedded import EmbeddedClassifier
from nlu.evaluate import train_test
from nlu.types import OUT_OF_SCOPE

ROOT = Path(__file__).resolve().parent.parent
FLOORS: dict[str, Any] = yaml.safe_load((ROOT / "tests" / "data" / "nlu_floors.yml").read_text())
THRESHOLD = float(FLOORS["threshold"])
CLINC = ROOT.parent / "shared" / "data" / "clinc150"


@pytest.mark.parametrize("name", ["ru_customers", "heldout"])
def test_russian_held_out_sets_keep_their_figures(name: str) -> None:
    floors = FLOORS[name]
    test = load_training_data(ROOT / "tests" / "data" / f"nlu_{name}.yml")
    report = train_test(load_training_data(ROOT / "nlu" / "data"), test, threshold=THRESHOLD)
    assert report.in_scope_accuracy is not None and report.oos_recall is not None
    got = {"in_scope": report.in_scope_accuracy * 100, "oos_recall": report.oos_recall * 100,
           "accuracy": report.accuracy * 100}
    assert {k: round(v, 1) for k, v in got.items() if v < floors[k]} == {}, got


@pytest.mark.skipif(not (CLINC / "clinc150_train.yml").exists(),
                    reason="../shared/data/clinc150 is not beside the repository")
def test_clinc150_keeps_its_figures() -> None:
    """One training; in-scope accuracy read both without a threshold (the best-scoring intent)
    and at the product's threshold, where out-of-scope recall is measured too."""
    train = load_training_data(CLINC / "clinc150_train.yml")
    test = list(load_training_data(CLINC / "clinc150_test.yml").examples)
    classifier = EmbeddedClassifier.train(train, threshold=THRESHOLD)
    truth = np.array([e.intent for e in test])
    results = [classifier.parse_sync(e.text) for e in test]
    best = np.array([r.ranking[0].name for r in results])
    decided = np.array([r.intent for r in results])
    in_scope = truth != OUT_OF_SCOPE
    got = {
        "in_scope_no_threshold": np.mean(best[in_scope] == truth[in_scope]) * 100,
        "in_scope_at_threshold": np.mean(decided[in_scope] == truth[in_scope]) * 100,
        "oos_recall_at_threshold": np.mean(decided[~in_scope] == OUT_OF_SCOPE) * 100,
    }
    floors = FLOORS["clinc150"]
    assert {k: round(float(v), 1) for k, v in got.items() if v < floors[k]} == {}, got
