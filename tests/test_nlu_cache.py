"""The model cache: a hit, a retrain when the data changes, and bad files ignored."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nlu.cache import cache_path, load_model, load_or_train
from nlu.data import TrainingData, load_training_data

SMALL = Path(__file__).parent / "data" / "nlu_small"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    shutil.copytree(SMALL, directory)
    return directory


def test_second_load_is_a_cache_hit(data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    data = load_training_data(data_dir)
    first, trained = load_or_train(data, cache, threshold=0.35)
    assert trained
    assert cache_path(cache, data.fingerprint()).exists()
    second, trained_again = load_or_train(load_training_data(data_dir), cache, threshold=0.5)
    assert not trained_again
    assert second.threshold == 0.5
    for text in ("где мой заказ", "ghbdtn", "заказ 12345678 в мск"):
        a, b = first.parse_sync(text), second.parse_sync(text)
        assert (a.intent, a.entities) == (b.intent, b.entities)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-6)
    assert [p.name for p in cache.iterdir()] == [cache_path(cache, data.fingerprint()).name]


def test_changed_data_retrains(data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_or_train(load_training_data(data_dir), cache, threshold=0.35)
    intents = data_dir / "intents.yml"
    intents.write_text(
        intents.read_text(encoding="utf-8").replace("- привет\n", "- привет\n    - салют\n"),
        encoding="utf-8",
    )
    changed = load_training_data(data_dir)
    classifier, trained = load_or_train(changed, cache, threshold=0.35)
    assert trained
    assert cache_path(cache, changed.fingerprint()).exists()
    assert classifier.parse_sync("салют").intent == "greet"


def test_progress_is_reported_while_training(data_dir: Path, tmp_path: Path) -> None:
    stages: list[str] = []
    load_or_train(
        load_training_data(data_dir),
        tmp_path,
        0.35,
        progress=lambda what, _d, _t: stages.append(what),
    )
    assert {"normalising", "calibrating", "fitting"} <= set(stages)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "format", "fingerprint", "shape"])
def test_bad_cache_files_are_logged_and_replaced(
    damage: str, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    data = load_training_data(data_dir)
    load_or_train(data, cache, threshold=0.35)
    path = cache_path(cache, data.fingerprint())
    _damage(path, damage)
    with caplog.at_level(logging.WARNING, logger="nlu.cache"):
        classifier, trained = load_or_train(data, cache, threshold=0.35)
    assert trained
    assert "ignoring model cache" in caplog.text
    assert classifier.parse_sync("где мой заказ").intent == "order_status"
    load_model(path, data.fingerprint())  # rewritten whole


def test_unwritable_cache_keeps_the_model_in_memory(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    with caplog.at_level(logging.WARNING, logger="nlu.cache"):
        classifier, trained = load_or_train(load_training_data(data_dir), not_a_directory, 0.35)
    assert trained
    assert "cannot write model cache" in caplog.text
    assert classifier.parse_sync("привет").intent == "greet"


def test_old_models_are_pruned(tmp_path: Path) -> None:
    for number in range(10):
        pairs = [(f"вопрос {number}", "a"), ("привет", "b"), ("пока", "c")]
        load_or_train(TrainingData.from_pairs(pairs), tmp_path, 0.35)
    assert len(list(tmp_path.glob("embedded-*.npz"))) == 8
    assert not list(tmp_path.glob(".tmp-*"))


def _damage(path: Path, how: str) -> None:
    if how == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:
        with np.load(path) as arrays:
            contents = {name: arrays[name] for name in arrays.files}
        header = json.loads(contents["header"].tobytes())
        if how == "format":
            header["format"] = 999
        elif how == "fingerprint":
            header["fingerprint"] = "0" * 64
        else:
            contents["coef"] = contents["coef"][:-1]
        contents["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        np.savez(path, **contents)
        assert zipfile.is_zipfile(path)
