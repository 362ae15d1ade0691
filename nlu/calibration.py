"""The softmax temperature that turns the SVM's margins into confidences, fitted on held-out
examples, in a second process for big data.

A model scores its own training examples overconfidently, so the temperature is fitted on
out-of-fold logits: k folds for small data, one 80/20 split for big data. Each fold gets its own
vocabulary, as in production: a held-out text's unseen n-grams must not count in the
normalisation of its vector, or the fitted temperature comes out too low.

The 80/20 fit is a second training on most of the data: on CLINC150 it took 15 of 34 seconds.
In a process of its own it runs beside the final fit, on the second core. Not in a thread:
liblinear seeds C's global rand(), so two fits in threads would disturb each other's shuffling
and the model would change between two trainings. Not through `multiprocessing` either: a
spawned worker imports the parent's main module again, and a bot's (aiogram and the rest) takes
longer to import than the fit itself; `python -m nlu.calibration` imports only the NLU. The
arguments go through a private temporary file (pickled: written and read by this code alone),
the temperature comes back as text. Any failure of the process means calibrating in this one.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nlu.embedded import softmax
from nlu.features import Vectorizer
from nlu.normalize import Normalized
from nlu.svm import SEED, fit_one_vs_rest
from nlu.vectors import load

log = logging.getLogger(__name__)

_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(5.0), 60))
_TIMEOUT = 600.0  # seconds: far beyond any training this product does, short of forever

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Calibration:
    """What the temperature is fitted from (picklable: it goes to the second process)."""

    texts: Sequence[Normalized]
    labels: IntArray
    folds: int  # 1 means one 80/20 split
    char_min_df: int
    vectors_name: str | None


def start_calibration(calibration: Calibration, *, separate: bool) -> Callable[[], float]:
    """Start fitting the temperature; the returned function waits for it.

    With `separate`, and a second core, the fit runs in another process meanwhile; small data
    calibrates in a fraction of a second, where starting a process would cost more than it saves.
    """
    if not separate or (os.cpu_count() or 1) < 2:
        return lambda: fit_temperature(calibration)
    try:
        handle, name = tempfile.mkstemp(prefix="supportbot-calibration-", suffix=".pickle")
        with os.fdopen(handle, "wb") as file:
            pickle.dump(calibration, file, protocol=pickle.HIGHEST_PROTOCOL)
        # the package's own folder first: the child imports this very code, installed or not
        root = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
        process = subprocess.Popen(
            [sys.executable, "-m", "nlu.calibration", name],
            env={**os.environ, "PYTHONPATH": path},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as exc:
        log.warning("cannot start a calibration process (%s): calibrating in this one", exc)
        return lambda: fit_temperature(calibration)

    def result() -> float:
        try:
            out, err = process.communicate(timeout=_TIMEOUT)
            if process.returncode == 0:
                return float(out)
            problem = f"exit code {process.returncode}: {err.strip()[-500:]}"
        except (subprocess.TimeoutExpired, ValueError) as exc:
            process.kill()
            process.communicate()
            problem = str(exc)
        finally:
            Path(name).unlink(missing_ok=True)
        log.warning("the calibration process failed (%s): calibrating in this one", problem)
        return fit_temperature(calibration)

    return result


def fit_temperature(calibration: Calibration) -> float:
    """The softmax temperature that best predicts held-out examples (lowest log-loss)."""
    texts, labels = calibration.texts, calibration.labels
    vectors = load(calibration.vectors_name) if calibration.vectors_name else None
    classes = int(labels.max()) + 1
    logits, truth = [], []
    for train, test in _splits(labels, calibration.folds):
        if len(np.unique(labels[train])) < 2 or len(test) == 0:
            continue
        vectorizer = Vectorizer.fit(
            [texts[i] for i in train], char_min_df=calibration.char_min_df, vectors=vectors
        )
        coef, intercept = fit_one_vs_rest(
            vectorizer.transform(texts[i] for i in train), labels[train], classes
        )
        present = np.isin(np.arange(classes), labels[train])
        known = test[present[labels[test]]]
        scores = vectorizer.transform(texts[i] for i in known) @ coef.T + intercept
        scores[:, ~present] = -1e9  # an intent this fold never saw cannot be predicted
        logits.append(scores)
        truth.append(labels[known])
    if not logits:
        return 1.0
    all_logits, all_truth = np.concatenate(logits), np.concatenate(truth)
    losses = [
        -np.log(softmax(all_logits / t)[np.arange(len(all_truth)), all_truth] + 1e-12).mean()
        for t in _TEMPERATURES
    ]
    return float(_TEMPERATURES[int(np.argmin(losses))])


def _splits(labels: IntArray, folds: int) -> list[tuple[IntArray, IntArray]]:
    """Stratified folds by dealing each intent's shuffled examples round-robin."""
    rng = np.random.default_rng(SEED)
    parts = 5 if folds == 1 else folds  # one fold of five: the 80/20 split
    assignment = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        assignment[members] = np.arange(len(members)) % parts
    chosen = range(1) if folds == 1 else range(folds)
    everything = np.arange(len(labels))
    return [(everything[assignment != k], everything[assignment == k]) for k in chosen]


def _main(path: str) -> None:
    # Run as a script this module is `__main__`; the pickle names the imported module's class.
    from nlu import calibration as module

    with open(path, "rb") as file:
        calibration = pickle.load(file)  # written by start_calibration, in a private file
    if not isinstance(calibration, module.Calibration):
        raise SystemExit(f"{path}: not a calibration")
    print(repr(module.fit_temperature(calibration)))  # repr: the float comes back to the bit


if __name__ == "__main__":
    _main(sys.argv[1])
