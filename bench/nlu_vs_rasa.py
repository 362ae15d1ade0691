"""The embedded classifier against Rasa's DIET on the same train/test split, side by side.

    python -m bench.nlu_vs_rasa [--data PATH ...] [--test FILE ...] [--epochs N] [--threshold T]

Any Rasa-format NLU data (the demo data by default). Without `--test` a stratified fifth of
every intent is held out; with it, all of `--data` trains and `--test` tests. Both models get
the same examples and the same out-of-scope rule (threshold on the top confidence, Rasa's
answers mapped by `nlu.rasa.result_from_rasa`). Rasa runs in its own Python 3.10 venv
(`scripts/rasa-server.sh install`, RASA_VENV); without it only the embedded column is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.nlu import DEFAULT_THRESHOLD, DEMO_DATA, REPO
from nlu.data import TrainingData, load_training_data
from nlu.evaluate import EvaluationReport, Outcomes, build_report, holdout_split, train_test
from nlu.export import DEFAULT_EPOCHS, export_rasa_project
from nlu.rasa import result_from_rasa

RASA_VENV = Path(
    os.environ.get("RASA_VENV", Path.home() / ".cache" / "supportbot" / "rasa-venv")
)
RASA_EVAL = REPO / "scripts" / "rasa_eval.py"
RASA_TIMEOUT = 3600  # seconds for training plus parsing; DIET on 2 cores takes minutes

console = Console()


def main(argv: Sequence[str] | None = None) -> None:
    args = _arguments(argv)
    train, test = _split(args.data, args.test)
    console.print(
        f"data: {', '.join(map(str, args.data))}: {len(train.intents)} intents, "
        f"{len(train)} training and {len(test)} test examples, threshold {args.threshold:.2f}",
        highlight=False, soft_wrap=True,
    )
    embedded = train_test(train, test, threshold=args.threshold)
    python = args.rasa_venv / "bin" / "python"
    rasa: EvaluationReport | None = None
    if python.exists():
        console.print(f"training Rasa DIET ({args.epochs} epochs) in {args.rasa_venv} ...")
        rasa = rasa_report(python, train, test, threshold=args.threshold, epochs=args.epochs)
    else:
        console.print(
            f"Rasa is not installed (no {python}): `scripts/rasa-server.sh install` creates its "
            "venv (Python 3.10, Rasa 3.6, about 3 minutes and 2.7 GB). Embedded column only.",
            highlight=False, soft_wrap=True,
        )
    console.print(comparison(embedded, rasa, args.epochs))
    if rasa is not None:
        console.print(verdict(embedded, rasa), highlight=False)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.nlu_vs_rasa", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", type=Path, nargs="+", default=[DEMO_DATA],
                        help="Rasa NLU files or directories (default: the demo data)")
    parser.add_argument("--test", type=Path, nargs="+",
                        help="test files (default: a stratified fifth of --data)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="DIET epochs")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--rasa-venv", type=Path, default=RASA_VENV)
    return parser.parse_args(argv)


def _split(data: list[Path], test: list[Path] | None) -> tuple[TrainingData, TrainingData]:
    training = load_training_data(data)
    if test is None:
        return holdout_split(training)
    return training, load_training_data(test)


def rasa_report(
    python: Path, train: TrainingData, test: TrainingData, *, threshold: float, epochs: int
) -> EvaluationReport:
    """Train DIET on `train` in the Rasa venv, parse `test` there, score like the embedded."""
    examples = list(test.examples)
    with tempfile.TemporaryDirectory(prefix="nlu-vs-rasa-") as tmp:
        project = Path(tmp) / "project"
        export_rasa_project(train, project, epochs=epochs)
        texts, out = Path(tmp) / "texts.json", Path(tmp) / "out.json"
        texts.write_text(json.dumps([e.text for e in examples], ensure_ascii=False), "utf-8")
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(
            [str(python), str(RASA_EVAL), str(project), str(texts), str(out)],
            env=env, cwd=tmp, capture_output=True, text=True, timeout=RASA_TIMEOUT, check=False,
        )
        if done.returncode != 0:
            sys.exit(f"Rasa failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        answer = json.loads(out.read_text(encoding="utf-8"))
    outcomes = Outcomes(train_seconds=[float(answer["train_seconds"])])
    for example, item in zip(examples, answer["results"], strict=True):
        result = result_from_rasa(example.text, item["parse"], threshold)
        outcomes.add(example, result.intent, float(item["seconds"]))
    return build_report("Rasa DIET train/test", threshold, outcomes)


def comparison(embedded: EvaluationReport, rasa: EvaluationReport | None, epochs: int) -> Table:
    columns = ["", "embedded"] + (["Rasa DIET", "Rasa / embedded"] if rasa else [])
    title = "NLU on the same train/test data: embedded" + (
        f" vs Rasa 3.6 DIET ({epochs} epochs)" if rasa else "")
    table = Table(*columns, title=title)
    reports = [embedded] + ([rasa] if rasa else [])
    scores = [("accuracy", "accuracy"), ("macro-F1", "macro_f1"),
              ("in-scope accuracy", "in_scope_accuracy"), ("out-of-scope recall", "oos_recall")]
    for label, field in scores:
        table.add_row(label, *(_score(getattr(r, field)) for r in reports))
    times = [("training", "train_seconds", "s"), ("parse p50", "parse_p50_ms", "ms"),
             ("parse p99", "parse_p99_ms", "ms")]
    for label, field, unit in times:
        values = [float(getattr(r, field)) for r in reports]
        cells = [f"{v:.3f} {unit}" if v < 10 else f"{v:.1f} {unit}" for v in values]
        if rasa:
            cells.append(f"{values[1] / values[0]:.0f}x" if values[0] else "-")
        table.add_row(label, *cells)
    return table


def verdict(embedded: EvaluationReport, rasa: EvaluationReport) -> str:
    quality = embedded.accuracy >= rasa.accuracy and embedded.macro_f1 >= rasa.macro_f1
    speed = min(
        rasa.train_seconds / embedded.train_seconds,
        rasa.parse_p50_ms / embedded.parse_p50_ms,
        rasa.parse_p99_ms / embedded.parse_p99_ms,
    )
    return (
        f"embedded >= Rasa on accuracy and macro-F1: {'yes' if quality else 'NO'}; "
        f"at least {speed:.0f}x faster in training and parsing: {'yes' if speed >= 10 else 'NO'}"
    )


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
