"""NLU benchmark: training time, parse latency, accuracy on the demo data and held-out phrasings.

    python -m bench.nlu [--data DIR] [--heldout FILE] [--threshold T] [--clinc]

Parse latency is measured twice after a warm-up: on texts seen before (the steady state: word
analyses are cached) and on texts with fresh random typos (every typo is a cache miss in the
morphological analyser, the slow case). `--clinc` adds the public CLINC150 benchmark (about a
minute: 18,000 training examples, 150 intents).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

import nlu
from bench.chaos import print_rows
from bots.settings import Settings
from nlu.data import TrainingData, load_training_data
from nlu.embedded import EmbeddedClassifier
from nlu.evaluate import EvaluationReport, cross_validate, train_test
from nlu.types import OUT_OF_SCOPE

REPO = Path(__file__).resolve().parent.parent
DEMO_DATA = Path(nlu.__file__).resolve().parent / "data"
HELDOUT = REPO / "tests" / "data" / "nlu_heldout.yml"
# Written by someone who saw only the intents' descriptions, never the training examples.
RU_CUSTOMERS = REPO / "tests" / "data" / "nlu_ru_customers.yml"
BASELINE_C = 10.0
CLINC_DIR = REPO.parent / "shared" / "data" / "clinc150"  # ../shared beside the repository
DEFAULT_THRESHOLD = float(Settings.model_fields["nlu_threshold"].default)
PARSES = 4000
TRAIN_RUNS = 3


def main(argv: Sequence[str] | None = None) -> None:
    args = _arguments(argv)
    data = load_training_data(args.data)
    print(f"data: {args.data} ({len(data.intents)} intents, {len(data)} examples)")
    classifier = _bench_training(data, args.threshold)
    _bench_parsing(classifier, [e.text for e in data.examples])
    _print_report("cross-validation (5 folds)", cross_validate(data, threshold=args.threshold))
    if args.heldout.exists():
        test = load_training_data(args.heldout)
        report = train_test(data, test, threshold=args.threshold)
        _print_report(f"held-out {args.heldout.name} (trained on all of {args.data})", report)
    else:
        print(f"held-out: {args.heldout} not found, skipped")
    clinc = _bench_clinc(args.clinc_dir) if args.clinc else None
    _print_comparison(data, args, args.threshold, clinc)


def _print_comparison(data: TrainingData, args: argparse.Namespace, threshold: float,
                      clinc: Trained | None) -> None:
    """The model beside a plain baseline on every test set at hand, in one table."""
    sets = [_trained(path.name, data, load_training_data(path), threshold)
            for path in (args.heldout, RU_CUSTOMERS) if path.exists()]
    if clinc is not None:  # trained once, for the lines above and this table
        sets.append(clinc)
    rows = []
    for trained in sets:
        rows.append(_embedded_row(trained, threshold))
        rows.append(_baseline_row(trained.name, trained.train, trained.test))
    print_rows(f"the embedded model beside a plain baseline (TF-IDF word 1-2 + char 2-5 grams, "
               f"LogisticRegression C={BASELINE_C:g}; no calibrated threshold), in percent, "
               f"threshold {threshold:g}:", rows,
               ["test set", "model", "in-scope, best intent", "in-scope at threshold",
                "out-of-scope recall at threshold", "training", "parse p50 / p99"])


@dataclass(frozen=True)
class Trained:
    """A test set and the embedded model trained for it, with its training time."""

    name: str
    train: TrainingData
    test: TrainingData
    classifier: EmbeddedClassifier
    seconds: float


def _trained(name: str, train: TrainingData, test: TrainingData, threshold: float) -> Trained:
    start = time.perf_counter()
    classifier = EmbeddedClassifier.train(train, threshold=threshold)
    return Trained(name, train, test, classifier, time.perf_counter() - start)


def _embedded_row(trained: Trained, threshold: float) -> list[str]:
    classifier, name, seconds = trained.classifier, trained.name, trained.seconds
    classifier.threshold = threshold  # (CLINC150's was trained without one)
    examples = list(trained.test.examples)
    results = [classifier.parse_sync(e.text) for e in examples]
    truth = np.array([e.intent for e in examples])
    best = np.array([r.ranking[0].name if r.ranking else OUT_OF_SCOPE for r in results])
    decided = np.array([r.intent for r in results])
    p50, p99 = _latencies(classifier, [e.text for e in examples])
    inside = truth != OUT_OF_SCOPE
    return [name, "embedded", _percent(best[inside] == truth[inside]),
            _percent(decided[inside] == truth[inside]),
            _percent(decided[~inside] == OUT_OF_SCOPE), f"{seconds:.1f} s",
            f"{p50:.2f} / {p99:.2f} ms"]


def _baseline_row(name: str, train: TrainingData, test: TrainingData) -> list[str]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [e.text for e in train.examples]
    labels = np.array([e.intent for e in train.examples])
    start = time.perf_counter()
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    features = sparse.hstack([words.fit_transform(texts), chars.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=BASELINE_C, max_iter=1000).fit(features, labels)
    seconds = time.perf_counter() - start
    examples = list(test.examples)
    tested = [e.text for e in examples]
    scores = model.decision_function(
        sparse.hstack([words.transform(tested), chars.transform(tested)]).tocsr())
    scores[:, model.classes_ == OUT_OF_SCOPE] = -np.inf  # the best real intent
    best = model.classes_[scores.argmax(axis=1)]
    truth = np.array([e.intent for e in examples])
    inside = truth != OUT_OF_SCOPE
    return [name, "plain TF-IDF + LR", _percent(best[inside] == truth[inside]), "—", "—",
            f"{seconds:.1f} s", "—"]


def _percent(hits: npt.NDArray[np.bool_]) -> str:
    return f"{hits.mean() * 100:.1f}" if hits.size else "—"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.nlu", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEMO_DATA, help="training data directory")
    parser.add_argument("--heldout", type=Path, default=HELDOUT, help="held-out test file")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--clinc", action="store_true", help="also run CLINC150 (slow)")
    parser.add_argument("--clinc-dir", type=Path, default=CLINC_DIR)
    return parser.parse_args(argv)


def _bench_training(data: TrainingData, threshold: float) -> EmbeddedClassifier:
    import sklearn  # noqa: F401  (imported once up front so that it is not timed as training)

    seconds = []
    for _ in range(TRAIN_RUNS):
        start = time.perf_counter()
        classifier = EmbeddedClassifier.train(data, threshold=threshold)
        seconds.append(time.perf_counter() - start)
    print(f"train: median {statistics.median(seconds):.2f} s over {TRAIN_RUNS} runs")
    return classifier


def _bench_parsing(classifier: EmbeddedClassifier, texts: list[str]) -> None:
    rng = random.Random(1)
    for text in texts:
        classifier.parse_sync(text)
    seen = [texts[rng.randrange(len(texts))] for _ in range(PARSES)]
    fresh = [_typo(texts[rng.randrange(len(texts))], rng) for _ in range(PARSES)]
    for label, batch in (("seen texts", seen), ("fresh typos", fresh)):
        p50, p99 = _latencies(classifier, batch)
        print(f"parse ({label}, {PARSES}): p50 {p50:.3f} ms, p99 {p99:.3f} ms")


def _latencies(classifier: EmbeddedClassifier, texts: list[str]) -> tuple[float, float]:
    timings = np.empty(len(texts))
    for index, text in enumerate(texts):
        start = time.perf_counter()
        classifier.parse_sync(text)
        timings[index] = time.perf_counter() - start
    return float(np.percentile(timings, 50) * 1e3), float(np.percentile(timings, 99) * 1e3)


def _typo(text: str, rng: random.Random) -> str:
    """Drop, double or swap one letter of the text: what thumbs do on a phone."""
    if len(text) < 4:
        return text + text[-1]
    i = rng.randrange(1, len(text) - 2)
    match rng.randrange(3):
        case 0:
            return text[:i] + text[i + 1 :]
        case 1:
            return text[:i] + text[i] + text[i:]
        case _:
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _print_report(title: str, report: EvaluationReport) -> None:
    line = (
        f"{title}: accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}"
        f" over {report.items} items"
    )
    if report.in_scope_accuracy is not None:
        line += f", in-scope accuracy {report.in_scope_accuracy:.3f}"
    if report.oos_recall is not None:
        line += f", out-of-scope recall {report.oos_recall:.3f}"
    print(line)


def _bench_clinc(directory: Path) -> Trained:
    trained = _trained("CLINC150", load_training_data(directory / "clinc150_train.yml"),
                       load_training_data(directory / "clinc150_test.yml"), 0.0)
    classifier, test = trained.classifier, trained.test
    print(f"CLINC150: {len(trained.train)} training examples, trained in "
          f"{trained.seconds:.1f} s")
    # parsed once without a threshold; each threshold below is applied to the top confidence
    results = []
    for example in test.examples:
        top = classifier.parse_sync(example.text).top_guess
        results.append((example.intent, top.name if top else "", top.confidence if top else 0.0))
    texts = [e.text for e in test.examples]
    p50, p99 = _latencies(classifier, texts)
    print(f"CLINC150 parse ({len(texts)} test texts): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    for threshold in (0.0, 0.35, 0.5, 0.7):
        in_scope = [g == t and c >= threshold for t, g, c in results if t != OUT_OF_SCOPE]
        oos = [c < threshold for t, _, c in results if t == OUT_OF_SCOPE]
        print(
            f"CLINC150 threshold {threshold:.2f}: in-scope accuracy {np.mean(in_scope):.3f}"
            f" ({len(in_scope)}), out-of-scope recall {np.mean(oos):.3f} ({len(oos)})"
        )
    return trained


if __name__ == "__main__":
    main()
